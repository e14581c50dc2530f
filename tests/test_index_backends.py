"""One contract for every index backend (rag.index.base), run on the folder and on Milvus Lite.

The hashing embedder keeps it to seconds. BM25 is compared by ranks, never by raw values:
Milvus Lite's scores are negated and computed by another implementation.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import rag
from rag.analysis import terms
from rag.filters import Filters
from rag.index import Index

HAS_MILVUS = bool(importlib.util.find_spec("pymilvus") and importlib.util.find_spec("milvus_lite"))
NO_MILVUS = "pymilvus and milvus-lite are not installed (pip install 'rag-news[milvus]')"

BACKENDS = ["folder", pytest.param("milvus-lite", marks=pytest.mark.skipif(not HAS_MILVUS, reason=NO_MILVUS))]


def news() -> list[rag.Article]:
    return [
        rag.Article(id="thon", title="La pêche au thon", date="2025-03-02", source="Sud Ouest", author="A. Martin",
                    text="Les pêcheurs de Saint-Jean-de-Luz ont débarqué du thon rouge.\n\n"
                         "Le quota annuel de thon a été relevé par la Commission européenne."),
        rag.Article(id="vote", title="Élections municipales", date="2024-06-10", source='Le "Monde"',
                    text="Le maire sortant a été réélu dès le premier tour.\n\n"
                         "La participation a atteint 41 % selon le ministère de l'Intérieur."),
        rag.Article(id="ble", title="Récolte de blé", date="2025-07-20", source="Ouest-France",
                    text="La récolte de blé tendre recule de 12 % en Beauce.\n\n"
                         "Les coopératives s'inquiètent de la qualité du grain et du thon en conserve."),
        rag.Article(id="undated", title="Un port sans date", date="au printemps", source="Ouest-France",
                    text="Le port de pêche attend des thoniers au printemps prochain."),
    ]


def location(kind: str, tmp_path, name: str = "index"):
    return tmp_path / (name + ".db" if kind == "milvus-lite" else name)


@pytest.fixture(params=BACKENDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def index(kind, tmp_path, hash_config):
    loc = location(kind, tmp_path)
    ix = Index.create(loc, hash_config.with_(index_dir=loc))
    ix.add(news())
    yield ix
    ix.close()


def q(text: str) -> list[str]:
    return terms(text, "fr")


def articles_of(index, ids) -> list[str]:
    rows = index.chunk_rows(list(ids))
    return [rows[c].article_id for c in ids]


def test_the_location_picks_the_backend(kind, index):
    assert type(index).__name__ == {"folder": "FolderIndex", "milvus-lite": "MilvusIndex"}[kind]
    assert isinstance(index, rag.Index) and isinstance(index, rag.index.IndexBackend)


def test_write_and_read_back(index):
    n_articles, n_chunks = index.counts()
    assert n_articles == 4 and n_chunks >= 4
    a = index.get_article("thon")
    src = news()[0]
    assert (a.title, a.text, a.date, a.source, a.author) == (src.title, src.text, src.date, src.source, src.author)
    assert index.checksums(["thon", "nope"]) == {"thon": src.checksum}
    spans = index.chunk_spans("thon")
    assert spans and spans[0][0] == 0 and spans == sorted(spans)
    ids, _ = index.dense_search(index.embedder.embed_query("thon rouge"), 20)
    rows = index.chunk_rows(ids)
    assert set(rows) == set(ids)
    for r in rows.values():
        art = index.get_article(r.article_id)
        assert r.text == art.text[r.start:r.end] and r.title == art.title and r.source == art.source
    assert [r["id"] for r in index.articles()][:3] == ["ble", "thon", "vote"]  # newest first, undated last
    assert index.articles()[-1]["id"] == "undated"
    assert dict(index.sources()) == {"Ouest-France": 2, "Sud Ouest": 1, 'Le "Monde"': 1}
    assert index.language_counts() == {"fr": 4}
    assert index.article_language("thon") == "fr" and index.get_article("nope") is None
    assert sorted(a.id for a in index.iter_articles()) == ["ble", "thon", "undated", "vote"]


def test_dense_scores_are_the_stored_vectors_cosines(index):
    vec = index.embedder.embed_query("participation au premier tour")
    ids, scores = index.dense_search(vec, 3)
    assert articles_of(index, ids[:1]) == ["vote"] and scores == sorted(scores, reverse=True)
    stored = index.chunk_vectors(ids)
    for c, s in zip(ids, scores):
        assert s == pytest.approx(float(stored[c] @ vec), abs=1e-5)


def test_replace_is_idempotent_by_checksum(index):
    gen = index.generation
    before = index.counts()
    report = index.add(news())
    assert report.unchanged == ["thon", "vote", "ble", "undated"] and not report.added and report.chunks_added == 0
    assert index.counts() == before and index.generation == gen
    changed = rag.Article(id="vote", title="Élections municipales", date="2024-06-10", source='Le "Monde"',
                          text="Le scrutin a été reporté à cause des inondations.")
    report = index.add([changed])
    assert report.updated == ["vote"] and index.generation != gen
    assert index.get_article("vote").text == changed.text and index.counts()[0] == 4
    assert index.lexical_search(q("participation ministère"), 10)[0] == []  # the old text is gone
    found = index.lexical_search(q("scrutin inondations"), 10)[0]
    assert articles_of(index, found) == ["vote"]
    assert index.chunk_spans("vote") == [(0, len(changed.text))]


def test_delete(index):
    vote_ids = [c for c in index.dense_search(index.embedder.embed_query("maire réélu"), 50)[0]
                if index.chunk_rows([c])[c].article_id == "vote"]
    assert vote_ids and index.remove("vote") is True
    assert index.remove("vote") is False and index.get_article("vote") is None
    assert index.counts()[0] == 3 and index.chunk_rows(vote_ids) == {}
    assert not set(vote_ids) & set(index.dense_search(index.embedder.embed_query("maire réélu"), 50)[0])
    assert index.lexical_search(q("maire réélu participation"), 10)[0] == []
    assert index.sentence_rows_within([("vote", 0, 10_000)], "title") == [[]]
    assert 'Le "Monde"' not in dict(index.sources())


@pytest.mark.parametrize("flt, allowed", [
    (Filters(sources=("Ouest-France",)), {"ble", "undated"}),
    (Filters(sources=('Le "Monde"',)), {"vote"}),
    (Filters(date_from="2025-01-01"), {"thon", "ble"}),
    (Filters(date_to="2024-12-31"), {"vote"}),
    (Filters(date_from="2025-03-01", date_to="2025-03-31", sources=("Sud Ouest", "Ouest-France")), {"thon"}),
    (Filters(date_from="2030-01-01"), set()),
])
def test_filters_are_pushed_down_into_both_searches(index, flt, allowed):
    vec = index.embedder.embed_query("thon pêche port")
    dense = articles_of(index, index.dense_search(vec, 20, flt)[0])
    lexical = articles_of(index, index.lexical_search(q("thon pêche port"), 20, flt)[0])
    assert set(dense) == allowed  # every chunk of the allowed articles, nothing else
    assert set(lexical) <= allowed and ("thon" in lexical) == ("thon" in allowed)
    unfiltered = set(articles_of(index, index.dense_search(vec, 20)[0]))
    assert unfiltered == {"thon", "vote", "ble", "undated"}  # the undated article is found without a date bound


def test_bm25_ranks_and_scores_of_given_ids_agree(index):
    terms_ = q("thon rouge")
    ids, scores = index.lexical_search(terms_, 10)
    assert articles_of(index, ids[:1]) == ["thon"] and all(s > 0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert {"vote"}.isdisjoint(articles_of(index, ids))  # no chunk without the terms
    other = index.dense_search(index.embedder.embed_query("maire réélu"), 1)[0][0]
    given = list(reversed(ids)) + [other]
    got = index.bm25_scores(terms_, given)
    assert got[-1] == 0.0 and all(got[:-1] > 0)
    order = [c for _, c in sorted(zip(-got[:-1], given[:-1]))]
    assert order == ids  # the same ranking as the search
    assert index.lexical_search([], 10) == ([], [])


def test_term_coverage(index):
    assert index.term_coverage(q("thon zzzinconnu")) == pytest.approx(0.5)
    assert index.term_coverage(q("thon blé")) == 1.0
    assert index.term_coverage([]) == 0.0


def test_read_after_write_in_the_same_and_another_handle(kind, index, tmp_path):
    new = rag.Article(id="neuf", title="Zeppelin", text="Un zeppelin survole Quimperlé ce matin.", source="Le Télégramme")
    index.add([new])
    found = index.lexical_search(q("zeppelin Quimperlé"), 5)[0]
    assert articles_of(index, found) == ["neuf"]
    other = Index.open(location(kind, tmp_path))
    try:
        assert other.counts() == index.counts() and other.get_article("neuf").text == new.text
        assert articles_of(other, other.lexical_search(q("zeppelin"), 5)[0]) == ["neuf"]
        assert other.config.embedder == "hash" and other.config.chunk_size == 64
    finally:
        other.close()


def test_sentence_vectors_by_span(index):
    art = index.get_article("thon")
    rows = index.sentence_rows_within([("thon", 0, len(art.text)), ("thon", 0, 5)], "title")
    assert len(rows[0]) >= 2 and rows[1] == []
    assert [r[0] for r in rows[0]] == sorted(r[0] for r in rows[0])
    assert all(v.shape == (index.vectors_dim,) and v.dtype == np.float32 for _, _, v in rows[0])
    key, vec = ("thon", 0, 10), np.ones(index.vectors_dim, np.float32) / np.sqrt(index.vectors_dim)
    index.save_sentence_vectors([(key, vec), (("nope", 0, 1), vec)], "plain")
    got = index.sentence_vectors([key, ("nope", 0, 1)], "plain")
    assert list(got) == [key] and np.allclose(got[key], vec, atol=1e-3)


def test_the_retriever_runs_unchanged_above_each_backend(index):
    for mode in ("dense", "bm25", "hybrid"):
        hits = rag.Retriever(index, mode=mode).retrieve("thon rouge débarqué", k=3)
        assert hits and hits[0].article_id == "thon"
    assert rag.Retriever(index).retrieve("thon", k=3, filters={"date_from": "2030-01-01"}) == []


@pytest.mark.skipif(not HAS_MILVUS, reason=NO_MILVUS)
def test_both_backends_rank_alike(tmp_path, hash_config):
    """On this small corpus both rank alike. On PIAF (761 passages) BM25's top 5 is the same
    for only a quarter of the questions: Milvus normalizes document length its own way, so
    close scores swap (README, Beyond one machine); R@5 stays within a point."""
    folder = Index.create(tmp_path / "f", hash_config.with_(index_dir=tmp_path / "f"))
    lite = Index.create(tmp_path / "m.db", hash_config.with_(index_dir=tmp_path / "m.db"))
    try:
        for ix in (folder, lite):
            ix.add(news())
        for question in ("thon rouge débarqué", "récolte de blé en Beauce", "participation premier tour", "port"):
            ranked = [articles_of(ix, ix.lexical_search(q(question), 10)[0]) for ix in (folder, lite)]
            assert ranked[0] == ranked[1], question
            hits = [[(h.article_id, h.start, h.end) for h in rag.Retriever(ix).retrieve(question, k=4)]
                    for ix in (folder, lite)]
            assert hits[0] == hits[1], question
    finally:
        folder.close()
        lite.close()


@pytest.mark.skipif(not HAS_MILVUS, reason=NO_MILVUS)
def test_milvus_chunk_ids_are_deterministic_and_locations_parse(tmp_path, hash_config):
    from rag.index.milvus import bm25_text, chunk_id, filter_expression, parse_location

    assert chunk_id("a", 0) == chunk_id("a", 0) != chunk_id("a", 1) and 0 <= chunk_id("b", 3) < 2 ** 63
    a, b = (Index.create(tmp_path / n, hash_config.with_(index_dir=tmp_path / n)) for n in ("a.db", "b.db"))
    try:
        for ix in (a, b):
            ix.add(news()[:2])
        assert sorted(a.dense_search(a.embedder.embed_query("thon"), 10)[0]) == sorted(
            b.dense_search(b.embedder.embed_query("thon"), 10)[0])
    finally:
        a.close()
        b.close()
    assert parse_location("milvus://db.example:19531/news-2025")[:3] == ("http://db.example:19531", "news_2025", None)
    assert parse_location("milvus:/db.example/news")[0] == "http://db.example:19530"  # as a Path spells it
    assert bm25_text(["thon", "été", "a-b"]) == "thon x" + "été".encode().hex() + " x" + b"a-b".hex()
    assert filter_expression(Filters(date_to="2024-12-31")) == "date_key >= 0 and date_key <= 20241231"
    with pytest.raises(rag.InputError):
        parse_location("milvus://host-only")


@pytest.mark.skipif(not HAS_MILVUS, reason=NO_MILVUS)
def test_the_cli_adds_searches_and_asks_a_milvus_lite_index(tmp_path, seed_dir, capsys):
    import json

    from rag.cli import main

    db = str(tmp_path / "cli.db")
    build = ["--embedder", "hash", "--chunk-size", "64", "--chunk-overlap", "8"]
    assert main(["index", "add", str(seed_dir), "--index", db, *build]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["index", "add", str(seed_dir), "--index", db]) == 0
    assert "1 unchanged" in capsys.readouterr().out
    assert main(["search", "coalition des volontaires", "--index", db, "--k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    hits = hits["hits"] if isinstance(hits, dict) else hits
    assert len(hits) == 2 and all("coalition" in h["title"].lower() for h in hits)
    assert main(["ask", "Qui veut envoyer des soldats en Ukraine ?", "--index", db, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["citations"] or answer.get("refused")
    assert main(["index", "stats", "--index", db, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["articles"] == 1 and stats["chunks"] == stats["vectors"] > 1


def test_importing_the_library_or_opening_a_folder_never_imports_pymilvus(hash_config):
    import subprocess
    import sys

    code = ("import sys, rag, rag.index, rag.retriever, rag.chat\n"
            f"ix = rag.Index.create({str(hash_config.index_dir)!r}, rag.Config(embedder='hash'))\n"
            "ix.close(); rag.Index.open(ix.path).close()\n"
            "assert 'pymilvus' not in sys.modules and 'rag.index.milvus' not in sys.modules, 'imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_milvus_location_without_the_extra_says_what_to_install(tmp_path, hash_config, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if not installed
    with pytest.raises(rag.ConfigError, match=r"rag-news\[milvus\]"):
        Index.create(tmp_path / "x.db", hash_config.with_(index_dir=tmp_path / "x.db"))


@pytest.mark.skipif(not HAS_MILVUS, reason=NO_MILVUS)
def test_a_milvus_lite_index_open_in_another_process_is_locked(tmp_path, hash_config):
    import subprocess
    import sys

    db = tmp_path / "busy.db"
    index = Index.create(db, hash_config.with_(index_dir=db))  # this process holds Milvus Lite's lock now
    code = ("import rag\n"
            "try:\n"
            f"    rag.Index.open({str(db)!r})\n"
            "except rag.IndexLockedError as exc:\n"
            "    print('locked:', exc)\n")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.stdout.startswith("locked:") and "one process at a time" in proc.stdout, proc.stderr[-2000:]
    finally:
        index.close()


def test_the_apps_backend_runs_over_each_backend(kind, tmp_path, hash_config):
    from rag.ui.backend import Backend, UIConfig

    loc = location(kind, tmp_path, "app")
    Index.create(loc, hash_config.with_(index_dir=loc)).close()
    app = Backend.open(UIConfig(index_dir=loc))
    try:
        article, report = app.add_text("Le port de Brest rouvre", "Le port de commerce de Brest a rouvert mardi "
                                       "matin, trois jours après la tempête.", date="2025-02-01", source="Ouest-France")
        assert report.added == [article.id] and app.counts()[0] == 1 and app.sources() == ["Ouest-France"]
        assert [h.article_id for h in app.search("port de Brest tempête", 3)] == [article.id]
        assert [r["id"] for r in app.articles("brest")] == [article.id]
        assert app.ask("Quand le port de Brest a-t-il rouvert ?").text
    finally:
        app.index.close()
