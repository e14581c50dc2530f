"""Large ingests: a cheap count for the progress total, commits on time as well as on count,
and an interruption that keeps what was committed (issue 12, item 5). Hash embedder only."""

from __future__ import annotations

import gzip
import json

import pytest

import rag
from rag import counting
from rag.articles import read_articles
from rag.cli import main
from rag.config import Config
from rag.errors import ConfigError, IngestInterrupted
from rag.index import FIRST_BATCH, IngestProgress
from rag.ui.render import add_progress_text, fmt_duration


def articles(n: int, prefix: str = "a") -> list[rag.Article]:
    return [rag.Article(id=f"{prefix}{i}", title=f"Titre {prefix}{i}",
                        text=f"Premier paragraphe de l'article {i}. Une phrase de plus.\nSecond paragraphe {i}.")
            for i in range(n)]


def record(i: int) -> str:
    return json.dumps({"id": f"r{i}", "title": f"Titre {i}", "text": f"Le texte de l'article {i}. Fin."})


# -- counting ---------------------------------------------------------------------


@pytest.mark.parametrize("data, lines", [
    (b"", 0),
    (b"a", 1),
    (b"a\nb\n", 2),
    (b"a\nb", 2),  # no newline at the end
    (b"\n\na\n\n\n b\n  \n\t\r\n", 2),  # blank lines, blanks, CRLF
    (b"a\r\nb\r\n", 2),
    (b"   \n\n", 0),
])
def test_count_text_lines(data, lines):
    assert counting.count_text_lines([data]) == lines
    # wherever the stream is cut into chunks
    for cut in range(len(data) + 1):
        assert counting.count_text_lines([data[:cut], data[cut:]]) == lines
    assert counting.count_text_lines([data[i:i + 1] for i in range(len(data))]) == lines


def test_count_of_a_folder_matches_what_is_read(tmp_path):
    top = tmp_path / "in"
    (top / "sub").mkdir(parents=True)
    (top / "a.txt").write_text("Titre\n\nUn texte.", encoding="utf-8")
    (top / "b.md").write_text("# Titre\n\nUn texte.", encoding="utf-8")
    (top / "sub" / "c.html").write_text("<title>T</title><p>Un texte de page.</p>", encoding="utf-8")
    (top / ".hidden.txt").write_text("caché", encoding="utf-8")  # not walked
    (top / "notes.pdf").write_bytes(b"%PDF")  # not walked
    (top / "empty.txt").write_bytes(b"")  # one problem
    # blank lines, a bad record, and no newline after the last line
    (top / "feed.jsonl").write_text("\n" + record(1) + "\n\n  \n{broken\n" + record(2) + "\n" + record(3),
                                    encoding="utf-8")
    with gzip.open(top / "more.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(record(i) for i in range(10, 17)) + "\n")
    (top / "list.json").write_text(json.dumps([json.loads(record(i)) for i in range(20, 22)]), encoding="utf-8")
    (top / "obj.json").write_text(json.dumps({"articles": [json.loads(record(i)) for i in range(30, 33)]}),
                                  encoding="utf-8")
    (top / "one.json").write_text(record(40), encoding="utf-8")
    items = list(read_articles([top]))
    problems = [i for i in items if not isinstance(i, rag.Article)]
    assert len(problems) == 2  # the empty file and the broken record
    assert counting.count_records([top]) == len(items) == 3 + 1 + 4 + 7 + 2 + 3 + 1
    assert counting.count_records([top / "feed.jsonl", tmp_path / "missing.jsonl"]) == 4


def test_a_large_json_file_is_estimated_from_its_titles(tmp_path, monkeypatch):
    f = tmp_path / "big.json"
    f.write_text(json.dumps([json.loads(record(i)) for i in range(50)]), encoding="utf-8")
    monkeypatch.setattr(counting, "JSON_PARSE_BYTES", 100)
    monkeypatch.setattr(counting, "_CHUNK", 7)  # keys cut across chunks are still counted once
    assert counting.count_file(f) == 50


def test_a_damaged_gzip_file_still_counts_what_it_can(tmp_path):
    f = tmp_path / "bad.jsonl.gz"
    f.write_bytes(gzip.compress(("\n".join(record(i) for i in range(100)) + "\n").encode())[:-30])
    assert 1 <= counting.count_file(f) <= 100
    (tmp_path / "notgzip.jsonl.gz").write_bytes(b"plain text\n")
    assert counting.count_file(tmp_path / "notgzip.jsonl.gz") == 1


# -- progress, commits on time ---------------------------------------------------------


def test_progress_has_the_total_first_and_each_commit_is_in_the_store(hash_config, tmp_path):
    f = tmp_path / "feed.jsonl"
    f.write_text("\n".join(record(i) for i in range(30)) + "\n\n", encoding="utf-8")
    index = rag.Index.create(hash_config.index_dir, hash_config)
    seen: list[tuple[IngestProgress, int]] = []
    index.add([f, *articles(5)], progress=lambda p: seen.append((p, index.store.counts()[0])))
    first = seen[0][0]
    assert (first.done, first.total, first.saved) == (0, 35, 0)
    assert seen[1][0].done == FIRST_BATCH < 35  # an early first commit
    for p, stored in seen:
        assert p.total == 35 and stored == p.saved  # what is reported saved is in the store
    assert seen[-1][0].done == seen[-1][0].saved == 35 and seen[-1][0].fraction == 1.0


def test_batches_are_sized_to_commit_every_commit_seconds(hash_config, monkeypatch):
    """Each article takes 2 s (on a fake clock): after the first batch, 30 s fit 15."""
    index = rag.Index.create(hash_config.index_dir, hash_config.with_(commit_every=64, commit_seconds=30))
    now = [0.0]
    index.clock = lambda: now[0]
    real = index._commit

    def slow(batch, report):
        now[0] += 2.0 * len(batch)
        return real(batch, report)

    monkeypatch.setattr(index, "_commit", slow)
    done = []
    index.add(articles(50), progress=lambda p: done.append(p.done))
    assert done == [0, 8, 23, 38, 50]


def test_a_slow_source_commits_on_time_before_the_count(hash_config):
    """A clock where every look takes 1 s: with 3 s between commits, no batch waits for its count."""
    index = rag.Index.create(hash_config.index_dir, hash_config.with_(commit_seconds=3))
    ticks = iter(range(10_000))
    index.clock = lambda: float(next(ticks))
    done = []
    index.add(articles(20), progress=lambda p: done.append(p.done))
    sizes = [b - a for a, b in zip(done, done[1:])]
    assert len(sizes) > 2 and max(sizes) < FIRST_BATCH and sum(sizes) == 20
    assert index.store.counts()[0] == 20


def test_an_interrupted_ingest_keeps_its_commits_and_a_rerun_embeds_only_the_rest(hash_config, monkeypatch):
    index = rag.Index.create(hash_config.index_dir, hash_config.with_(commit_every=10))
    arts = articles(40)

    def stop(p):
        if p.saved >= 15:
            raise KeyboardInterrupt

    with pytest.raises(IngestInterrupted) as stopped:
        index.add(arts, progress=stop)
    saved = stopped.value.saved
    assert stopped.value.total == 40 and 15 <= saved < 40
    index.close()
    index = rag.Index.open(hash_config.index_dir)
    assert index.store.counts()[0] == saved
    embedded: list[str] = []
    real = index.embedder.embed_passages
    monkeypatch.setattr(index.embedder, "embed_passages", lambda texts: (embedded.extend(texts), real(texts))[1])
    report = index.add(arts)
    assert len(report.unchanged) == saved and len(report.added) == 40 - saved
    kept = {a.title for a in arts if a.id in set(report.unchanged)}
    assert embedded and not {t.split("\n")[0] for t in embedded} & kept  # the title heads each text
    assert index.store.counts()[0] == 40


def test_cli_bar_shows_the_total_and_an_interruption_says_what_was_saved(tmp_path, capsys, monkeypatch):
    f = tmp_path / "feed.jsonl"
    f.write_text("\n".join(record(i) for i in range(30)), encoding="utf-8")
    idx = str(tmp_path / "idx")
    opts = ["--index", idx, "--embedder", "hash", "--chunk-size", "64", "--chunk-overlap", "8"]
    calls = [0]
    real = rag.Index._commit

    def interrupt_second(self, batch, report):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(self, batch, report)

    monkeypatch.setattr(rag.Index, "_commit", interrupt_second)
    assert main(["index", "add", str(f), *opts]) == 130
    err = capsys.readouterr().err
    assert f"interrupted: {FIRST_BATCH} of 30 articles saved; run the same command again" in err
    assert f"{FIRST_BATCH}/30 " in err  # the bar has its total
    monkeypatch.setattr(rag.Index, "_commit", real)
    assert main(["index", "add", str(f), *opts]) == 0
    out, err = capsys.readouterr()
    assert f"{30 - FIRST_BATCH} added, 0 updated, {FIRST_BATCH} unchanged" in out
    assert "30/30 " in err


# -- the pieces -------------------------------------------------------------------


def test_ingest_progress_fraction_eta_and_the_app_line():
    p = IngestProgress(done=25, total=100, saved=20, chunks=60, seconds=50.0)
    assert p.fraction == 0.25 and p.eta_seconds == pytest.approx(150.0)
    assert add_progress_text(p) == "Embedding and indexing: 20 of 100 articles saved, about 3 min left"
    unknown = IngestProgress(done=5, total=None, saved=5, chunks=9, seconds=3.0)
    assert unknown.fraction is None and unknown.eta_seconds is None
    assert add_progress_text(unknown) == "Embedding and indexing"
    assert [fmt_duration(s) for s in (0.2, 42, 170, 4800)] == ["1 s", "42 s", "3 min", "1 h 20 min"]


def test_commit_seconds_setting(monkeypatch):
    assert Config().commit_seconds == 30.0
    monkeypatch.setenv("RAG_COMMIT_SECONDS", "2.5")
    assert Config.from_env().commit_seconds == 2.5
    monkeypatch.setenv("RAG_COMMIT_SECONDS", "soon")
    with pytest.raises(ConfigError, match="RAG_COMMIT_SECONDS must be a number"):
        Config.from_env()
    with pytest.raises(ConfigError, match="commit_seconds must be a positive"):
        Config(commit_seconds=0)


def test_the_apps_add_files_progress_has_a_fraction_and_time_left(hash_config, tmp_path):
    """The app's upload handler, built by the real Gradio page (its handler called, no browser)."""
    from rag import ui

    f = tmp_path / "lot.jsonl"
    f.write_text("\n".join(record(i) for i in range(20)) + "\n", encoding="utf-8")
    index = rag.Index.create(hash_config.index_dir, hash_config)
    demo = ui.build_app(ui.Backend(index))
    add_files = next(fn.fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "add_files")
    calls = []
    add_files([str(f)], "", progress=lambda value, desc=None, **kw: calls.append((value, desc)))
    assert calls[0] == (0, "Reading 1 file(s)")
    shown = calls[1:]
    assert shown[0] == ((0, 20), "Embedding and indexing: 0 of 20 articles saved")
    assert shown[-1] == ((20, 20), "Embedding and indexing: 20 of 20 articles saved")
    assert any(v == (FIRST_BATCH, 20) and d.startswith(f"Embedding and indexing: {FIRST_BATCH} of 20 articles saved")
               for v, d in shown)
    assert index.store.counts()[0] == 20
    index.close()
