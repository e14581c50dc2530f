"""Hostile files (issue 10): unbounded problem lists, lone surrogates, gzip bombs, symlinks.

Hashing embedder and small files: seconds. The sizes are scaled down by lowering
the limits, so each test shows the cap working without writing gigabytes.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import tracemalloc

import pytest

import rag
from rag import ui
from rag.articles import ReadLimits, read_articles
from rag.cli import main as cli
from rag.types import MAX_REPORTED_PROBLEMS

GOOD = json.dumps({"id": "good", "title": "Bonne nouvelle", "text": "Le port de Brest a rouvert lundi."})


# -- finding 3: problems are bounded ---------------------------------------------------


def test_many_bad_records_give_a_bounded_report_and_message(hash_config, tmp_path, capsys):
    f = tmp_path / "bad.jsonl"
    f.write_text("{}\n" * 5000 + GOOD + "\n", encoding="utf-8")
    index = rag.Index.create(hash_config.index_dir, hash_config)
    report = index.add([f])
    assert report.problem_count >= 1000
    assert len(report.problems) == MAX_REPORTED_PROBLEMS
    assert sum(report.problem_kinds.values()) == report.problem_count
    summary = "\n".join(report.problem_summary(10))
    assert len(summary) < 3000 and "more" in summary
    assert len(json.dumps(report.to_dict())) < 50_000
    index.close()
    # The CLI: each of the first problems once (not also through the logger), then counts.
    code = cli(["index", "add", str(f), "--index", str(hash_config.index_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err) < 30_000
    assert err.count(f"{f}:1:") == 1
    assert "more:" in err and "could not be read" in err


def test_upload_of_bad_lines_gives_a_short_message(hash_config, tmp_path):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    backend = ui.Backend(index, max_upload_bytes=10 * 1024 * 1024)
    f = tmp_path / "up.jsonl"
    f.write_text("{}\n" * 200_000, encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(rag.InputError) as exc:
        backend.add_uploads([f], names=["up.jsonl"])
    message = str(exc.value)
    assert len(message) < 3000, len(message)
    assert "up.jsonl (record 1)" in message and "more" in message
    assert time.perf_counter() - t0 < 60
    index.close()


# -- finding 4: a lone surrogate is one bad record ------------------------------------------


@pytest.mark.parametrize("field", ["title", "text", "id", "source"])
def test_lone_surrogate_is_a_bad_record_and_reading_goes_on(hash_config, tmp_path, field):
    rec = {"id": "s1", "title": "Titre", "text": "Un texte.", "source": "AFP"}
    rec[field] = rec[field] + "\\ud800"
    f = tmp_path / "s.jsonl"
    # json.dumps would escape the backslash: write the escape as JSON text.
    f.write_text(json.dumps(rec).replace("\\\\ud800", "\\ud800") + "\n" + GOOD + "\n", encoding="utf-8")
    index = rag.Index.create(hash_config.index_dir, hash_config)
    report = index.add([f])
    assert report.added == ["good"]
    [p] = report.problems
    assert p.line == 1 and "surrogate" in p.reason and field in p.reason
    g = tmp_path / "s.json"
    g.write_text("[" + json.dumps(rec).replace("\\\\ud800", "\\ud800") + "," + GOOD + "]", encoding="utf-8")
    items = list(read_articles([g]))
    assert isinstance(items[0], rag.RecordProblem) and items[0].line == 1
    assert isinstance(items[1], rag.Article)


def test_lone_surrogate_through_the_app_is_an_input_error(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    backend = ui.Backend(index)
    with pytest.raises(rag.InputError, match="surrogate"):
        backend.add_text("Titre \ud800", "Un texte.")
    with pytest.raises(rag.InputError, match="^source must be text"):
        backend.add_text("Titre", "Un texte.", source=3)
    index.close()


# -- finding 5: .jsonl.gz is capped ----------------------------------------------------------


def test_gzip_bomb_of_newlines_stops_quickly(tmp_path):
    f = tmp_path / "bomb.jsonl.gz"
    with gzip.open(f, "wb", compresslevel=9) as g:
        g.write((GOOD + "\n").encode())
        chunk = b"\n" * (1 << 20)
        for _ in range(64):  # 64 MiB of newlines in ~64 KB
            g.write(chunk)
    t0 = time.perf_counter()
    items = list(read_articles([f]))
    assert time.perf_counter() - t0 < 30
    assert isinstance(items[0], rag.Article)
    assert isinstance(items[-1], rag.RecordProblem) and "expands more than" in items[-1].reason


def test_gzip_decompressed_size_is_capped(tmp_path):
    f = tmp_path / "big.jsonl.gz"
    with gzip.open(f, "wb") as g:
        for i in range(2000):
            g.write((json.dumps({"id": str(i), "title": f"T{i}", "text": os.urandom(300).hex()}) + "\n").encode())
    limits = ReadLimits(max_gzip_bytes=100_000)
    items = list(read_articles([f], limits))
    assert isinstance(items[-1], rag.RecordProblem) and "decompresses to more than" in items[-1].reason
    assert 0 < sum(isinstance(i, rag.Article) for i in items) < 2000


@pytest.mark.parametrize("name", ["junk.jsonl", "junk.jsonl.gz", "junk.json"])
def test_a_file_of_bad_records_is_abandoned_with_flat_memory(tmp_path, name):
    f = tmp_path / name
    n = 200_000
    data = ("[" + ",".join(["{}"] * n) + "]") if name == "junk.json" else "{}\n" * n
    if name.endswith(".gz"):
        f.write_bytes(gzip.compress(data.encode()))
    else:
        f.write_text(data, encoding="utf-8")
    tracemalloc.start()
    count, last = 0, None
    for item in read_articles([f]):
        count += 1
        last = item
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == ReadLimits().max_bad_in_a_row + 1
    assert "bad records in a row" in last.reason
    if name != "junk.json":  # .json is parsed whole (and capped by size)
        assert peak < 20 * 1024 * 1024


# -- finding 7: a folder walk does not follow links out of the folder -------------------------


def test_folder_walk_skips_links_that_leave_the_folder(hash_config, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("Secret\n\nroot:$6$hash:19000:0:99999:7:::\n", encoding="utf-8")
    folder = tmp_path / "dir"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.txt").write_text("Titre\n\nUn texte ordinaire.\n", encoding="utf-8")
    (folder / "shadow.txt").symlink_to(outside)
    (folder / "sub" / "inner.txt").symlink_to(folder / "ok.txt")  # stays inside: fine (read once)
    index = rag.Index.create(hash_config.index_dir, hash_config)
    report = index.add([folder])
    assert len(report.added) == 1
    [p] = report.problems
    assert p.path.endswith("shadow.txt") and "outside the folder" in p.reason
    assert not any("root:" in index.get_article(a).text for a in report.added)
    # Named on its own, the link is the user's choice.
    assert len(index.add([folder / "shadow.txt"]).added) == 1
    index.close()


def test_problems_reach_the_cli_once(tmp_path, capsys, hash_config):
    """Issue 10 finding 8: a problem was printed by the logger and by the CLI."""
    f = tmp_path / "one.jsonl"
    f.write_text("{}\n" + GOOD + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main(sys.argv[1:]))",
                          "index", "add", str(f), "--index", str(tmp_path / "ix"), "--embedder", "hash", "-q"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 1
    assert out.stderr.count("record has no title") == 1, out.stderr
