"""The index folder: ingestion, updates, removal, manifest checks, crash safety, filters.

These use the hashing embedder so they test the plumbing in seconds; the real
model is exercised in test_retrieval_e5.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import rag
from rag.config import Config
from rag.index import FIRST_BATCH, MANIFEST


def make_articles(n: int, *, prefix: str = "a", date: str | None = None, source: str | None = None):
    topics = ["élections municipales", "réforme des retraites", "coupe du monde", "climat et énergie", "budget de l'État"]
    return [
        rag.Article(
            id=f"{prefix}{i}",
            title=f"Article {i} sur {topics[i % len(topics)]}",
            text=f"Paragraphe un de l'article {i} sur {topics[i % len(topics)]}. Une deuxième phrase ici.\n"
            f"Second paragraphe numéro {i} avec d'autres mots.",
            date=date,
            source=source,
        )
        for i in range(n)
    ]


def consistent(index: rag.Index) -> None:
    """The FAISS ids are exactly the store's chunk ids."""
    n_articles, n_chunks = index.store.counts()
    assert len(index.vectors) == n_chunks
    ids, _ = index.store.all_vectors(index.vectors_dim)
    import faiss

    faiss_ids = np.sort(faiss.vector_to_array(index.vectors.faiss_index.id_map))
    assert np.array_equal(np.sort(ids), faiss_ids)


def test_add_seed_builds_a_manifest(seed_dir, hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    report = index.add([seed_dir])
    assert len(report.added) == 1 and not report.problems
    assert report.chunks_added >= 2
    manifest = json.loads((hash_config.index_dir / MANIFEST).read_text())
    assert manifest["format_version"] == 1
    assert manifest["embedder"]["name"] == "hash" and manifest["embedder"]["dim"] == 256
    assert manifest["chunking"]["size"] == 64 and manifest["chunking"]["overlap"] == 8
    assert manifest["counts"] == {"articles": 1, "chunks": report.chunks_added}
    assert len(manifest["checksum"]) == 64
    consistent(index)
    hits = index.retriever().retrieve("coordination conjointe de la France et du Royaume-Uni", k=3)
    assert "coordination conjointe" in hits[0].text
    art = index.get_article(hits[0].article_id)
    assert art.text[hits[0].start : hits[0].end] == hits[0].text


def test_readd_is_a_noop_and_update_replaces(seed_dir, hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([seed_dir])
    gen = index.store.generation
    ids_before, _ = index.store.all_vectors(index.vectors_dim)

    again = index.add([seed_dir])
    assert again.unchanged and not again.added and not again.updated and again.chunks_added == 0
    assert index.store.generation == gen
    assert np.array_equal(index.store.all_vectors(index.vectors_dim)[0], ids_before)

    [a] = make_articles(1)
    index.add([a])
    changed = rag.Article(id=a.id, title=a.title, text=a.text + "\nUn paragraphe ajouté sur la pêche au thon.")
    report = index.add([changed])
    assert report.updated == [a.id]
    assert "pêche au thon" in index.get_article(a.id).text
    consistent(index)
    hits = index.retriever().retrieve("pêche au thon", k=1)
    assert hits[0].article_id == a.id and "thon" in hits[0].text


def test_remove(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(make_articles(3))
    assert index.remove("a1") is True
    assert index.remove("a1") is False
    assert index.get_article("a1") is None
    assert {h.article_id for h in index.retriever().retrieve("article 1", k=10)} <= {"a0", "a2"}
    consistent(index)
    reopened = rag.Index.open(hash_config.index_dir)
    assert reopened.store.counts()[0] == 2
    consistent(reopened)


def test_manifest_mismatch_says_what_to_run(seed_dir, hash_config):
    rag.Index.create(hash_config.index_dir, hash_config).add([seed_dir])
    with pytest.raises(rag.IndexMismatchError, match="rag index rebuild"):
        rag.Index.open(hash_config.index_dir, hash_config.with_(embedder="hash:128"))
    with pytest.raises(rag.IndexMismatchError, match="chunks of 128 tokens"):
        rag.Index.open(hash_config.index_dir, hash_config.with_(chunk_size=128))
    # Without a config the index's own settings are used.
    assert rag.Index.open(hash_config.index_dir).config.embedder == "hash"
    manifest = json.loads((hash_config.index_dir / MANIFEST).read_text())
    manifest["chunking"]["splitter"] = "old-splitter-v0"
    (hash_config.index_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(rag.IndexMismatchError, match="old-splitter-v0"):
        rag.Index.open(hash_config.index_dir)
    # which the rebuild it names repairs (re-chunking what is stored)
    rebuilt = rag.Index.rebuild(hash_config.index_dir, hash_config)
    assert rebuilt.store.counts()[0] == 1
    rebuilt.close()
    manifest = json.loads((hash_config.index_dir / MANIFEST).read_text())
    manifest["format_version"] = 99
    (hash_config.index_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(rag.IndexMismatchError, match="v99"):
        rag.Index.open(hash_config.index_dir)


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(rag.IndexNotFoundError, match="rag index add"):
        rag.Retriever.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", bytes(range(256)) * 40, "binary"),
        ("latin1.txt", "Titre\nL'été à Paris, très chaud.".encode("latin-1"), "UTF-8"),
        ("scripts.html", b"<html><head><script>alert(1)</script></head><body><script>x()</script></body></html>", ""),
        ("norecord.jsonl", json.dumps({"title": "Sans texte"}).encode(), "text"),
        ("doc.pdf", b"%PDF-1.4", "unsupported"),
    ],
)
def test_bad_input_leaves_the_index_as_it_was(hash_config, seed_dir, tmp_path, name, content, reason):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([seed_dir])
    before = (index.store.counts(), index.store.generation, index.manifest["checksum"])
    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    bad.write_bytes(content)
    report = index.add([bad])
    assert len(report.problems) == 1 and not report.added
    assert reason.lower() in report.problems[0].reason.lower()
    assert str(bad) in str(report.problems[0])
    assert (index.store.counts(), index.store.generation, index.manifest["checksum"]) == before
    consistent(rag.Index.open(hash_config.index_dir))


def test_huge_file_is_refused_without_reading_it(hash_config, tmp_path, monkeypatch):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:
        fh.write(b"Titre\n")
        fh.truncate(50 * 1024 * 1024)
    import builtins

    real_open = builtins.open
    opened = []
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: (opened.append(str(f)), real_open(f, *a, **k))[1])
    report = index.add([big])
    monkeypatch.undo()
    assert str(big) not in opened
    assert "MB" in report.problems[0].reason and not report.added
    assert index.store.counts() == (0, 0)


def test_html_scripts_are_dropped(hash_config, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Vote au Sénat</title><script>alert('x')</script><style>p{}</style></head>"
        "<body><nav>Accueil | Politique</nav><p>Le Sénat a voté la loi mardi.</p>"
        "<img src=x onerror=alert(1)><p>Le texte revient à l'Assemblée.</p></body></html>",
        encoding="utf-8",
    )
    index = rag.Index.create(hash_config.index_dir, hash_config)
    assert index.add([page]).added
    art = index.get_article(index.articles()[0]["id"])
    assert art.title == "Vote au Sénat"
    assert "Le Sénat a voté la loi mardi." in art.text
    for bad in ("alert", "script", "onerror", "Accueil", "p{}"):
        assert bad not in art.text


def test_bad_record_is_reported_and_others_go_in(hash_config, tmp_path):
    f = tmp_path / "feed.jsonl"
    lines = [
        json.dumps({"id": "ok1", "title": "Premier", "text": "Le premier texte."}),
        "{not json",
        json.dumps({"id": "nt", "title": "Sans corps"}),
        json.dumps({"id": "ok2", "title": "Second", "article": "Le second texte."}),
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = rag.Index.create(hash_config.index_dir, hash_config)
    report = index.add([f])
    assert sorted(report.added) == ["ok1", "ok2"]
    assert sorted(p.line for p in report.problems) == [2, 3]


def test_interrupted_ingest_of_10000_articles_resumes(hash_config):
    config = hash_config.with_(commit_every=500)
    index = rag.Index.create(config.index_dir, config)
    articles = make_articles(10_000)

    def stop_halfway(p):
        if p.done >= 5_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as stopped:
        index.add(articles, progress=stop_halfway)
    index.close()
    index = rag.Index.open(config.index_dir)
    committed = index.store.counts()[0]
    # the first batch is small (FIRST_BATCH), the others commit_every
    assert committed == 5_000 + FIRST_BATCH
    assert stopped.value.saved == committed and stopped.value.total == 10_000
    consistent(index)
    report = index.add(articles)
    assert len(report.unchanged) == committed
    assert len(report.added) == 10_000 - committed
    assert index.store.counts()[0] == 10_000
    consistent(index)


CHILD = textwrap.dedent(
    """
    import sys, rag
    from rag.config import Config
    cfg = Config(index_dir=sys.argv[1], embedder="hash", chunk_size=64, chunk_overlap=8, commit_every=3)
    index = rag.Index.open(sys.argv[1], cfg)
    i = 0
    while True:
        arts = [rag.Article(id=f"k{i}-{j}", title=f"T{i} {j}", text=("Une phrase sur le sujet %d. " % j) * 40) for j in range(6)]
        index.add(arts)
        index.remove(f"k{i}-0")
        i += 1
        print(i, flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.7, 2.6])
def test_kill_during_writes_leaves_a_loadable_consistent_index(hash_config, tmp_path, delay):
    rag.Index.create(hash_config.index_dir, hash_config).add(make_articles(4))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(hash_config.index_dir)], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert child.stdout.readline()  # it has written at least once
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    index = rag.Index.open(hash_config.index_dir)
    consistent(index)
    assert index.get_article("a0") is not None
    assert index.retriever().retrieve("une phrase sur le sujet", k=3)
    # Writable again after the crash (the lock died with the child).
    index.add(make_articles(1, prefix="after"))
    consistent(index)


def test_second_writer_is_refused(hash_config):
    from rag.fsutil import write_lock

    index = rag.Index.create(hash_config.index_dir, hash_config)
    with write_lock(hash_config.index_dir):
        code = (
            "import rag,sys\n"
            "idx = rag.Index.open(sys.argv[1])\n"
            "idx.lock_wait = 0.5\n"
            "try:\n    idx.add([rag.Article(id='x', title='t', text='corps')])\nexcept rag.IndexLockedError as e:\n"
            "    print('LOCKED', e)\n"
        )
        out = subprocess.run([sys.executable, "-c", code, str(index.path)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "LOCKED" in out.stdout and "another process" in out.stdout


def test_filters_by_date_and_source(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(make_articles(3, prefix="old", date="2019-05-01", source="Orange Actu"))
    index.add(make_articles(3, prefix="new", date="2025-08-09T10:00:00Z", source="Le Monde"))
    r = index.retriever()
    hits = r.retrieve("article sur le climat", k=10, filters={"date_from": "2025-01-01"})
    assert hits and all(h.article_id.startswith("new") for h in hits)
    hits = r.retrieve("article sur le climat", k=10, filters={"date_to": "2019-12-31"})
    assert hits and all(h.article_id.startswith("old") for h in hits)
    hits = r.retrieve("article sur le climat", k=10, filters=rag.Filters(sources=("Orange Actu",)))
    assert hits and all(h.source == "Orange Actu" for h in hits)
    assert r.retrieve("article", k=5, filters={"date_from": "2030-01-01"}) == []
    with pytest.raises(rag.InputError, match="ISO date"):
        r.retrieve("article", filters={"date_from": "yesterday"})
    with pytest.raises(rag.InputError, match="unknown filter"):
        r.retrieve("article", filters={"author": "x"})


@pytest.mark.parametrize("question,message", [("", "empty"), ("   \n\t ", "empty"), ("x" * 20_000, "20,000"),
                                              ("\x00\x01\x02", "empty")])
def test_bad_questions(hash_config, question, message):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(make_articles(2))
    with pytest.raises(rag.InputError, match=message):
        index.retriever().retrieve(question)


def test_empty_index_returns_no_hits(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    assert index.retriever().retrieve("anything") == []


def test_llama_index_adapter(hash_config, seed_dir):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([seed_dir])
    li = index.retriever().as_llama_index(k=2)
    nodes = li.retrieve("coordination conjointe de la France")
    assert len(nodes) == 2
    assert "coordination conjointe" in nodes[0].node.get_content()
    assert nodes[0].node.metadata["title"].startswith("«Coalition")
    assert nodes[0].node.metadata["end"] > nodes[0].node.metadata["start"]
    engine = RetrieverQueryEngine.from_args(li, llm=MockLLM())
    response = engine.query("Qui coordonne la coalition ?")
    assert len(response.source_nodes) == 2


def test_hnsw_index_handles_updates(hash_config):
    config = hash_config.with_(faiss_index="hnsw")
    index = rag.Index.create(config.index_dir, config)
    index.add(make_articles(20))
    index.remove("a3")
    index.add([rag.Article(id="a4", title="Mise à jour", text="Nouveau texte sur la pêche au thon.")])
    consistent(index)
    assert index.retriever().retrieve("pêche au thon", k=1)[0].article_id == "a4"
    reopened = rag.Index.open(config.index_dir)
    assert reopened.manifest["faiss"]["kind"] == "hnsw"
    consistent(reopened)


def test_rebuild_switches_faiss_without_reembedding_and_reembeds_for_a_new_model(hash_config, seed_dir):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([seed_dir])
    index.close()
    index = rag.Index.rebuild(hash_config.index_dir, hash_config.with_(faiss_index="hnsw"))
    assert index.manifest["faiss"]["kind"] == "hnsw" and index.store.counts()[0] == 1
    index.close()
    index = rag.Index.rebuild(hash_config.index_dir, hash_config.with_(embedder="hash:128"))
    assert index.manifest["embedder"]["dim"] == 128 and index.vectors_dim == 128
    assert index.store.counts()[0] == 1
    assert "coordination conjointe" in index.retriever().retrieve("coordination conjointe", k=1)[0].text


def test_config_rejects_bad_values():
    with pytest.raises(rag.ConfigError, match="chunk_size"):
        Config(chunk_size=4)
    with pytest.raises(rag.ConfigError, match="'annoy'"):
        Config(faiss_index="annoy")
    with pytest.raises(rag.ConfigError, match="chunk_overlap"):
        Config(chunk_size=64, chunk_overlap=40)


def test_import_is_light():
    code = "import sys, rag; print(sorted(m for m in ('torch','faiss','llama_index','sentence_transformers','gradio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
