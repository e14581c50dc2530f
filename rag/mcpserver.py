"""``rag mcp``: the index as tools for an agent, over the Model Context Protocol (stdio).

Four tools: ``search`` (passages, with date, source and recency filters), ``ask`` (the
assistant's cited answer, or its refusal), ``get_article`` and ``list_articles``. The work
is :class:`NewsTools` over the web app's :class:`~rag.ui.backend.Backend` (the same
validation, filters and assistants as the app and the CLI; no second copy of them); this
module only shapes typed results and turns :class:`~rag.errors.RagError` into MCP tool
errors. The index is opened once at start; the models load at the first call that needs
them. The protocol owns stdout: everything else goes to stderr (the SDK points file
descriptor 1 at stderr while it serves, so a stray ``print`` cannot break the stream).

The official ``mcp`` SDK (v2, ``MCPServer``) is an optional extra, imported only here,
when the server starts: ``pip install 'rag-news[mcp]'``.
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from rag.errors import ConfigError, InputError, RagError

log = logging.getLogger(__name__)

INSTALL_HINT = ("the MCP server needs the official MCP SDK: pip install 'rag-news[mcp]' "
                "(in a clone of the repository: pip install -e '.[mcp]')")
#: passages one ``search`` returns at most
MAX_SEARCH_K = 50
#: the assistant's range of passages read (:data:`rag.ui.backend.MAX_SOURCES`)
MAX_ASK_K = 20
MAX_LIST = 500

SERVER_INSTRUCTIONS = (
    "Tools over an index of news articles. `ask` gives a grounded answer that quotes the articles, "
    "with numbered citations (article id, title, url, date, the exact quote and its character offsets), "
    "or says the articles do not hold the answer (refused=true): do not answer from elsewhere then. "
    "`search` returns the closest passages; `get_article` the full text of an article id; "
    "`list_articles` the articles, newest first. Dates are YYYY-MM-DD; `recent` is 7d, 2w, 3m or 1y."
)

# -- the typed results (MCP's structuredContent and outputSchema) -------------------------


class Passage(BaseModel):
    """A passage of an article; ``text == article.text[start:end]``."""

    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    score: float = Field(description="cosine similarity of question and passage")
    text: str
    start: int
    end: int


class SearchResult(BaseModel):
    query: str
    hits: list[Passage]


class Source(BaseModel):
    """Citation ``[n]`` of an answer: the exact sentence(s) quoted, ``article.text[start:end]``."""

    n: int
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    quote: str
    start: int
    end: int
    also_published_by: list[str] = Field(default_factory=list,
                                         description="other publications of the same story (syndicated copies)")


class AskResult(BaseModel):
    question: str
    answer: str = Field(description="the answer, with [n] markers matching citations[].n")
    refused: bool = Field(description="true when the articles do not hold the answer")
    confidence: float = Field(description="the reader's probability that the quoted evidence answers (0-1)")
    citations: list[Source]
    related: list[Passage] = Field(description="when refused: the closest passages found")
    standalone_question: str = Field(description="the question searched for (a follow-up rewritten)")
    language: str
    answerer: str
    notice: str | None = None


class ArticleText(BaseModel):
    id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    author: str | None
    language: str | None = Field(description="detected when indexed (ISO 639-1), null when unknown")
    text: str


class ArticleRow(BaseModel):
    id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunks: int


class ArticleList(BaseModel):
    total: int = Field(description="articles matching the query (all pages)")
    offset: int
    limit: int
    articles: list[ArticleRow]


class Turn(BaseModel):
    """One earlier exchange of the conversation."""

    question: str
    answer: str = ""


# The tools' parameters, as the agent sees them in the input schema.
Query = Annotated[str, Field(description="the question or keywords, in any language")]
DateFrom = Annotated[str | None, Field(description="only articles dated on or after (YYYY-MM-DD)")]
DateTo = Annotated[str | None, Field(description="only articles dated on or before (YYYY-MM-DD)")]
Sources = Annotated[list[str] | None, Field(description="only articles from these sources (publication names)")]
Recent = Annotated[str | None, Field(description="only articles of the last 7d, 2w, 3m or 1y (days, weeks, months, years)")]


def _passage(h) -> Passage:
    return Passage(article_id=h.article_id, title=h.title, date=h.date, source=h.source, url=h.url,
                   score=round(float(h.score), 4), text=h.text, start=h.start, end=h.end)


class NewsTools:
    """What the four tools do, without MCP (so a test or another edge can call it directly).

    Args:
        backend: a :class:`~rag.ui.backend.Backend` over the open index.
    """

    def __init__(self, backend):
        self.backend = backend

    @classmethod
    def open(cls, index_dir: str | Path | None = None, llm: str | None = None, *, timeout: float = 60.0) -> "NewsTools":
        """Open the index (``$RAG_INDEX`` or ``./index`` by default) and the model ``llm`` names.

        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError, ConfigError.
        """
        from rag.config import AnswerConfig, Config
        from rag.index import Index
        from rag.ui.backend import Backend

        config = Config.from_env(index_dir=index_dir)
        model = None
        if llm:
            from rag.llm import parse_llm_spec

            model = parse_llm_spec(llm, timeout=timeout)
        return cls(Backend(Index.open(config.index_dir), model, AnswerConfig(llm_timeout=timeout)))

    def close(self) -> None:
        self.backend.index.close()

    def search(self, query: Query, k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K, description="how many passages")] = 5,
               date_from: DateFrom = None, date_to: DateTo = None, sources: Sources = None,
               recent: Recent = None) -> SearchResult:
        """The passages of the indexed news articles closest to a question, best first, with their article's
        id, title, date, source and url (no answer is composed: use `ask` for a cited answer)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SEARCH_K:
            raise InputError(f"k must be a whole number from 1 to {MAX_SEARCH_K}, got {k!r}")
        hits = self.backend.search(query, k, date_from=date_from, date_to=date_to, sources=sources, recent=recent)
        return SearchResult(query=query, hits=[_passage(h) for h in hits])

    def ask(self, question: Annotated[str, Field(description="the question, in any language")],
            history: Annotated[list[Turn] | None, Field(
                description="earlier questions and answers of this conversation, oldest first, for a follow-up "
                            "such as 'and when was it created?'")] = None,
            date_from: DateFrom = None, date_to: DateTo = None, sources: Sources = None, recent: Recent = None,
            k: Annotated[int | None, Field(ge=1, le=MAX_ASK_K, description="passages to read (default 6)")] = None,
            ) -> AskResult:
        """A grounded answer from the indexed news articles: it quotes them, with numbered citations
        (article id, title, url, date, the exact quote and its offsets). When the articles do not hold the
        answer, refused is true and the answer says so: report that rather than answering from elsewhere."""
        turns = [(t.question, t.answer) if isinstance(t, Turn) else _turn(t) for t in history or []]
        answerer = "llm" if self.backend.llm_name else "extractive"
        answer = self.backend.ask(question, history=turns, answerer=answerer, k=k, date_from=date_from,
                                  date_to=date_to, sources=sources, recent=recent)
        return AskResult(
            question=answer.question, answer=answer.text, refused=answer.refused,
            confidence=round(float(answer.confidence), 4),
            citations=[Source(n=c.n, article_id=c.article_id, title=c.title, date=c.date, source=c.source, url=c.url,
                              quote=c.quote, start=c.start, end=c.end,
                              also_published_by=[p.label for p in c.also_published_by]) for c in answer.citations],
            related=[_passage(h) for h in answer.related] if answer.refused else [],
            standalone_question=answer.standalone_question, language=answer.language, answerer=answer.answerer,
            notice=answer.notice)

    def get_article(self, article_id: Annotated[str, Field(description="an article id from search, ask or "
                                                                        "list_articles")]) -> ArticleText:
        """One indexed article in full: title, date, source, url, author, language and text."""
        if not isinstance(article_id, str) or not article_id.strip():
            raise InputError("article_id is empty: give an id from search, ask or list_articles")
        store = self.backend.index
        article = store.get_article(article_id.strip())
        if article is None:
            raise InputError(f"no article with id {article_id!r} in the index (list_articles gives the ids)")
        return ArticleText(id=article.id, title=article.title, date=article.date, source=article.source,
                           url=article.url, author=article.author, language=store.article_language(article.id),
                           text=article.text)

    def list_articles(self, query: Annotated[str, Field(
                          description="keep the articles whose title, source, date or id contain this (blank: all)")] = "",
                      limit: Annotated[int, Field(ge=1, le=MAX_LIST)] = 50,
                      offset: Annotated[int, Field(ge=0)] = 0) -> ArticleList:
        """The indexed articles, newest first (id, title, date, source, url), a page at a time."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InputError(f"limit must be a whole number from 1 to {MAX_LIST}, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError(f"offset must be a whole number, 0 or more, got {offset!r}")
        rows = self.backend.articles(query or "")
        page = [ArticleRow(id=r["id"], title=r["title"], date=r["date"], source=r["source"], url=r["url"],
                           chunks=int(r["chunks"])) for r in rows[offset:offset + limit]]
        return ArticleList(total=len(rows), offset=offset, limit=limit, articles=page)


def _turn(t) -> tuple[str, str]:
    if isinstance(t, dict) and isinstance(t.get("question"), str):
        return t["question"], str(t.get("answer") or "")
    raise InputError(f"each history turn must be {{'question': ..., 'answer': ...}}, got {t!r}")


# -- the MCP edge ---------------------------------------------------------------


def _import_sdk():
    """``MCPServer`` and ``ToolError`` from the official SDK.

    Raises:
        ConfigError: the ``mcp`` package (v2) is not installed.
    """
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError as exc:
        raise ConfigError(f"{INSTALL_HINT} ({exc})") from None
    return MCPServer, ToolError


TOOLS = ("search", "ask", "get_article", "list_articles")


def build_server(tools: NewsTools):
    """An ``MCPServer`` with the four tools over ``tools``; a :class:`RagError` reaches the
    agent as a tool error carrying its message (any other exception as the SDK's generic one,
    its traceback logged on stderr).

    Raises:
        ConfigError: the ``mcp`` package is not installed.
    """
    MCPServer, ToolError = _import_sdk()
    from mcp.types import ToolAnnotations

    import rag

    server = MCPServer("rag-news", version=rag.__version__, instructions=SERVER_INSTRUCTIONS)

    def guarded(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except RagError as exc:
                raise ToolError(str(exc)) from exc

        return call

    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    for name in TOOLS:
        server.add_tool(guarded(getattr(tools, name)), name=name, annotations=read_only)
    return server


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``mcp`` to a ``rag`` sub-command parser (``rag/cli.py`` calls it only for ``rag mcp``)."""
    p = subparsers.add_parser(
        "mcp", help="serve the index to agents over MCP (stdio): search, ask, get_article, list_articles",
        description="An MCP server on stdin/stdout for an MCP client (an agent, a chat app) to start: "
                    "the tools search, ask, get_article and list_articles over one index. Logs go to stderr.")
    p.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX or ./index)")
    p.add_argument("--llm", help="answer `ask` with a model: openai:BASE_URL#MODEL, llama-cpp:PATH.gguf, "
                                 "local (the bundled model) or local:PATH.gguf "
                                 "(default: extractive quotes, no model)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the model (default 60)")
    p.set_defaults(func=cmd_mcp)
    return p


def cmd_mcp(args: argparse.Namespace) -> int:
    _import_sdk()  # the install hint before the index is opened
    tools = NewsTools.open(args.index, args.llm, timeout=args.timeout)
    try:
        server = build_server(tools)
        n, _ = tools.backend.counts()
        # stderr is the server's log (MCP clients keep it): say what is served, and why a tool failed.
        log.setLevel(logging.INFO)
        log.info("MCP server on stdio: %d articles in %s (tools: %s)", n, tools.backend.index.path, ", ".join(TOOLS))
        server.run("stdio")
    except KeyboardInterrupt:
        return 130  # a server stopped by hand: nothing was being written
    finally:
        tools.close()
    return 0
