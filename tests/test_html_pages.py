"""HTML pages in: the article's text and metadata reach the index, the page around it does not.

The pages of ``tests/data/pages/`` are realistic saved news pages (see its README): each
comes with the body sentences that must be kept, the clutter (banners, related lists,
comments, paywall prompts...) that must not, and the metadata it states. The numbers of
the standard-library reading (all of the page's text, what rag did before trafilatura)
are printed next to the new ones in the assertion messages; ``bench/html_extraction.py``
prints them all, with the time per page.
"""

from __future__ import annotations

import json
import sqlite3
from html import unescape
from pathlib import Path

import pytest

import rag
from rag import htmlmain
from rag.articles import article_from_record, html_to_article, read_articles
from rag.htmlmeta import byline_names, jsonld_article
from rag.htmltext import FRAGMENT_CHARS, _title_from_tag, extract, extract_all
from rag.store import Store
from rag.types import Article

PAGES_DIR = Path(__file__).parent / "data" / "pages"
PAGES = sorted(PAGES_DIR.glob("*.html"))
META = ("title", "author", "date", "site", "url")


def _norm(s: str | None) -> str:
    return " ".join((s or "").split()).casefold()


def _expected(page: Path) -> dict:
    return json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))


def _article(page: Path, *, main_text: bool = True) -> Article:
    return html_to_article(page.read_text(encoding="utf-8"), origin=str(page), main_text=main_text)


def _kept(article: Article, exp: dict) -> list[str]:
    indexed = _norm(article.title + "\n" + article.text)
    return [c for c in exp["clutter"] if _norm(c) in indexed]


def _found(article: Article, exp: dict) -> int:
    return sum(_norm(b) in _norm(article.text) for b in exp["body"])


def _ids(pages):
    return [p.stem for p in pages]


# -- the set itself ---------------------------------------------------------------


def test_the_set_is_varied_and_its_expectations_are_on_the_pages():
    assert len(PAGES) >= 10
    langs = {p.stem.split("_")[1] for p in PAGES}
    assert langs == {"fr", "en"}
    with_ld = [p for p in PAGES if "application/ld+json" in p.read_text(encoding="utf-8")]
    assert 3 <= len(with_ld) <= len(PAGES) - 3
    for page in PAGES:
        exp = _expected(page)
        assert set(META) <= exp.keys() and exp["body"] and exp["clutter"], page.name
        # every string is on the page, so that a typo cannot make a check pass vacuously
        everything = _norm(" ".join(str(v) for v in extract_all(page.read_text(encoding="utf-8")).__dict__.values()))
        raw = _norm(unescape(page.read_text(encoding="utf-8")))
        for s in exp["body"]:
            assert _norm(s) in everything, (page.name, s)
        for s in exp["clutter"] + exp.get("optional", []):
            assert _norm(s) in everything or _norm(s) in raw, (page.name, s)


# -- clutter, body, metadata --------------------------------------------------------

KNOWN_FAILURES = [p for p in PAGES if "known_failure" in _expected(p)]


GOOD = [p for p in PAGES if p not in KNOWN_FAILURES]


@pytest.mark.parametrize("page", GOOD, ids=_ids(GOOD))
def test_no_clutter_reaches_the_article(page):
    exp = _expected(page)
    article = _article(page)
    old = _kept(_article(page, main_text=False), exp)
    assert _kept(article, exp) == [], f"kept {len(_kept(article, exp))}, all-text reading kept {len(old)}"
    everything = " ".join(str(v) for v in article.to_dict().values())
    for code in ("<script", "function(", "window.", "{\"", "onload", "onerror"):
        assert code not in everything


@pytest.mark.parametrize("page", KNOWN_FAILURES, ids=_ids(KNOWN_FAILURES))
def test_known_failures_still_fail(page):
    """Recorded failures (see the page's ``known_failure``): a fix shows here."""
    exp = _expected(page)
    assert _kept(_article(page), exp), "fixed: remove the page's known_failure"
    assert _found(_article(page), exp) == len(exp["body"])  # the body is still all there


def test_body_recall_is_at_least_95_percent():
    total = sum(len(_expected(p)["body"]) for p in PAGES)
    new = sum(_found(_article(p), _expected(p)) for p in PAGES)
    old = sum(_found(_article(p, main_text=False), _expected(p)) for p in PAGES)
    kept_new = sum(len(_kept(_article(p), _expected(p))) for p in PAGES)
    kept_old = sum(len(_kept(_article(p, main_text=False), _expected(p))) for p in PAGES)
    n_clutter = sum(len(_expected(p)["clutter"]) for p in PAGES)
    summary = (f"main text: body {new}/{total}, clutter kept {kept_new}/{n_clutter}; "
               f"all text: body {old}/{total}, clutter kept {kept_old}/{n_clutter}")
    assert new >= 0.95 * total, summary
    for page in PAGES:  # and no page loses much of its body
        assert _found(_article(page), _expected(page)) >= 0.8 * len(_expected(page)["body"]), page.name


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_metadata_stated_by_the_page_is_extracted(page):
    exp = _expected(page)
    a = _article(page)
    got = {"title": a.title, "author": a.author, "date": a.date, "site": a.source, "url": a.url}
    assert {k: _norm(got[k]) for k in META} == {k: _norm(exp[k]) for k in META}


def test_the_loto_sidebar_headline_is_not_in_the_flood_article():
    """The issue's case: a "Les plus lus" headline was quoted and cited to the flood article."""
    a = _article(PAGES_DIR / "01_fr_quotidien_crues.html")
    assert "Loto" not in a.text and "13 millions" not in a.text
    assert "Deux cents habitants ont été évacués" in a.text


# -- through the index: what is stored and cited ---------------------------------------


def test_indexed_pages_are_cited_from_the_clean_text(hash_config, tmp_path):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    report = index.add(PAGES[:4])
    assert len(report.added) == 4 and not report.problems
    for row in index.articles():
        art = index.get_article(row["id"])
        assert art.author and art.source  # kept by the store
    hits = index.retriever().retrieve("Loto joueur Haute-Savoie 13 millions d'euros", k=10)
    for hit in hits:
        art = index.get_article(hit.article_id)
        assert art.text[hit.start:hit.end] == hit.text  # offsets index into the stored text
        assert "Loto" not in hit.text and "cookies" not in hit.text
    index.close()
    reopened = rag.Index.open(hash_config.index_dir)
    assert {a.author for a in reopened.store.iter_articles()} >= {"Claire Dubois", "Daniel Okafor; Helen Marsh"}


def test_scraped_markup_is_stripped_after_extraction(tmp_path):
    filler = "".join(f"<p>Le conseil a examiné le point numéro {i} de l'ordre du jour, sans débat.</p>" for i in range(8))
    page = tmp_path / "a.html"
    page.write_text(
        "<html><head><title>Le métro</title></head><body><nav>Accueil Politique Sport</nav><article>"
        '<h1>Le métro</h1><p>Le métro arrive.[EMBED url="https://x.fr/v.html"]Les travaux commencent.</p>'
        f'{filler}<p>Texte.[caption id="a1"]<img src="a.jpg" /> La station Jaurès[/caption]Suite du texte.</p>'
        "</article></body></html>", encoding="utf-8")
    [a] = read_articles([page])
    assert "EMBED" not in a.text and "caption" not in a.text
    assert "Le métro arrive.\nLes travaux commencent." in a.text
    assert "\nLa station Jaurès\n" in a.text


# -- fallback to the whole page's text ------------------------------------------------


def test_a_fragment_is_read_whole_by_the_standard_parser():
    html = "<title>T</title><p>Un.</p><nav>menu</nav><p>Deux.</p>"
    assert sum(len(p) for p in extract_all(html).text.split("\n\n")) < FRAGMENT_CHARS
    doc = extract(html)
    assert (doc.text, doc.main_text) == ("Un.\n\nDeux.", False)


def test_a_page_trafilatura_trips_on_falls_back_to_all_text(monkeypatch):
    from lxml import etree

    def broken(*args, **kwargs):
        raise etree.ParserError("document is empty")

    html = (PAGES_DIR / "04_en_opengraph_only.html").read_text(encoding="utf-8")
    monkeypatch.setattr(htmlmain._load(), "bare_extraction", broken)
    doc = extract(html)
    assert not doc.main_text
    assert "The Harbour Road bridge in Eastport closed" in doc.text
    assert doc.author == "Priya Natarajan" and doc.source == "Eastport Gazette"  # metadata still read


def test_a_page_with_no_main_text_falls_back_to_all_text():
    links = "".join(f'<li><a href="/r/{i}">Rubrique numéro {i} du site</a></li>' for i in range(60))
    doc = extract(f"<html><head><title>Plan du site</title></head><body><ul>{links}</ul></body></html>")
    assert "Rubrique numéro 59 du site" in doc.text
    assert doc.title == "Plan du site"


# -- hostile pages ---------------------------------------------------------------------


def _body(n: int = 12) -> str:
    return "".join(f"<p>Paragraphe {i} : le conseil municipal a voté le budget de la commune, ligne {i}.</p>"
                   for i in range(n))


@pytest.mark.parametrize("html", [
    "<html><body onload=alert(1)><article>" + "".join(
        f"<script>SECRET({i})</script><p onclick=\"SECRET()\">Texte {i} du corps de l'article sur le budget."
        f"<img src=x onerror=SECRET()></p><style>p{{color:red}}</style>" for i in range(15)) + "</article></body></html>",
    "<html><body><article>" + _body() + "<svg><script>SECRET()</script><text>SECRET</text></svg>"
    "<math><mi>SECRET</mi></math><noscript>SECRET</noscript><template><p>SECRET</p></template>"
    "<!-- <p>SECRET</p> --><iframe srcdoc='<p>SECRET</p>'></iframe></article></body></html>",
    '<?xml version="1.0" encoding="utf-8"?><html><body><article>' + _body() + "</article></body></html>",
    "<html><body><article><p>" + "Phrase du corps sans fin. " * 40 + "<div><p>encore <b>gras " * 300,
    "<html><body>" + "<div>" * 3000 + _body() + "</div>" * 3000 + "</body></html>",
    "<html><body><article>" + _body(6) + "<p>a\x00b\x01c</p>" + _body(6) + "</article></body></html>",
    "<html><frameset><frame src='x.html'></frameset><noframes>" + _body() + "</noframes></html>",
], ids=["handlers", "never-text elements", "xml declaration", "unclosed", "deep nesting", "nul", "frameset"])
def test_hostile_pages_give_text_and_never_code(html):
    doc = extract(html)
    assert "Paragraphe 3" in doc.text or "Texte 3" in doc.text or "Phrase du corps" in doc.text
    for out in (doc.text, doc.title or "", doc.author or ""):
        assert "SECRET" not in out and "<script" not in out.lower() and "onerror" not in out


def test_a_page_of_markup_only_is_a_problem_not_a_crash(tmp_path):
    p = tmp_path / "a.html"
    p.write_text("<html><head><script>x()</script></head><body>" + "<div><span></span></div>" * 2000
                 + "</body></html>", encoding="utf-8")
    [problem] = read_articles([p])
    assert problem.reason.startswith("page has no text")


# -- the parts -------------------------------------------------------------------------


@pytest.mark.parametrize("paragraph", [
    "Lire aussi : Tempête Ciarán, la facture des assureurs",
    "» Lire aussi - La fête de la châtaigne attire 20 000 visiteurs",
    "À lire également | Le chancre menace le châtaignier",
    "READ MORE: Gold steadies ahead of Fed decision",
    "Related: Oil falls after surprise build",
    "Il vous reste 58 % de cet article à lire. La suite est réservée aux abonnés.",
    "Le reste de l'article est réservé aux abonnés.",
    "Déjà abonné ? Se connecter",
    "Subscribe to continue reading.",
    "© 2024 AFP",
    "Copyright 2024 The Newswire Press. All rights reserved.",
    "Le Courrier de la Saône 2023 — Tous droits réservés",
])
def test_page_furniture_paragraphs(paragraph):
    assert htmlmain.is_furniture(paragraph)


@pytest.mark.parametrize("paragraph", [
    "Les abonnés du club ont protesté contre la hausse du prix des places.",
    "Il faut lire aussi le rapport de la Cour des comptes, publié mardi, pour comprendre.",
    "Le journal a rendu la moitié de ses articles payants l'an dernier, et ses abonnés ont doublé.",
    "The copyright dispute between the two studios went to court in March.",
    "Read the full ruling, the judge said, and you will see that the law is clear.",
    "« Lire aussi » est le nom de la rubrique que le quotidien a supprimée en 2019, a rappelé son directeur. " * 4,
])
def test_article_sentences_are_not_furniture(paragraph):
    assert not htmlmain.is_furniture(paragraph)


@pytest.mark.parametrize("byline, names", [
    ("Par Claire Dubois (Caen, correspondante)", "Claire Dubois"),
    ("Par Sophie Lenoir, envoyée spéciale à Lyon", "Sophie Lenoir"),
    ("By Daniel Okafor and Helen Marsh in Frankfurt", "Daniel Okafor; Helen Marsh"),
    ("By ELENA RUIZ Associated Press", "Elena Ruiz"),
    ("Par Jean-Pierre Marchal - Mis en ligne le 05/02/2009 à 11:20", "Jean-Pierre Marchal"),
    ("Le Figaro avec AFP", "Le Figaro; AFP"),
    ("AFP", "AFP"),
    ("Words by Rosalind Achebe · Photographs by Tom Feld", "Rosalind Achebe"),
    ("publié le 21 octobre 2023", None),
])
def test_byline_names(byline, names):
    assert byline_names(byline) == names


def test_jsonld_graph_references_and_bad_blocks():
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": "Organization", "@id": "#org", "name": "Sport Ouest"},
        {"@type": ["NewsArticle", "Article"], "headline": " Nantes  se qualifie ", "datePublished": "2024-04-04",
         "author": [{"@id": "#p1"}, "Agence", {"@type": "Person", "givenName": "Yann", "familyName": "Le Goff"},
                    "https://x.example/auteur"],
         "publisher": {"@id": "#org"}, "mainEntityOfPage": {"@id": "https://x.example/a"}},
        {"@type": "Person", "@id": "#p1", "name": "Anne Roux"}]}
    ld = jsonld_article(["{not json", "<!--" + json.dumps(graph) + "-->"])
    assert (ld.headline, ld.date, ld.author, ld.site, ld.url) == (
        "Nantes se qualifie", "2024-04-04", "Anne Roux; Agence; Yann Le Goff", "Sport Ouest", "https://x.example/a")
    assert jsonld_article(['{"@type": "WebPage", "name": "x"}', "[[[[" * 5000]).headline is None


@pytest.mark.parametrize("title, first, site, expected", [
    ("Le retour des vergers – Carnets du bocage", ["Le retour des vergers"], None, "Le retour des vergers"),
    ("Grève des transports | Le Journal", [], "Le Journal", "Grève des transports"),
    ("L'Hebdo :: Villeneuve : le budget adopté", ["Villeneuve : le budget adopté"], None, "Villeneuve : le budget adopté"),
    ("Lyon : le tribunal suspend le chantier", [], None, "Lyon : le tribunal suspend le chantier"),
    ("Foo - Bar", [], "Le Journal", "Foo - Bar"),
])
def test_title_tag_without_the_site_name(title, first, site, expected):
    assert _title_from_tag(title, first, site) == expected


# -- the author field ---------------------------------------------------------------


def test_author_is_read_from_records_and_hashed_only_when_present():
    a = article_from_record({"title": "T", "text": "x", "author": "  Jane   Doe "}, origin="o")
    b = article_from_record({"title": "T", "text": "x"}, origin="o")
    assert (a.author, b.author) == ("Jane Doe", None) and a.checksum != b.checksum
    # an article without an author keeps the checksum it had before authors were kept
    import hashlib

    h = hashlib.sha256()
    for part in (b.title, b.text, b.date, b.source, b.url, b.heading):
        h.update((part or "").encode("utf-8") + b"\x00")
    assert b.checksum == h.hexdigest()


def test_a_store_from_before_authors_still_opens(tmp_path):
    from rag import store as store_mod

    old_schema = store_mod._SCHEMA.replace("    lang TEXT,\n    author TEXT\n", "    lang TEXT\n")
    assert old_schema != store_mod._SCHEMA
    path = tmp_path / "store.sqlite"
    db = sqlite3.connect(path)
    db.executescript(old_schema)
    db.execute("INSERT INTO articles(id, title, text, checksum, added_at) VALUES ('a1', 'T', 'x', 'c', 'now')")
    db.commit()
    db.close()
    ro = Store(path, read_only=True)
    assert ro.get_article("a1") == Article(id="a1", title="T", text="x")
    ro.close()
    rw = Store(path)  # migrates: the column is added
    assert rw.get_article("a1").author is None
    rw.write([(Article(id="a2", title="T2", text="y", author="Jane Doe"), [], [])], now="now")
    assert rw.get_article("a2").author == "Jane Doe"
    rw.close()
