"""Reading articles: every format, the ids, and every way a file or record can be bad."""

from __future__ import annotations

import gzip
import json
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.articles import (
    NO_TEXT,
    SUPPORTED_SUFFIXES,
    ReadLimits,
    article_from_record,
    article_from_text,
    html_to_article,
    iter_paths,
    read_articles,
    read_file,
)
from rag.errors import InputError
from rag.htmltext import extract
from rag.types import Article, RecordProblem, content_id

ORANGESUM = Path("/work/shared/data/orangesum/orangesum_articles.jsonl.gz")

BODY = "Le gouvernement a annoncé mardi un plan.\nLes syndicats ont réagi.\n\nUn troisième paragraphe."


def read(path: Path, limits: ReadLimits = ReadLimits()) -> list[Article | RecordProblem]:
    return list(read_file(path, limits))


def articles(items) -> list[Article]:
    return [x for x in items if isinstance(x, Article)]


def problems(items) -> list[RecordProblem]:
    return [x for x in items if isinstance(x, RecordProblem)]


def only_problem(path: Path, limits: ReadLimits = ReadLimits()) -> RecordProblem:
    items = read(path, limits)
    assert len(items) == 1 and isinstance(items[0], RecordProblem), items
    assert items[0].path == str(path)
    return items[0]


def write_jsonl(path: Path, lines: list) -> Path:
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


# -- formats -------------------------------------------------------------------


def test_txt_first_line_is_title_and_rest_kept_as_is(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("\n\n  Plan de relance  \n\n" + BODY + "\n\n\n", encoding="utf-8")
    [a] = read(p)
    assert a.title == "Plan de relance"
    assert a.text == BODY
    assert a.origin == str(p)
    assert a.id == content_id("Plan de relance", BODY)


def test_txt_windows_newlines_are_unified(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("Titre\r\nLigne un\r\nLigne deux\rLigne trois\r\n".encode())
    [a] = read(p)
    assert a.text == "Ligne un\nLigne deux\nLigne trois"


def test_md_heading_markers_are_stripped_from_the_title_only(tmp_path):
    p = tmp_path / "a.md"
    p.write_text("# Un titre #\n\n## Sous-titre\n\nCorps *gras*.\n", encoding="utf-8")
    [a] = read(p)
    assert a.title == "Un titre"
    assert a.text == "## Sous-titre\n\nCorps *gras*."


def test_md_setext_heading_and_front_matter(tmp_path):
    setext = tmp_path / "setext.md"
    setext.write_text("Le titre\n========\nLe corps.\n", encoding="utf-8")
    [a] = read(setext)
    assert (a.title, a.text) == ("Le titre", "Le corps.")

    fm = tmp_path / "fm.md"
    fm.write_text('---\ntitle: "Titre du front matter"\ndate: 2024-05-01\n---\nPremier paragraphe.\n',
                  encoding="utf-8")
    [b] = read(fm)
    assert (b.title, b.text, b.date) == ("Titre du front matter", "Premier paragraphe.", "2024-05-01")


def test_md_hashtag_is_not_a_heading(tmp_path):
    p = tmp_path / "a.md"
    p.write_text("#MeToo en France\ncorps\n", encoding="utf-8")
    assert read(p)[0].title == "#MeToo en France"


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_title_without_body_is_a_problem(tmp_path, suffix):
    p = tmp_path / f"a{suffix}"
    p.write_text("# Seulement un titre\n\n   \n", encoding="utf-8")
    assert only_problem(p).reason == "no body text after the title"


HTML_PAGE = """<!DOCTYPE html>
<html><head>
<title>Grève des transports | Le Journal</title>
<meta property="og:title" content="Grève des transports">
<meta property="og:site_name" content="Le Journal">
<meta property="article:published_time" content="2024-03-05T08:00:00+01:00">
<link rel="canonical" href="https://journal.example/greve">
<style>body { color: red } .secret { display: none }</style>
<script>var stolen = document.cookie; alert("xss");</script>
</head><body onload="alert('body')">
<header><a href="/">Accueil</a> <h1>Le Journal</h1></header>
<nav><ul><li>Politique</li><li>Sport</li></ul></nav>
<div role="navigation menubar">Menu du site</div>
<article>
<h1>Grève des transports</h1>
<p>La grève   a commencé
   <b>lundi</b> &amp; continue.<img src=x onerror=alert(1)></p>
<p>Les usagers s&#39;organisent&nbsp;: covoiturage.<br>Nouvelle ligne.</p>
<noscript>Activez JavaScript</noscript>
<form><input value="email"><button>S'abonner</button></form>
<iframe src="https://ads.example"></iframe>
<svg><text>logo</text></svg>
<template><p>gabarit</p></template>
<aside>À lire aussi</aside>
</article>
<footer>© Le Journal</footer>
<script>alert('end')</script>
</body></html>
"""


def test_html_keeps_article_text_and_drops_code_and_chrome(tmp_path):
    p = tmp_path / "page.html"
    p.write_text(HTML_PAGE, encoding="utf-8")
    [a] = read(p)
    assert a.title == "Grève des transports"
    assert a.text == ("La grève a commencé lundi & continue.\n\n"
                      "Les usagers s'organisent : covoiturage.\n\nNouvelle ligne.")
    assert (a.date, a.url, a.source) == (
        "2024-03-05T08:00:00+01:00", "https://journal.example/greve", "Le Journal")
    everything = " ".join(str(v) for v in a.to_dict().values())
    for leaked in ("alert", "script", "cookie", "onerror", "onload", "color", "Politique", "Menu",
                   "Accueil", "JavaScript", "abonner", "email", "logo", "gabarit", "lire aussi",
                   "©", "<", ">"):
        assert leaked not in everything, leaked


def test_html_title_falls_back_to_title_tag_then_h1_then_first_paragraph():
    assert html_to_article("<title>T</title><p>corps</p>", origin="o").title == "T"
    a = html_to_article("<h1>Titre h1</h1><p>corps</p>", origin="o")
    assert (a.title, a.text) == ("Titre h1", "corps")  # the h1 is not repeated in the body
    b = html_to_article("<p>Premier</p><p>Second</p>", origin="o")
    assert (b.title, b.text) == ("Premier", "Second")


def test_html_date_from_time_element_and_url_from_og():
    doc = extract('<meta property="og:url" content="https://x.example/a">'
                  '<footer><time datetime="1999-01-01">old</time></footer>'
                  '<p>Publié le <time datetime="2023-02-01">1er février</time></p>')
    assert (doc.date, doc.url) == ("2023-02-01", "https://x.example/a")


@pytest.mark.parametrize("html, title, text", [
    ("<title>T</title><div><p>un<div>deux</div></div></div></p></span>trois", "T", "un\n\ndeux\n\ntrois"),
    ("<title>T</title><p>ouvert<p>encore <b>gras <i>italique", "T", "ouvert\n\nencore gras italique"),
    ("<title>T</title><div><nav>menu</div><p>après le nav non fermé</p>", "T", "après le nav non fermé"),
    ("<title>T</title><p>texte</p><script>alert(1)", "T", "texte"),
    ("<title>T</title><p>texte</p><!-- commentaire non fermé <p>caché", "T", "texte"),
    ("<title>T<body><p>corps", "T", "corps"),
    ("<title>T</title><h1>Titre <p>corps</p>", "T", "Titre\n\ncorps"),
    ("<title>T</title><p>a < b et c > d</p><p a='unterminated>x</p>", "T", "a < b et c > d"),
    ("<title>T</title><p>texte</p><img src=x onerror='alert(1)>", "T", "texte"),
    ("<title>T</title><p>texte &amp</p><p>fin &", "T", "texte &\n\nfin &"),
    ("<title>T</title><table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "T", "a b\n\nc"),
])
def test_html_malformed_pages_give_best_effort_text(html, title, text):
    a = html_to_article(html, origin="o")
    assert (a.title, a.text) == (title, text)


_HTML_BITS = list("<>/!-=\"' abcp&;#x1\n") + ["<script>", "</div>", "<p>", "<!--", "-->", "<nav>", "&amp;"]


@given(st.lists(st.sampled_from(_HTML_BITS)).map("".join))
@settings(max_examples=300, deadline=None)
def test_html_extract_never_fails_and_never_outputs_a_script_tag(html):
    doc = extract(html + "<p><script>SECRET()</script>")
    for out in (doc.text, doc.title or ""):
        assert "SECRET" not in out and "<script" not in out.lower()


def test_html_page_without_text_is_a_problem(tmp_path):
    p = tmp_path / "empty.html"
    p.write_text("<html><head><title>T</title><script>x()</script></head><body><nav>menu</nav>"
                 "<h1>T</h1></body>", encoding="utf-8")
    assert only_problem(p).reason == "page has no body text after the title"
    q = tmp_path / "nothing.html"
    q.write_text("<html><body><script>x()</script></body></html>", encoding="utf-8")
    assert only_problem(q).reason.startswith("page has no text")


def test_json_list(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([
        {"id": "a1", "title": "Un", "text": "Texte un", "date": "2024-01-01", "source": "AFP",
         "url": "https://x.example/1", "heading": "Chapô", "extra": [1, 2]},
        {"id": 7, "title": "Deux", "article": "Texte deux"},
        {"title": "Trois", "body": "Texte trois"},
        {"title": "Quatre", "content": "Texte quatre"},
    ]), encoding="utf-8")
    items = read(p)
    assert [a.id for a in items] == ["a1", "7", content_id("Trois", "Texte trois"),
                                     content_id("Quatre", "Texte quatre")]
    assert [a.text for a in items] == ["Texte un", "Texte deux", "Texte trois", "Texte quatre"]
    a = items[0]
    assert (a.date, a.source, a.url, a.heading, a.origin) == (
        "2024-01-01", "AFP", "https://x.example/1", "Chapô", f"{p}:1")


@pytest.mark.parametrize("wrap", ["articles", "data", "records"])
def test_json_object_with_a_list(tmp_path, wrap):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"version": 1, wrap: [{"title": "Un", "text": "corps"}]}), encoding="utf-8")
    [a] = read(p)
    assert (a.title, a.origin) == ("Un", f"{p}:1")


def test_json_single_record(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"title": "Seul", "text": "corps", "data": "not a list"}), encoding="utf-8")
    [a] = read(p)
    assert (a.title, a.text, a.origin) == ("Seul", "corps", str(p))


def test_json_bad_records_are_numbered_and_the_rest_still_read(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([{"title": "Un", "text": "corps"}, "texte", {"title": "Trois"}]), encoding="utf-8")
    items = read(p)
    assert isinstance(items[0], Article)
    assert items[1] == RecordProblem(str(p), 2, "record is a string, expected an object with 'title' and 'text'")
    assert items[2] == RecordProblem(str(p), 3, NO_TEXT)


@pytest.mark.parametrize("content, reason", [
    ('[{"title": "a", "text": "b"},', "invalid JSON at line 1, column 30: Expecting value"),
    ("42", "expected a list of records or an object, got a number"),
    ("[]", "file has no records (the list is empty)"),
    ('{"articles": {"title": "x"}}', "'articles' must be a list of records, got an object"),
    ("[" * 100_000, "invalid JSON: maximum recursion depth exceeded while decoding a JSON array from a unicode string"),
])
def test_json_file_level_problems(tmp_path, content, reason):
    p = tmp_path / "a.json"
    p.write_text(content, encoding="utf-8")
    assert only_problem(p).reason == reason


def test_jsonl_with_bad_records_reports_line_numbers_and_keeps_good_ones(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "1", "title": "Un", "text": "corps un"},        # 1
        "",                                                    # 2 blank, skipped
        "{not json",                                           # 3
        {"id": "4", "title": "Quatre", "article": "corps 4"},  # 4
        {"id": "5", "title": "Sans texte", "text": "  "},      # 5
        "[1, 2]",                                              # 6
        {"id": "7", "title": 7, "text": "corps"},              # 7
        {"id": ["x"], "title": "T", "text": "corps"},          # 8
        {"id": "9", "title": "T", "text": "corps", "date": 2020},  # 9
        {"id": "10", "title": "Dix", "text": "corps dix"},     # 10
    ])
    items = read(p)
    assert [a.id for a in articles(items)] == ["1", "4", "10"]
    assert [a.origin for a in articles(items)] == [f"{p}:1", f"{p}:4", f"{p}:10"]
    assert [(x.line, x.reason) for x in problems(items)] == [
        (3, "invalid JSON at column 2: Expecting property name enclosed in double quotes"),
        (5, NO_TEXT),
        (6, "record is a list, expected an object with 'title' and 'text'"),
        (7, "'title' must be a string, got a number"),
        (8, "'id' must be a string or an integer, got a list"),
        (9, "'date' must be a string, got a number"),
    ]
    assert str(problems(items)[1]) == f"{p}:5: {NO_TEXT}"


def test_jsonl_gz_streams_and_matches_plain(tmp_path):
    records = [{"id": str(i), "title": f"Titre {i}", "text": f"Corps {i} été"} for i in range(50)]
    plain = write_jsonl(tmp_path / "a.jsonl", records)
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    got_plain, got_gz = read(plain), read(gz)
    assert len(got_gz) == 50 and all(isinstance(a, Article) for a in got_gz)
    assert [(a.id, a.title, a.text) for a in got_gz] == [(a.id, a.title, a.text) for a in got_plain]
    assert got_gz[3].origin == f"{gz}:4"


def test_json_gz(tmp_path):
    p = tmp_path / "a.json.gz"
    p.write_bytes(gzip.compress(json.dumps({"articles": [{"title": "Un", "text": "corps"}]}).encode()))
    [a] = read(p)
    assert a.title == "Un"


def test_jsonl_line_longer_than_the_limit_is_skipped(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"title": "Long", "text": "x" * 5000},
                                           {"title": "Court", "text": "ok"}])
    items = read(p, ReadLimits(max_file_bytes=1000))
    assert items[0] == RecordProblem(str(p), 1, "line is longer than the 1000 bytes limit for one record")
    assert items[1].title == "Court"


# -- ids -------------------------------------------------------------------------


def test_own_id_is_kept_stripped_and_content_hash_otherwise():
    assert article_from_record({"id": "  abc-1 ", "title": "T", "text": "x"}, origin="o").id == "abc-1"
    assert article_from_record({"id": 12, "title": "T", "text": "x"}, origin="o").id == "12"
    assert article_from_record({"id": "", "title": "T", "text": "x"}, origin="o").id == content_id("T", "x")
    assert article_from_record({"title": "T", "text": "x"}, origin="o").id == content_id("T", "x")


@pytest.mark.parametrize("bad_id, reason", [
    ("x" * 201, "'id' is 201 characters, longer than the 200 limit"),
    ("a\nb", "'id' contains control characters: 'a\\nb'"),
    (1.5, "'id' must be a string or an integer, got a number"),
    (True, "'id' must be a string or an integer, got true/false"),
])
def test_bad_own_id_is_an_error(bad_id, reason):
    with pytest.raises(InputError) as e:
        article_from_record({"id": bad_id, "title": "T", "text": "x"}, origin="o")
    assert e.value.reason == reason


def test_same_text_read_twice_gives_same_id_and_whitespace_does_not_matter(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("Titre\nUn corps de texte.\nDeux lignes.\n", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("  Titre  \n\n\nUn  corps de\ttexte.\n\nDeux lignes.   \n", encoding="utf-8")
    first, again, spaced = read(a)[0], read(a)[0], read(b)[0]
    assert first.id == again.id == spaced.id
    assert first.text != spaced.text  # the text itself is kept as written
    assert article_from_text("Titre", "Un corps de texte.\nDeux lignes.").id == first.id


def test_record_and_html_of_the_same_article_share_the_hash():
    rec = article_from_record({"title": "Titre", "text": "Un.\n\nDeux."}, origin="o")
    page = html_to_article("<title>Titre</title><p>Un.</p><p>Deux.</p>", origin="o")
    assert rec.id == page.id


# -- cleaning --------------------------------------------------------------------


def test_nfc_makes_a_decomposed_e_acute_one_code_point(tmp_path):
    decomposed = "e\u0301"
    p = write_jsonl(tmp_path / "a.jsonl", [{"title": f"Caf{decomposed}", "text": f"d{decomposed}j{decomposed}"}])
    [a] = read(p)
    assert a.title == "Café" and len(a.title) == 4
    assert a.text == "déjé" and unicodedata.is_normalized("NFC", a.text)
    assert a.id == content_id("Café", "déjé")


def test_control_characters_are_stripped_but_tab_and_newline_kept(tmp_path):
    p = tmp_path / "a.jsonl"
    rec = {"title": "Ti\x00t\x1bre\u0085", "text": "a\x07b\tc\nd\x7fe\x9ff\x0bg"}
    p.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    [a] = read(p)
    assert a.title == "Titre"
    assert a.text == "ab\tc\ndefg"


def test_raw_control_characters_inside_json_strings_are_accepted_then_stripped(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"title": "T\x01itre", "text": "a\tb\x02c"}\n')
    [a] = read(p)
    assert (a.title, a.text) == ("Titre", "a\tbc")


def test_jsonl_of_only_bad_lines_is_not_called_blank(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\n{"title": "caf\xe9"}\n')
    [problem] = read(p)
    assert (problem.line, problem.reason[:31]) == (2, "invalid UTF-8 at byte offset 15")


def test_title_of_control_characters_only_is_a_problem():
    with pytest.raises(InputError, match="title is empty"):
        article_from_record({"title": "\x00\x01", "text": "x"}, origin="o")


def test_bom_is_accepted_and_stripped(tmp_path):
    bom = b"\xef\xbb\xbf"
    txt = tmp_path / "a.txt"
    txt.write_bytes(bom + "Titre\ncorps".encode())
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_bytes(bom + b'{"title": "T", "text": "x"}\n')
    js = tmp_path / "a.json"
    js.write_bytes(bom + b'[{"title": "T", "text": "x"}]')
    assert read(txt)[0].title == "Titre"
    assert read(jsonl)[0].title == "T"
    assert read(js)[0].title == "T"


def test_unsafe_url_is_dropped():
    a = article_from_record({"title": "T", "text": "x", "url": "javascript:alert(1)"}, origin="o")
    assert a.url is None
    assert html_to_article('<link rel=canonical href="JavaScript:x()"><title>T</title><p>b',
                           origin="o").url is None


# -- file-level problems ---------------------------------------------------------


@pytest.mark.parametrize("name", ["a.txt", "a.md", "a.html", "a.json", "a.jsonl"])
def test_empty_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"")
    assert only_problem(p) == RecordProblem(str(p), None, "file is empty")


def test_whitespace_only_files(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text(" \n\t\n", encoding="utf-8")
    assert only_problem(txt).reason == "file has no text (only whitespace)"
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n\n  \n", encoding="utf-8")
    assert only_problem(jsonl).reason == "file has no records (only blank lines)"


def test_empty_gzip(tmp_path):
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(gzip.compress(b""))
    assert only_problem(p).reason == "file is empty after decompression"


@pytest.mark.parametrize("name", ["a.txt", "a.jsonl", "a.json"])
def test_binary_file_with_nul_bytes(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert only_problem(p).reason == "file looks binary (it contains NUL bytes), not text"


def test_binary_file_of_control_bytes(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"Title\n" + bytes(range(1, 32)) * 200)
    assert only_problem(p).reason.startswith("file looks binary (")


def test_binary_inside_gzip(tmp_path):
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(gzip.compress(b"\x00" * 1000))
    assert only_problem(p).reason == "file looks binary (it contains NUL bytes), not text"


def test_utf16_file(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("Titre\ncorps", encoding="utf-16")
    assert only_problem(p).reason.startswith("file is UTF-16 text")


def test_invalid_utf8_says_where(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("Titre\nLe café".encode("latin-1"))
    reason = only_problem(p).reason
    assert reason.startswith("invalid UTF-8 at byte offset 12 ")
    assert "Latin-1" in reason


def test_invalid_utf8_in_jsonl_is_one_bad_line(tmp_path):
    p = tmp_path / "a.jsonl"
    good = b'{"title": "T", "text": "x"}\n'
    p.write_bytes(good + '{"title": "caf\xe9", "text": "x"}\n'.encode("latin-1") + good)
    items = read(p)
    assert len(articles(items)) == 2
    [problem] = problems(items)
    assert problem.line == 2
    assert problem.reason.startswith(f"invalid UTF-8 at byte offset {len(good) + 14} ")


def test_file_larger_than_the_limit_is_refused_without_reading(tmp_path):
    p = tmp_path / "huge.txt"
    with open(p, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: instant, and all NULs if it were read
    assert only_problem(p).reason == "file is 50.0 MB, larger than the 10.0 MB limit for a single article"


def test_json_larger_than_its_limit(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([{"title": "T", "text": "x" * 2900}]), encoding="utf-8")
    reason = only_problem(p, ReadLimits(max_json_bytes=2048)).reason
    assert reason == "file is 2.9 KB, larger than the 2.0 KB limit for a .json file (use .jsonl, which is streamed)"


def test_json_gz_decompressing_past_its_limit(tmp_path):
    p = tmp_path / "a.json.gz"
    p.write_bytes(gzip.compress(json.dumps([{"title": "T", "text": "x" * 100_000}]).encode()))
    assert only_problem(p, ReadLimits(max_json_bytes=10_000)).reason.startswith(
        "file decompresses to more than the 9.8 KB limit")


def test_article_body_longer_than_the_limit(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"title": "T", "text": "x" * 101}, {"title": "U", "text": "ok"}])
    items = read(p, ReadLimits(max_article_chars=100))
    assert items[0] == RecordProblem(str(p), 1, "article text is 101 characters, longer than the 100 limit")
    assert items[1].title == "U"


@pytest.mark.parametrize("name, shown", [("report.pdf", "'.pdf'"), ("notes.TXT.bak", "'.bak'"),
                                         ("README", "(no suffix)")])
def test_unsupported_suffix(tmp_path, name, shown):
    p = tmp_path / name
    p.write_bytes(b"%PDF-1.4")
    assert only_problem(p).reason == f"unsupported file type {shown} (supported: {', '.join(SUPPORTED_SUFFIXES)})"


def test_corrupt_gzip(tmp_path):
    not_gzip = tmp_path / "a.jsonl.gz"
    not_gzip.write_text('{"title": "T", "text": "x"}\n', encoding="utf-8")
    assert only_problem(not_gzip).reason.startswith("gzip file is corrupt or truncated: Not a gzipped file")

    json_gz = tmp_path / "b.json.gz"
    json_gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert only_problem(json_gz).reason.startswith("gzip file is corrupt or truncated")


def test_truncated_gzip_keeps_the_records_before_the_damage(tmp_path):
    lines = [json.dumps({"id": str(i), "title": f"T{i}", "text": f"{i} " * 50 + str(i * i)}) for i in range(2000)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(data[: len(data) // 2])
    items = read(p)
    good = articles(items)
    assert 100 < len(good) < 2000
    assert [a.id for a in good] == [str(i) for i in range(len(good))]
    [problem] = problems(items)
    assert items[-1] is problem
    assert problem.line == len(good) + 1
    assert problem.reason.startswith(f"gzip file is corrupt or truncated after line {len(good)}")


def test_unreadable_file_is_a_problem(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("T\nx", encoding="utf-8")
    p.chmod(0)
    try:
        if p.read_bytes():  # root can read anyway
            pytest.skip("running as a user who ignores file permissions")
    except PermissionError:
        assert only_problem(p).reason == "cannot read file: Permission denied"
    finally:
        p.chmod(0o644)


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    (tmp_path / "1.txt").write_text("Un\ncorps", encoding="utf-8")
    (tmp_path / "2.txt").write_bytes(b"")
    (tmp_path / "3.jsonl.gz").write_bytes(b"not gzip")
    (tmp_path / "4.md").write_text("# Quatre\ncorps", encoding="utf-8")
    items = list(read_articles([tmp_path]))
    assert [type(x).__name__ for x in items] == ["Article", "RecordProblem", "RecordProblem", "Article"]


# -- folders ---------------------------------------------------------------------


def test_folder_walk_is_recursive_sorted_and_skips_hidden_and_unsupported(tmp_path):
    for rel in ["b.txt", "a.md", "sub/c.jsonl.gz", "sub/deeper/d.HTML", "sub/e.json", "z.jsonl",
                "notes.pdf", "image.png", ".hidden.txt", ".git/config.json", "sub/.cache/x.txt"]:
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x", encoding="utf-8")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_paths([tmp_path])]
    assert got == ["a.md", "b.txt", "sub/c.jsonl.gz", "sub/deeper/d.HTML", "sub/e.json", "z.jsonl"]


def test_files_are_taken_as_given_and_yielded_once(tmp_path):
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    (tmp_path / "b.pdf").write_text("x", encoding="utf-8")
    got = list(iter_paths([tmp_path / "b.pdf", str(tmp_path / "a.txt"), tmp_path]))
    assert got == [tmp_path / "b.pdf", tmp_path / "a.txt"]
    assert list(iter_paths(tmp_path / "a.txt")) == [tmp_path / "a.txt"]  # one path, not a list


def test_missing_path_fails_before_reading_anything(tmp_path):
    (tmp_path / "a.txt").write_text("T\nx", encoding="utf-8")
    missing = tmp_path / "nope"
    with pytest.raises(InputError) as e:
        read_articles([tmp_path / "a.txt", missing])
    assert (e.value.reason, e.value.path) == ("no such file or folder", str(missing))


def test_read_articles_reads_a_mixed_folder(tmp_path):
    (tmp_path / "a.txt").write_text("Un\ncorps un", encoding="utf-8")
    write_jsonl(tmp_path / "b.jsonl", [{"id": "b1", "title": "Deux", "text": "corps"}, "oops"])
    (tmp_path / "c.html").write_text("<title>Trois</title><p>corps trois</p>", encoding="utf-8")
    items = list(read_articles([tmp_path]))
    assert [a.title for a in articles(items)] == ["Un", "Deux", "Trois"]
    assert [(x.path, x.line) for x in problems(items)] == [(str(tmp_path / "b.jsonl"), 2)]


# -- text from a UI, and limits ----------------------------------------------------


def test_article_from_text():
    a = article_from_text("  Titre ", "\n Corps\u0301 \n", source="moi", origin="ui")
    assert (a.title, a.text, a.source, a.origin) == ("Titre", " Corps\u0301".replace("s\u0301", "ś"), "moi", "ui")
    assert a.id == content_id("Titre", a.text)


@pytest.mark.parametrize("title, text, reason", [
    ("  ", "corps", "title is empty"),
    ("Titre", " \n\t ", "text is empty"),
    ("T" * 1001, "corps", "title is 1,001 characters, longer than the 1,000 limit"),
    ("Titre", "x" * 1_000_001, "article text is 1,000,001 characters, longer than the 1,000,000 limit"),
])
def test_article_from_text_refuses_empty_or_too_long(title, text, reason):
    with pytest.raises(InputError) as e:
        article_from_text(title, text)
    assert e.value.reason == reason


@pytest.mark.parametrize("kwargs", [{"max_file_bytes": 0}, {"max_json_bytes": -1},
                                    {"max_article_chars": 1.5}, {"max_file_bytes": True}])
def test_read_limits_are_validated(kwargs):
    [(name, value)] = kwargs.items()
    with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {value!r}"):
        ReadLimits(**kwargs)


# -- the real corpus ---------------------------------------------------------------


@pytest.mark.skipif(not ORANGESUM.exists(), reason=f"OrangeSum is not at {ORANGESUM}")
def test_orangesum_reads_whole():
    n_articles = 0
    empty = []
    for item in read_articles([ORANGESUM]):
        if isinstance(item, Article):
            n_articles += 1
        else:
            empty.append(item)
    assert n_articles + len(empty) == 36_152
    assert len(empty) == 165
    assert {p.reason for p in empty} == {NO_TEXT}


@pytest.mark.skipif(not ORANGESUM.exists(), reason=f"OrangeSum is not at {ORANGESUM}")
def test_orangesum_streams(monkeypatch):
    # Streaming means the first record comes before the file is read to its end:
    # count the bytes gzip has handed out when it arrives.
    import gzip

    handed = []

    def counting(name):
        real = getattr(gzip.GzipFile, name)

        def wrapper(self, *args):
            data = real(self, *args)
            handed.append(len(data))
            return data

        monkeypatch.setattr(gzip.GzipFile, name, wrapper)

    counting("read")
    counting("readline")
    first = next(iter(read_file(ORANGESUM)))
    assert 0 < sum(handed) < 5_000_000
    assert (first.id, first.date, first.origin) == ("10", "2020-07-02", f"{ORANGESUM}:1")
    assert first.title.startswith("Pastoralisme et ours")
    assert first.heading and first.text.startswith("Cette enveloppe inclut")


# -- scraped markup ------------------------------------------------------------

MARKUP = {
    # OrangeSum's own: an embed glued between two sentences leaves a paragraph break
    "embed glued": ('semaines.[EMBED url=""Je recommande""]Dans la soirée, le groupe a parlé.',
                    "semaines.\nDans la soirée, le groupe a parlé."),
    "empty embed with spaces": ('privée. [EMBED url=" "] Entre deux blagues.', "privée.\nEntre deux blagues."),
    "embed after style leftovers": ("l'État.=11pt=10.0pt=#333333[EMBED url=\"https://v.fr/a.html\"]Mardi, il parle.",
                                    "l'État.\nMardi, il parle."),
    "embed html": ('opinion (39%).[EMBED html=""]Nicolas Sarkozy est populaire.',
                   "opinion (39%).\nNicolas Sarkozy est populaire."),
    "italic marker glued": ("l'État.[I/TALIC]Les échanges se font.", "l'État.Les échanges se font."),
    "italic marker before a comma": ('écologique" [I/TALIC], à l\'image', 'écologique", à l\'image'),
    # WordPress shortcodes
    "paired embed": ("Regardez.\n[embed]https://youtu.be/x[/embed]\nSuite.", "Regardez.\n\n\nSuite."),
    "embed inside a sentence": ('La vidéo [video src="a.mp4"] montre la scène.', "La vidéo montre la scène."),
    "tweet": ('Il a tweeté : [tweet id="123"] Puis il a supprimé.', "Il a tweeté :\nPuis il a supprimé."),
    "caption keeps its text": (
        'Texte.\n[caption id="a1" align="alignnone" width="300"]<img src="a.jpg" /> Emmanuel Macron à Marseille[/caption]\nSuite.',
        "Texte.\n\nEmmanuel Macron à Marseille\n\nSuite.",
    ),
    "empty caption": ('Texte.[caption id="a1"]<img src="a.jpg" />[/caption]Suite.', "Texte.\nSuite."),
    # ordinary brackets stay
    "editorial brackets": ("Il a dit [sic] que [le gouvernement] ment [1]. [...] [Vidéo] Jean et [video] reste.",
                           "Il a dit [sic] que [le gouvernement] ment [1]. [...] [Vidéo] Jean et [video] reste."),
    "points are not style": ("Une police de 11pt et un score de 3=0.", "Une police de 11pt et un score de 3=0."),
}


@pytest.mark.parametrize("raw, expected", MARKUP.values(), ids=MARKUP.keys())
def test_scraped_markup_is_stripped_at_ingestion(raw, expected):
    from rag.chunking import split_sentences

    a = article_from_record({"title": "Titre", "text": raw}, origin="t.jsonl:1")
    assert a.text == expected
    # the stored text is what is chunked and quoted: offsets index into it
    assert all(a.text[s:e] == a.text[s:e].strip() for s, e in split_sentences(a.text))


def test_markup_stripping_applies_to_every_reader(tmp_path):
    raw = 'Le métro arrive.[EMBED url="https://x.fr/v.html"]Les travaux commencent.'
    html = tmp_path / "a.html"
    html.write_text(f"<html><head><title>Titre</title></head><body><p>{raw}</p></body></html>", encoding="utf-8")
    txt = tmp_path / "a.txt"
    txt.write_text(f"Titre\n{raw}\n", encoding="utf-8")
    texts = {item.text for item in read_articles([html, txt])}
    texts.add(article_from_text("Titre", raw).text)
    assert texts == {"Le métro arrive.\nLes travaux commencent."}


def test_markup_only_record_is_a_problem():
    with pytest.raises(InputError, match="text is empty"):
        article_from_record({"title": "Titre", "text": '[EMBED url=" "]'}, origin="t")
