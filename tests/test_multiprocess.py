"""Several processes on one index folder: two writers, readers during an ingest, the app and the CLI.

Real processes (the ``rag`` CLI, ``app.py``) on small indexes built with the hashing
embedder, so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rag
from rag.cli import main as cli
from rag.vectors import VectorIndex, latest_vectors_file
from test_index import consistent, make_articles

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
RAG = [sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main(sys.argv[1:]))"]


def write_jsonl(path, articles) -> None:
    path.write_text("".join(json.dumps({"id": a.id, "title": a.title, "text": a.text}) + "\n" for a in articles),
                    encoding="utf-8")


def file_matches_store(index_dir) -> bool:
    """The saved FAISS file holds exactly the store's chunk ids, for the store's generation."""
    index = rag.Index.open(index_dir)
    try:
        gen, path = latest_vectors_file(index_dir)
        saved = VectorIndex.load(path)
        return gen == index.store.generation and np.array_equal(saved.ids(), index.store.chunk_ids())
    finally:
        index.close()


def test_a_writer_starts_from_what_another_process_committed(hash_config, tmp_path):
    """Issue 10 finding 1: the app's stale FAISS copy must not be saved over the CLI's commit."""
    app = rag.Index.create(hash_config.index_dir, hash_config)
    app.add(make_articles(1, prefix="app"))
    f = tmp_path / "five.jsonl"
    write_jsonl(f, make_articles(5, prefix="cli"))
    subprocess.run([*RAG, "index", "add", str(f), "--index", str(hash_config.index_dir), "-q"], env=ENV,
                   check=True, capture_output=True)
    app.add(make_articles(1, prefix="app2"))
    app.remove("cli0")
    consistent(app)
    app.close()
    assert file_matches_store(hash_config.index_dir)
    index = rag.Index.open(hash_config.index_dir)
    assert index.store.counts()[0] == 6
    consistent(index)


def test_open_repairs_a_faiss_file_that_does_not_match_its_generation(hash_config):
    """A file saved by the old bug (right generation, stale ids) is found and repaired on open."""
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(make_articles(4))
    gen, path = latest_vectors_file(hash_config.index_dir)
    stale = VectorIndex.load(path)
    stale.remove(stale.ids()[:3])
    stale.save(path)
    index.close()
    index = rag.Index.open(hash_config.index_dir)
    consistent(index)
    assert file_matches_store(hash_config.index_dir)


INGEST = textwrap.dedent(
    """
    import pathlib, sys, time, rag
    index = rag.Index.open(sys.argv[1])
    index.config = index.config.with_(commit_every=3)
    flag = pathlib.Path(sys.argv[2])
    arts = [rag.Article(id=f"new{i}", title=f"Nouvelle {i} sur les volcans islandais",
                        text=f"Le volcan numero {i} est entre en eruption en Islande. Une phrase de plus.")
            for i in range(6)]

    def pause(p):
        if p.done == 3:
            print("COMMITTED", flush=True)
            while not flag.exists():
                time.sleep(0.05)

    index.add(arts, progress=pause)
    print("DONE", flush=True)
    """
)


def test_readers_and_a_running_app_see_an_ingest_in_progress(hash_config, tmp_path, capsys):
    """Issue 10 finding 2: during an ingest (its first batch committed, the FAISS file behind),
    opening for stats, search and ask works without the writer's lock, and an index opened
    before the ingest (the app) serves the new articles without a restart."""
    from rag.fsutil import write_lock

    app = rag.Index.create(hash_config.index_dir, hash_config)
    app.add(make_articles(2))
    script, flag = tmp_path / "ingest.py", tmp_path / "go-on"
    script.write_text(INGEST)
    child = subprocess.Popen([sys.executable, str(script), str(hash_config.index_dir), str(flag)],
                             stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert child.stdout.readline().strip() == "COMMITTED"
        # The running app: new articles are there, vectors match chunks.
        assert app.store.counts()[0] == 5
        consistent(app)
        hits = app.retriever().retrieve("volcan en éruption en Islande", k=3)
        assert hits and hits[0].article_id.startswith("new")
        # Fresh readers, even while a writer holds the lock for a commit.
        index_dir = str(hash_config.index_dir)
        with write_lock(hash_config.index_dir):
            capsys.readouterr()
            assert cli(["index", "stats", "--json", "--index", index_dir]) == 0
            stats = json.loads(capsys.readouterr().out)
            assert stats["articles"] == 5 and stats["vectors"] == stats["chunks"]
            assert cli(["search", "volcan islandais", "--index", index_dir, "--json"]) == 0
            assert "new" in capsys.readouterr().out
            assert cli(["ask", "Quel volcan est entré en éruption ?", "--index", index_dir, "--json"]) == 0
    finally:
        flag.touch()
        out, _ = child.communicate(timeout=60)
    assert "DONE" in out
    assert app.store.counts()[0] == 8
    consistent(app)
    app.close()
    assert file_matches_store(hash_config.index_dir)


def test_app_and_cli_writing_one_index_lose_no_vectors(hash_config, tmp_path, model_cache):
    """Issue 10 finding 1, as reported: app.py on an index of 1 article, `rag index add` of 5
    from the CLI, one /add_article through the app, stop the app: vectors == chunks."""
    pytest.importorskip("gradio_client")
    from gradio_client import Client
    from ui_server import start_app

    src = hash_config.index_dir
    rag.Index.create(src, hash_config).add(make_articles(1, prefix="first"))
    server = start_app(src, tmp_path / "app", model_cache)
    index_dir = server.index_dir
    try:
        f = tmp_path / "five.jsonl"
        write_jsonl(f, make_articles(5, prefix="cli"))
        subprocess.run([*RAG, "index", "add", str(f), "--index", str(index_dir), "-q"], env=ENV, check=True,
                       capture_output=True)
        api = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
        report = api.predict("Ferry strike in Brittany", "Crews of the Roscoff ferry company went on strike "
                             "on 12 June over pay.", api_name="/add_article")
        assert report["added"]
        # The app serves what the CLI added, without a restart.
        hits = api.predict("Article 3 sur climat et énergie", 5, api_name="/search")
        assert any(h["article_id"].startswith("cli") for h in hits)
    finally:
        server.stop()
    out = subprocess.run([*RAG, "index", "stats", "--json", "--index", str(index_dir)], env=ENV, check=True,
                         capture_output=True, text=True)
    stats = json.loads(out.stdout)
    assert stats["articles"] == 7
    assert stats["vectors"] == stats["chunks"]
    assert file_matches_store(index_dir)


REBUILD = textwrap.dedent(
    """
    import os, pathlib, shutil, signal, sys
    import rag
    from rag.config import Config

    index_dir, crash_at = pathlib.Path(sys.argv[1]), sys.argv[2]
    calls = {"rename": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_rename, real_move = pathlib.Path.rename, shutil.move

    def rename(self, target):
        calls["rename"] += 1
        if crash_at == f"rename{calls['rename']}":
            die()
        return real_rename(self, target)

    def move(src, dst, *a, **kw):
        out = real_move(src, dst, *a, **kw)
        if crash_at == "after-uploads-moved":
            die()
        return out

    pathlib.Path.rename, shutil.move = rename, move
    config = Config(index_dir=index_dir, embedder="hash", chunk_size=48, chunk_overlap=8)
    rag.Index.rebuild(index_dir, config)
    print("REBUILT", flush=True)
    """
)


@pytest.mark.parametrize("crash_at, outcome", [
    ("after-uploads-moved", "as it was before"),   # the new folder is not complete: roll back
    ("rename1", "rebuilt index is in place"),            # complete, not yet swapped
    ("rename2", "rebuilt index is in place"),            # between the two renames: no <index> at all
    ("none", None),                     # no crash
])
def test_rebuild_killed_during_the_swap_is_finished_or_undone(hash_config, tmp_path, crash_at, outcome, caplog):
    """Issue 10 finding 6: a re-embedding rebuild killed between its renames left no index."""
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(make_articles(5))
    index.close()
    uploads = hash_config.index_dir / "uploads"
    uploads.mkdir()
    (uploads / "abc-note.txt").write_text("Note\n\nUn texte.\n", encoding="utf-8")
    script = tmp_path / "rebuild.py"
    script.write_text(REBUILD)
    child = subprocess.run([sys.executable, str(script), str(hash_config.index_dir), crash_at], env=ENV,
                           capture_output=True, text=True, timeout=120)
    assert ("REBUILT" in child.stdout) == (crash_at == "none"), child.stderr[-2000:]
    caplog.set_level("WARNING", logger="rag.index")
    index = rag.Index.open(hash_config.index_dir)
    if outcome:
        assert any(outcome in r.getMessage() for r in caplog.records), caplog.text
    assert index.store.counts()[0] == 5
    consistent(index)
    expected_chunk_size = 64 if outcome == "as it was before" else 48
    assert index.config.chunk_size == expected_chunk_size
    index.close()
    assert (uploads / "abc-note.txt").is_file()
    parent = hash_config.index_dir.parent
    assert not (parent / "index.rebuild").exists() and not (parent / "index.old").exists()
