"""``rag mcp``: a real server process over stdio, driven by the official SDK's client.

The slow tests start one server on a real index (the default embedder) and make every call
once, then assert on what came back; the quick ones use the hashing embedder.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters  # the dev extra has the SDK (rag-news[mcp])
from mcp.client.stdio import stdio_client

from rag.cli import main

RAG = ["-c", "import sys; from rag.cli import main; sys.exit(main(sys.argv[1:]))"]
COORD = "Placée sous la coordination conjointe de la France et du Royaume-Uni"
TOOLS = {"search", "ask", "get_article", "list_articles"}


def server_params(index, model_cache, home) -> StdioServerParameters:
    env = {"PYTHONPATH": os.pathsep.join(sys.path), "RAG_CACHE_DIR": str(model_cache), "HOME": str(home),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return StdioServerParameters(command=sys.executable, args=[*RAG, "mcp", "--index", str(index)], env=env)


def run_session(params, calls, errlog) -> dict:
    """Start the server, list its tools, make each ``(name, tool, arguments)`` call; the results by name."""

    async def go():
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=300) as session:
                await session.initialize()
                out = {"tools": {t.name: t for t in (await session.list_tools()).tools}}
                for name, tool, arguments in calls:
                    out[name] = await session.call_tool(tool, arguments)
                return out

    return anyio.run(go)


def data(result) -> dict:
    """A successful call's structured result; its text content is the same, as JSON."""
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error(result) -> str:
    assert result.is_error and result.structured_content is None
    return result.content[0].text


# -- a real index, the real models ----------------------------------------------------------

CALLS = [
    ("ask", "ask", {"question": "who coordinates the coalition?"}),
    ("ask_since_june", "ask", {"question": "who coordinates the coalition?", "date_from": "2025-06-01"}),
    ("ask_le_monde", "ask", {"question": "who coordinates the coalition?", "sources": ["Le Monde"]}),
    ("ask_ouest_france", "ask", {"question": "who coordinates the coalition?", "sources": ["Ouest-France"]}),
    ("ask_off_topic", "ask", {"question": "Who won the 2018 World Cup?"}),
    ("ask_empty", "ask", {"question": "   "}),
    ("ask_bad_k", "ask", {"question": "who coordinates the coalition?", "k": 0}),
    ("search_spring", "search", {"query": "coalition", "k": 10, "date_from": "2025-01-01", "date_to": "2025-06-30"}),
    ("search_all", "search", {"query": "coalition", "k": 10}),
    ("search_source", "search", {"query": "coalition", "sources": ["Ouest-France"]}),
    ("search_bad_date", "search", {"query": "coalition", "date_from": "10/08/2025"}),
    ("search_reversed", "search", {"query": "coalition", "date_from": "2025-06-30", "date_to": "2025-01-01"}),
    ("search_bad_recent", "search", {"query": "coalition", "recent": "soon"}),
    ("search_bad_k", "search", {"query": "coalition", "k": 500}),
    ("article", "get_article", {"article_id": "coalition"}),
    ("unknown", "get_article", {"article_id": "no-such-article"}),
    ("list", "list_articles", {}),
    ("list_page", "list_articles", {"limit": 1, "offset": 1}),
    ("list_query", "list_articles", {"query": "brest"}),
]


@pytest.fixture(scope="module")
def served(news_index, model_cache, tmp_path_factory):
    home = tmp_path_factory.mktemp("mcp-home")
    with open(home / "stderr.log", "w", encoding="utf-8") as errlog:
        out = run_session(server_params(news_index, model_cache, home), CALLS, errlog)
        # A follow-up: its history is the previous exchange (a second session: a client keeps the conversation).
        first = data(out["ask_since_june"])
        follow = [("follow_up", "ask", {"question": "and when was it created?", "date_from": "2025-06-01",
                                        "history": [{"question": "who coordinates the coalition?",
                                                     "answer": first["answer"]}]})]
        out.update(run_session(server_params(news_index, model_cache, home), follow, errlog))
    out["stderr"] = (home / "stderr.log").read_text(encoding="utf-8")
    return out



@pytest.mark.slow
def test_the_four_tools_are_listed_with_their_schemas(served):
    tools = served["tools"]
    assert set(tools) == TOOLS
    search = tools["search"]
    assert {"query", "k", "date_from", "date_to", "sources", "recent"} <= set(search.input_schema["properties"])
    assert search.input_schema["required"] == ["query"]
    assert search.input_schema["properties"]["k"]["maximum"] == 50
    assert {"history", "date_from", "date_to", "sources", "recent"} <= set(tools["ask"].input_schema["properties"])
    # Typed results: the client receives (and checks) structured content against these.
    assert {"answer", "refused", "confidence", "citations"} <= set(tools["ask"].output_schema["properties"])
    assert all(t.annotations.read_only_hint for t in tools.values())
    assert "MCP server on stdio: 3 articles" in served["stderr"]


@pytest.mark.slow
def test_ask_cites_and_a_filter_changes_what_is_cited(served):
    # Unfiltered, the English article on the drone coalition is the closest match ...
    ans = data(served["ask"])
    assert not ans["refused"] and "Latvia" in ans["answer"]
    assert [c["article_id"] for c in ans["citations"]] == ["drones"]
    # ... and with a date or source filter, the seed's coordination sentence.
    for name in ("ask_since_june", "ask_le_monde"):
        ans = data(served[name])
        assert not ans["refused"] and "France" in ans["answer"] and "Royaume-Uni" in ans["answer"]
        c = ans["citations"][0]
        assert c["article_id"] == "coalition" and COORD in c["quote"] and c["url"] == "https://example.org/coalition"
        assert c["date"] == "2025-08-10" and f"[{c['n']}]" in ans["answer"]
        text = data(served["article"])["text"]
        assert text[c["start"]:c["end"]] == c["quote"]
        assert 0 < ans["confidence"] <= 1
    # Only the article on the port of Brest: nothing answers.
    ans = data(served["ask_ouest_france"])
    assert ans["refused"] and ans["citations"] == []
    assert {p["article_id"] for p in ans["related"]} == {"brest"}


@pytest.mark.slow
def test_a_follow_up_is_answered_from_the_conversation(served):
    ans = data(served["follow_up"])
    assert "coalition" in ans["standalone_question"]
    assert not ans["refused"] and "mars" in ans["answer"]


@pytest.mark.slow
def test_an_off_topic_question_is_refused(served):
    ans = data(served["ask_off_topic"])
    assert ans["refused"] and not ans["citations"]
    assert "do not contain" in ans["answer"] and ans["related"]


@pytest.mark.slow
def test_search_filters(served):
    hits = data(served["search_spring"])["hits"]
    assert hits and {h["article_id"] for h in hits} == {"drones"}
    assert {h["article_id"] for h in data(served["search_all"])["hits"]} == {"coalition", "drones", "brest"}
    hits = data(served["search_source"])["hits"]
    assert [h["source"] for h in hits] == ["Ouest-France"]
    h = hits[0]
    assert h["title"] == "Le port de Brest rouvre après la tempête" and h["date"] == "2024-02-15"
    assert h["url"] == "https://example.org/brest" and h["text"].startswith("Le port de commerce de Brest")


@pytest.mark.slow
def test_bad_input_is_a_tool_error_that_says_what_is_wrong(served):
    assert "empty" in error(served["ask_empty"])
    assert "date_from must be an ISO date" in error(served["search_bad_date"])
    assert "before it starts" in error(served["search_reversed"])
    assert "recent must look like 7d" in error(served["search_bad_recent"])
    # Out of the range the input schema publishes: the SDK's argument check names the bound.
    assert "less than or equal to 50" in error(served["search_bad_k"])
    assert "greater than or equal to 1" in error(served["ask_bad_k"])
    assert "no article with id 'no-such-article'" in error(served["unknown"])


@pytest.mark.slow
def test_get_article_and_list_articles(served, news_index):
    from conftest import SEED

    art = data(served["article"])
    assert art["id"] == "coalition" and art["source"] == "Le Monde" and art["language"] == "fr"
    assert art["text"] == SEED.read_text(encoding="utf-8").partition("\n")[2].strip()
    listed = data(served["list"])
    assert listed["total"] == 3
    assert [a["id"] for a in listed["articles"]] == ["coalition", "drones", "brest"]  # newest first
    page = data(served["list_page"])
    assert page["total"] == 3 and [a["id"] for a in page["articles"]] == ["drones"]
    assert [a["id"] for a in data(served["list_query"])["articles"]] == ["brest"]


# -- quick: the hashing embedder, the missing SDK --------------------------------------------


def test_a_server_on_a_small_index_answers_the_library_tools(tmp_path, model_cache):
    from conftest import news_articles

    import rag

    path = tmp_path / "index"
    index = rag.Index.create(path, rag.Config(index_dir=path, embedder="hash", chunk_size=64, chunk_overlap=8))
    index.add(news_articles())
    index.close()
    with open(tmp_path / "stderr.log", "w", encoding="utf-8") as errlog:
        out = run_session(server_params(path, model_cache, tmp_path), [
            ("list", "list_articles", {"limit": 2}),
            ("bad_limit", "list_articles", {"limit": 0}),
            ("article", "get_article", {"article_id": "brest"}),
            ("blank", "get_article", {"article_id": " "}),
            ("search", "search", {"query": "port de Brest", "k": 1}),
        ], errlog)
    assert set(out["tools"]) == TOOLS
    listed = data(out["list"])
    assert listed["total"] == 3 and [a["id"] for a in listed["articles"]] == ["coalition", "drones"]
    assert listed["articles"][0]["chunks"] >= 1
    assert "limit" in error(out["bad_limit"])
    assert data(out["article"])["title"] == "Le port de Brest rouvre après la tempête"
    assert "article_id is empty" in error(out["blank"])
    assert [h["article_id"] for h in data(out["search"])["hits"]] == ["brest"]


def test_without_the_sdk_rag_mcp_says_what_to_install(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "mcp" or m.startswith("mcp.")] + ["mcp"]:
        monkeypatch.setitem(sys.modules, name, None)
    # Checked before the index is opened: there is none here.
    assert main(["mcp", "--index", str(tmp_path / "none")]) == 1
    assert "pip install 'rag-news[mcp]'" in capsys.readouterr().err


def test_a_missing_index_is_a_clear_error(tmp_path, capsys):
    assert main(["mcp", "--index", str(tmp_path / "none")]) == 1
    assert "no index at" in capsys.readouterr().err
