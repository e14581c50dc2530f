"""The web UI: a chat with cited answers, a library of the indexed articles, and an API.

Two halves: :class:`Backend` does the work (answering, adding and removing
articles, saving uploads) without knowing about Gradio, and :func:`build_app`
lays out the Gradio page and wires handlers and named API endpoints to it.

Everything shown in the page that comes from an article or a user (titles, text,
questions, file names) is HTML-escaped here, then sanitized again by Gradio. The
chatbot does not render Markdown, so article text cannot smuggle links or images
in either. Gradio is imported inside functions: ``from rag import ui`` is cheap.
"""

import html
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.articles import SUPPORTED_SUFFIXES, article_from_text, read_articles
from rag.config import AnswerConfig
from rag.errors import ConfigError, InputError, RagError
from rag.types import AddReport, Answer, Article, Citation, Hit

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: What the upload box takes: the single-file formats and (J)JSON, not gzip.
UPLOAD_SUFFIXES = tuple(s for s in SUPPORTED_SUFFIXES if not s.endswith(".gz"))
UPLOADS_DIR = "uploads"
MAX_SOURCES = 20
#: Longest article text put in a card's "whole article" section (the chat history
#: travels between browser and server at every turn).
MAX_ARTICLE_CHARS_SHOWN = 30_000
#: A related passage (under a refusal) is shown up to this length; the whole article is a click away.
RELATED_CHARS_SHOWN = 320

EXAMPLES = [
    "Who coordinates the coalition?",
    "Qui a annoncé la création de la coalition ?",
    "When will Putin and Trump meet?",
    "Combien de pays compte la coalition des volontaires ?",
    "What does Russia say about foreign troops in Ukraine?",
]


# -- configuration -------------------------------------------------------------


@dataclass(frozen=True)
class UIConfig:
    """How the web app is served; built once by ``app.py`` from flags and environment."""

    index_dir: Path = Path("index")
    host: str = "127.0.0.1"
    port: int = 7860
    llm: str | None = None
    concurrency: int = 2
    auth: tuple[str, str] | None = field(default=None, repr=False)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    answer: AnswerConfig = field(default_factory=AnswerConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.max_upload_bytes < 1:
            raise ConfigError(f"max_upload_bytes must be positive, got {self.max_upload_bytes}")
        if not self.host.strip():
            raise ConfigError("host must be an address to bind to, got an empty string")


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``RAG_AUTH=user:password`` as a (user, password) pair; None when unset or empty.

    Raises:
        ConfigError: the value is set but is not ``user:password`` with both parts non-empty.
    """
    if value is None or not value.strip():
        return None
    user, colon, password = value.partition(":")
    if not colon or not user.strip() or not password:
        raise ConfigError("RAG_AUTH must be user:password (both non-empty), e.g. RAG_AUTH=editor:s3cret")
    return user.strip(), password


# -- the work, without Gradio --------------------------------------------------


class Backend:
    """One index and the assistants over it, shared by every browser session and API call.

    Writes (adding, removing) are serialized by a lock: the index allows one writer
    at a time. Reads go on during a write; new articles are searchable as soon as
    they are committed, with no restart.
    """

    def __init__(self, index, llm=None, answer_config: AnswerConfig | None = None,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES):
        from rag.chat import Assistant
        from rag.retriever import Retriever

        self.index = index
        self.retriever = Retriever(index)
        config = answer_config or AnswerConfig()
        self._base = {"extractive": Assistant(self.retriever, None, config)}
        self.llm_name = None
        if llm is not None:
            self._base["llm"] = Assistant(self.retriever, llm, config)
            self.llm_name = self._base["llm"].answerer_name
        self.default_k = config.k
        self.max_upload_bytes = max_upload_bytes
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, config: UIConfig) -> "Backend":
        """Open the index and the language model (if any) that ``config`` names.

        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError, ConfigError.
        """
        from rag.index import Index

        llm = None
        if config.llm:
            from rag.llm import parse_llm_spec

            llm = parse_llm_spec(config.llm, timeout=config.answer.llm_timeout)
        return cls(Index.open(config.index_dir), llm, config.answer, config.max_upload_bytes)

    def warm_up(self) -> None:
        """Load the embedder and run it once, so the first question is as fast as the next."""
        self.retriever.warm_up()
        self.index.embedder.embed_query("warm-up")

    @property
    def answerers(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the answerers on offer."""
        out = [("Extractive (quotes the articles)", "extractive")]
        if self.llm_name:
            # "llm:openai:http://host/v1#qwen" -> "qwen"; "llm:llama-cpp:/models/x.gguf" -> "x.gguf"
            short = self.llm_name.rpartition("#")[2] if "#" in self.llm_name else self.llm_name.rpartition("/")[2]
            out.append((f"Language model ({short})", "llm"))
        return out

    def assistant(self, answerer: str = "extractive"):
        """The assistant for ``answerer`` (built once, shared by all sessions)."""
        if answerer not in self._base:
            known = ", ".join(self._base)
            hint = "" if answerer != "llm" else " (start the app with --llm SPEC to use a language model)"
            raise InputError(f"unknown answerer {answerer!r}: use {known}{hint}")
        return self._base[answerer]

    def _check_k(self, k) -> int:
        k = self.default_k if k is None else k
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SOURCES:
            raise InputError(f"the number of sources must be a whole number from 1 to {MAX_SOURCES}, got {k!r}")
        return k

    def stream(self, question: str, history=None, *, answerer: str = "extractive", k: int | None = None,
               date_from: str | None = None, date_to: str | None = None) -> Iterator[str | Answer]:
        """Answer pieces, then the :class:`Answer` (see :meth:`rag.chat.Assistant.stream`)."""
        from rag.retriever import clean_query

        question = clean_query(question)
        filters = make_filters(date_from, date_to)
        k = self._check_k(k)
        return self.assistant(answerer).stream(question, history, filters=filters, k=k)

    def ask(self, question: str, **kw) -> Answer:
        answer = None
        for item in self.stream(question, **kw):
            if isinstance(item, Answer):
                answer = item
        return answer

    def search(self, query: str, k: int = 5) -> list[Hit]:
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        return self.retriever.retrieve(query, k=k)

    # -- library ---------------------------------------------------------------
    def articles(self, query: str = "") -> list[dict]:
        """The indexed articles (newest first), keeping those whose title, source, date or id contain ``query``."""
        rows = self.index.articles()
        q = " ".join((query or "").split()).casefold()
        if q:
            rows = [r for r in rows
                    if any(q in (r.get(f) or "").casefold() for f in ("title", "source", "date", "id"))]
        return rows

    def counts(self) -> tuple[int, int]:
        return self.index.store.counts()

    def add_text(self, title: str, text: str, date: str | None = None, source: str | None = None,
                 url: str | None = None) -> tuple[Article, AddReport]:
        """Index an article typed or pasted by a user.

        Raises:
            InputError: empty or over-long title or text.
        """
        article = article_from_text(title, text, date=_blank_to_none(date), source=_blank_to_none(source),
                                    url=_blank_to_none(url), origin="web UI (pasted)")
        with self._write_lock:
            report = self.index.add([article])
        log.info("pasted article %s (%s): %d chunks", article.id, "new" if report.added else "known",
                 report.chunks_added)
        return article, report

    def add_uploads(self, files: Sequence[str | Path], *, names: Sequence[str] | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> AddReport:
        """Check, copy and index uploaded files; all or nothing.

        Each file must have a supported suffix and be at most ``max_upload_bytes``;
        it is copied into ``<index>/uploads/`` under a new unique name (the client's
        name is only a hint, cleaned) and read from there. If any file or record is
        bad, the copies are deleted and nothing is indexed.

        Args:
            files: paths of the uploaded files (in Gradio's upload cache).
            names: the names to report them by (default: their file names).
            progress: called with (articles indexed, articles in total, title).
        Raises:
            InputError: no files, or a bad one; the message names it and says why.
        """
        paths = [Path(f) for f in files]
        names = list(names) if names is not None else [p.name for p in paths]
        if not paths:
            raise InputError("choose one or more files to add")
        suffixes = [self._check_upload(p, n) for p, n in zip(paths, names)]
        uploads = self.index.path / UPLOADS_DIR
        with self._write_lock:
            uploads.mkdir(exist_ok=True)
            saved: list[Path] = []
            try:
                for p, n, suffix in zip(paths, names, suffixes):
                    dest = uploads / safe_upload_name(n, suffix)
                    saved.append(dest)
                    try:
                        shutil.copyfile(p, dest)
                    except OSError as exc:
                        raise RagError(f"{n}: the upload could not be saved ({exc.strerror or exc})") from exc
                shown = {str(d): n for d, n in zip(saved, names)}
                articles, problems = [], []
                for item in read_articles(saved):
                    if isinstance(item, Article):
                        articles.append(item)
                    else:
                        where = shown.get(item.path, Path(item.path).name)
                        record = "" if item.line is None else f" (record {item.line})"
                        problems.append(f"{where}{record}: {item.reason}")
                if problems:
                    raise InputError("nothing was added: " + "; ".join(problems))
                if not articles:
                    raise InputError("nothing was added: the files hold no articles")
                total = len(articles)
                if progress:
                    progress(0, total, "")
                report = self.index.add(articles, progress=(lambda seen, _c, title: progress(seen, total, title))
                                        if progress else None)
            except BaseException:
                for d in saved:
                    d.unlink(missing_ok=True)
                raise
        log.info("uploads %s: %d added, %d updated, %d unchanged", [d.name for d in saved], len(report.added),
                 len(report.updated), len(report.unchanged))
        return report

    def _check_upload(self, path: Path, name: str) -> str:
        suffix = upload_suffix(name)
        if suffix is None:
            raise InputError(f"{name}: unsupported file type (use {', '.join(UPLOAD_SUFFIXES)})")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"{name}: the upload cannot be read ({exc.strerror or exc})") from exc
        if size > self.max_upload_bytes:
            raise InputError(f"{name} is {_fmt_bytes(size)}; the limit is {_fmt_bytes(self.max_upload_bytes)}")
        if size == 0:
            raise InputError(f"{name} is empty")
        return suffix

    def remove(self, article_id: str) -> bool:
        article_id = (article_id or "").strip()
        if not article_id:
            raise InputError("give the id of the article to remove (click its row in the table)")
        with self._write_lock:
            removed = self.index.remove(article_id)
        if removed:
            log.info("removed article %s", article_id)
        return removed


def make_filters(date_from: str | None, date_to: str | None):
    """Retrieval filters from the date-range settings (blank = open), or None.

    Raises:
        InputError: a date that is not ``YYYY-MM-DD``, or a range that ends before it starts.
    """
    from rag.store import Filters

    date_from, date_to = _blank_to_none(date_from), _blank_to_none(date_to)
    if date_from is None and date_to is None:
        return None
    try:
        flt = Filters(date_from=date_from, date_to=date_to)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if date_from and date_to and date_from > date_to:
        raise InputError(f"the date range ends ({date_to}) before it starts ({date_from})")
    return flt


def upload_suffix(name: str) -> str | None:
    low = name.lower()
    return next((s for s in sorted(UPLOAD_SUFFIXES, key=len, reverse=True) if low.endswith(s)), None)


def safe_upload_name(client_name: str, suffix: str) -> str:
    """A new file name for an upload: a random prefix, the client's name reduced to [A-Za-z0-9_-]."""
    stem = Path(client_name.replace("\\", "/")).name
    stem = stem[: len(stem) - len(suffix)] if stem.lower().endswith(suffix) else stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:60] or "upload"
    return f"{uuid.uuid4().hex[:12]}-{stem}{suffix}"


def _fmt_bytes(n: int) -> str:
    if n >= 1048576:
        return f"{n / 1048576:.1f} MB".replace(".0 MB", " MB")
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"expected text, got {type(value).__name__}")
    return value.strip() or None


# -- JSON for the API ------------------------------------------------------------


def answer_to_dict(answer: Answer) -> dict:
    """What ``/ask`` returns: the answer text, its citations and how it was made (JSON-safe)."""
    return {
        "question": answer.question,
        "text": answer.text,
        "refused": bool(answer.refused),
        "confidence": float(answer.confidence),
        "answerer": answer.answerer,
        "notice": answer.notice,
        "standalone_question": answer.standalone_question,
        "citations": [_citation_dict(c) for c in answer.citations],
        "related": [hit_to_dict(h) for h in answer.related],
        "timings_ms": {k: float(v) for k, v in answer.timings_ms.items()},
    }


def _citation_dict(c: Citation) -> dict:
    d = c.to_dict()
    d["chunk_id"] = None if c.chunk_id is None else int(c.chunk_id)
    return d


def hit_to_dict(h: Hit) -> dict:
    d = h.to_dict()
    d["chunk_id"], d["score"] = int(h.chunk_id), round(float(h.score), 4)
    return d


def report_to_dict(report: AddReport, article: Article | None = None) -> dict:
    d = report.to_dict()
    d["seconds"] = round(d["seconds"], 3)
    if article is not None:
        d["article_id"] = article.id
        d["title"] = article.title
    return d


# -- HTML ------------------------------------------------------------------------


def esc(text: str | None) -> str:
    """Text for an HTML element or attribute: every markup character escaped."""
    return html.escape(text or "", quote=True)


def render_question(question: str) -> str:
    return esc(question)


def render_answer(answer: Answer) -> str:
    """The answer bubble: the text with its [n] markers; a refusal carries a visible label."""
    if answer.refused:
        return (f"<div class='rag-refused'><span class='rag-badge'>Not in the articles</span> "
                f"{esc(answer.text)}</div>")
    return esc(answer.text)


def render_error(message: str) -> str:
    return f"<div class='rag-error'><span class='rag-badge'>Error</span> {esc(message)}</div>"


def render_sources(answer: Answer, get_article: Callable[[str], Article | None], *, show_timings: bool) -> str:
    """The sources under an answer: a card per citation (or related passage), notice, timings."""
    parts = []
    if answer.notice:
        parts.append(f"<div class='rag-notice'>⚠ {esc(answer.notice)}</div>")
    if answer.refused:
        if answer.related:
            parts.append("<div class='rag-label'>Closest passages (they do not answer the question)</div>")
            parts.extend(_related_card(h, get_article(h.article_id)) for h in answer.related)
    elif answer.citations:
        parts.append("<div class='rag-label'>Sources</div>")
        parts.extend(_citation_card(c, get_article(c.article_id)) for c in answer.citations)
    if show_timings and answer.timings_ms:
        parts.append(render_timings(answer))
    if not parts:
        return ""
    kind = "rag-sources rag-related" if answer.refused else "rag-sources"
    return f"<div class='{kind}'>{''.join(parts)}</div>"


def render_timings(answer: Answer) -> str:
    t = answer.timings_ms
    stages = " · ".join(f"{name} {t[name]:.0f} ms" for name in ("rewrite", "retrieve", "answer", "verify")
                        if name in t)
    return (f"<div class='rag-timings'>{esc(stages)} · <b>total {t.get('total', 0):.0f} ms</b> · "
            f"{esc(answer.answerer)} · confidence {answer.confidence:.2f}</div>")


def _citation_card(c: Citation, article: Article | None) -> str:
    head = _card_head(str(c.n), c.title, c.date, c.source, c.url)
    if article is None or article.text[c.start:c.end] != c.quote:
        body = f"<blockquote class='rag-para'><mark>{esc(c.quote)}</mark></blockquote>"
        return f"<div class='rag-card'>{head}{body}</div>"
    lo, hi = _paragraph_bounds(article.text, c.start, c.end)
    body = f"<blockquote class='rag-para'>{_marked(article.text, lo, hi, c.start, c.end)}</blockquote>"
    return f"<div class='rag-card'>{head}{body}{_whole_article(article, c.start, c.end)}</div>"


def _related_card(h: Hit, article: Article | None) -> str:
    head = _card_head("~", h.title, h.date, h.source, h.url)
    body = f"<blockquote class='rag-para'>{esc(_shorten(h.text, RELATED_CHARS_SHOWN))}</blockquote>"
    whole = _whole_article(article, h.start, h.end, mark=False) if article else ""
    return f"<div class='rag-card rag-card-related'>{head}{body}{whole}</div>"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip() + " …"


def _card_head(n: str, title: str, date: str | None, source: str | None, url: str | None) -> str:
    meta = [esc(x) for x in (date, source) if x]
    if url and re.match(r"https?://", url, re.IGNORECASE):
        meta.append(f"<a href='{esc(url)}' target='_blank' rel='noopener noreferrer nofollow'>link</a>")
    meta_html = f"<div class='rag-meta'>{' · '.join(meta)}</div>" if meta else ""
    return (f"<div class='rag-card-head'><span class='rag-n'>{esc(n)}</span>"
            f"<span class='rag-title'>{esc(title)}</span></div>{meta_html}")


def _paragraph_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    return lo, len(text) if hi < 0 else hi


def _marked(text: str, lo: int, hi: int, start: int, end: int) -> str:
    """``text[lo:hi]`` escaped, with its overlap with ``[start, end)`` in ``<mark>``."""
    s, e = max(lo, min(start, hi)), max(lo, min(end, hi))
    if s >= e:
        return esc(text[lo:hi])
    return f"{esc(text[lo:s])}<mark>{esc(text[s:e])}</mark>{esc(text[e:hi])}"


def _whole_article(article: Article, start: int, end: int, *, mark: bool = True) -> str:
    text = article.text
    cut = len(text) > MAX_ARTICLE_CHARS_SHOWN
    shown = text[:MAX_ARTICLE_CHARS_SHOWN] if cut else text
    paras, pos = [], 0
    for line in shown.split("\n"):
        lo, hi = pos, pos + len(line)
        pos = hi + 1
        if line.strip():
            inner = _marked(shown, lo, hi, start, end) if mark else esc(line)
            paras.append(f"<p>{inner}</p>")
    if cut:
        paras.append(f"<p class='rag-meta'>… the article goes on ({len(text):,} characters in all).</p>")
    return f"<details><summary>Whole article</summary><div class='rag-article'>{''.join(paras)}</div></details>"


def render_status(message: str, *, ok: bool) -> str:
    cls = "rag-status-ok" if ok else "rag-status-error"
    return f"<div class='rag-status {cls}'>{esc(message)}</div>"


def describe_report(report: AddReport, what: str = "") -> str:
    parts = []
    if report.added:
        parts.append(f"added {len(report.added)} article(s)")
    if report.updated:
        parts.append(f"updated {len(report.updated)}")
    if report.unchanged:
        parts.append(f"{len(report.unchanged)} already indexed, unchanged")
    done = ", ".join(parts) or "nothing to add"
    return f"{what}{done} ({report.chunks_added} chunks embedded in {report.seconds:.1f} s)."


CSS = """
/* answers keep their line breaks (the card HTML has none between tags) */
#rag-chat .message-content .md { white-space: pre-line; }
.rag-refused { border-left: 4px solid #d97706; background: #fffbeb; color: #78350f; padding: 8px 10px;
  border-radius: 6px; }
.rag-error { border-left: 4px solid #dc2626; background: #fef2f2; color: #7f1d1d; padding: 8px 10px;
  border-radius: 6px; }
.rag-badge { display: inline-block; font-size: 0.75em; font-weight: 700; text-transform: uppercase;
  letter-spacing: .04em; background: #d97706; color: #fff; border-radius: 4px; padding: 1px 6px;
  margin-right: 6px; vertical-align: 1px; }
.rag-error .rag-badge { background: #dc2626; }
.rag-sources { font-size: 0.92em; }
.rag-label { font-size: 0.78em; font-weight: 700; text-transform: uppercase; letter-spacing: .05em; color: #6b7280;
  margin: 2px 0 6px; }
.rag-related .rag-label { color: #b45309; }
.rag-card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 12px; margin: 0 0 8px; background: #fff; }
.rag-card-related { border-style: dashed; border-color: #f59e0b; background: #fffdf7; }
.rag-card-head { display: flex; gap: 8px; align-items: baseline; font-weight: 600; line-height: 1.3; }
.rag-n { flex: none; min-width: 1.6em; text-align: center; border-radius: 999px; background: #4f46e5; color: #fff;
  font-size: .8em; padding: 0 6px; }
.rag-card-related .rag-n { background: #f59e0b; }
.rag-meta { color: #6b7280; font-size: .85em; margin: 2px 0 4px; }
.rag-para { margin: 6px 0; padding: 0 0 0 10px; border-left: 3px solid #c7d2fe; color: #374151; font-style: normal; }
.rag-card-related .rag-para { border-left-color: #fcd34d; }
.rag-para mark, .rag-article mark { background: #fef08a; color: inherit; padding: 0 1px; border-radius: 2px; }
.rag-card details summary { cursor: pointer; color: #4f46e5; font-size: .85em; }
.rag-article { max-height: 320px; overflow-y: auto; font-size: .92em; color: #374151; padding-right: 6px; }
.rag-article p { margin: 6px 0; }
.rag-notice { border-left: 4px solid #2563eb; background: #eff6ff; color: #1e3a8a; padding: 6px 10px;
  border-radius: 6px; margin-bottom: 8px; }
.rag-timings { color: #9ca3af; font-size: .78em; margin-top: 4px; }
.rag-status { padding: 8px 10px; border-radius: 6px; margin-top: 6px; }
.rag-status-ok { background: #ecfdf5; color: #065f46; border-left: 4px solid #10b981; }
.rag-status-error { background: #fef2f2; color: #7f1d1d; border-left: 4px solid #dc2626; }
.rag-status:empty { display: none; }
/* the copy button copies a message's raw content: keep it for answers, not for the source cards */
#rag-chat .message-row:has(.rag-sources) + .message-buttons { display: none; }
#rag-index-info { color: #6b7280; font-size: .85em; }
"""


# -- the Gradio app ---------------------------------------------------------------


def launch_kwargs(config: UIConfig) -> dict:
    """Arguments for ``Blocks.launch`` (bind address, login, upload cap, style)."""
    return dict(server_name=config.host, server_port=config.port, auth=config.auth,
                auth_message="Log in to ask the news articles." if config.auth else None,
                max_file_size=config.max_upload_bytes, css=CSS, theme=_theme(), footer_links=["api"])


def _theme():
    import gradio as gr

    # System fonts: the default Google font would be fetched from the internet by every browser.
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                          font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Consolas", "monospace"])


def build_app(backend: Backend):
    """The Gradio Blocks page over ``backend``: Chat and Library tabs, and the API.

    API endpoints (for ``gradio_client``): ``/ask``, ``/add_article``, ``/search``.
    Every handler turns :class:`RagError` into ``gr.Error`` (a message, not a traceback).
    """
    import gradio as gr

    def fail(exc: Exception):
        return gr.Error(str(exc), title="Cannot do that", print_exception=False)

    # -- chat ----------------------------------------------------------------
    def respond(question, chat, turns, answerer, k, date_from, date_to, show_timings):
        from rag.retriever import clean_query

        try:
            question = clean_query(question or "")
            stream = backend.stream(question, list(turns or []), answerer=answerer, k=int(k),
                                    date_from=date_from, date_to=date_to)
        except RagError as exc:
            raise fail(exc) from None
        chat = list(chat or []) + [{"role": "user", "content": render_question(question)},
                                   {"role": "assistant", "content": "…"}]
        yield "", chat, turns
        text, answer = "", None
        try:
            for item in stream:
                if isinstance(item, Answer):
                    answer = item
                else:
                    text += item
                    chat[-1] = {"role": "assistant", "content": esc(text)}
                    yield "", chat, turns
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render_error(str(exc))}
            yield "", chat, turns
            return
        chat[-1] = {"role": "assistant", "content": render_answer(answer)}
        sources = render_sources(answer, backend.index.get_article, show_timings=bool(show_timings))
        if sources:
            chat.append({"role": "assistant", "content": sources})
        yield "", chat, list(turns or []) + [(question, answer.text)]

    def new_chat():
        return [], [], ""

    # -- library ---------------------------------------------------------------
    def table(query: str = ""):
        rows = backend.articles(query)
        return [[r["title"], r["date"] or "", r["source"] or "", int(r["chunks"]), r["id"]] for r in rows]

    def index_info():
        n_articles, n_chunks = backend.counts()
        return f"Index: {n_articles} article(s), {n_chunks} chunks · embedder {backend.index.config.embedder}"

    def refresh(query):
        return table(query), index_info()

    def add_files(files, query, progress=gr.Progress()):
        files = [f for f in (files or []) if f]
        if not files:
            return gr.skip(), gr.skip(), render_status("Choose one or more files first.", ok=False), gr.skip()
        names = [Path(f).name for f in files]
        progress(0, desc=f"Reading {len(files)} file(s)")
        try:
            report = backend.add_uploads(files, names=names, progress=lambda seen, total, title: progress(
                (seen, total), desc="Embedding and indexing", unit="articles"))
        except RagError as exc:
            return gr.skip(), gr.skip(), render_status(str(exc), ok=False), gr.skip()
        msg = describe_report(report, f"{', '.join(names)}: ")
        return table(query), index_info(), render_status(msg, ok=True), None

    def add_pasted(title, text, date, source, url, query, progress=gr.Progress()):
        progress(0.2, desc="Embedding and indexing")
        try:
            article, report = backend.add_text(title, text, date, source, url)
        except RagError as exc:
            return gr.skip(), gr.skip(), render_status(str(exc), ok=False), *([gr.skip()] * 5)
        msg = describe_report(report, f"“{article.title}” (id {article.id}): ")
        return table(query), index_info(), render_status(msg, ok=True), "", "", "", "", ""

    def remove(article_id, query):
        try:
            removed = backend.remove(article_id)
        except RagError as exc:
            return gr.skip(), gr.skip(), render_status(str(exc), ok=False), gr.skip()
        if not removed:
            missing = render_status(f"No article has the id {article_id.strip()!r}.", ok=False)
            return gr.skip(), gr.skip(), missing, gr.skip()
        return table(query), index_info(), render_status(f"Removed article {article_id.strip()}.", ok=True), ""

    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[4] if len(row) > 4 else gr.skip()

    # -- API ---------------------------------------------------------------------
    def ask(question: str, answerer: str = "extractive", k: int = 6, date_from: str = "",
            date_to: str = "") -> dict:
        """Answer one question (no conversation) from the indexed articles.

        Returns the answer text with [n] markers, its citations (quote, article, offsets),
        whether it was refused, the related passages when it was, and stage timings.
        """
        try:
            return answer_to_dict(backend.ask(question, answerer=answerer, k=k, date_from=date_from,
                                              date_to=date_to))
        except RagError as exc:
            raise fail(exc) from None

    def add_article(title: str, text: str, date: str = "", source: str = "", url: str = "") -> dict:
        """Index one article (title and text; date, source and url optional). Returns what was done."""
        try:
            article, report = backend.add_text(title, text, date, source, url)
        except RagError as exc:
            raise fail(exc) from None
        return report_to_dict(report, article)

    def search(query: str, k: int = 5) -> list[dict]:
        """The k passages closest to the query, best first."""
        try:
            return [hit_to_dict(h) for h in backend.search(query, k)]
        except RagError as exc:
            raise fail(exc) from None

    private = dict(api_visibility="private")
    write = dict(concurrency_id="index-write", concurrency_limit=1)

    with gr.Blocks(title="News QA", delete_cache=(3600, 3600)) as demo:
        turns = gr.State([])
        gr.Markdown("## News QA\nAsk the indexed news articles, in English or French. "
                    "Answers quote the articles; each [n] points to a source card under the answer.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4):
                        chatbot = gr.Chatbot(
                            elem_id="rag-chat", label="Conversation", show_label=False, height=620,
                            buttons=["copy", "copy_all"],
                            render_markdown=False, sanitize_html=True, allow_tags=False, latex_delimiters=[],
                            feedback_options=None, group_consecutive_messages=False, layout="bubble",
                            placeholder="Ask a question about the articles, or pick an example below.",
                        )
                        with gr.Row():
                            question = gr.Textbox(show_label=False, placeholder="Ask a question… (Enter to send)",
                                                  scale=6, elem_id="rag-question", autofocus=True)
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-ask")
                            new_btn = gr.Button("New chat", scale=1, min_width=100, elem_id="rag-new")
                        gr.Examples([[q] for q in EXAMPLES], inputs=[question], label="Examples")
                    with gr.Column(scale=1, min_width=240):
                        gr.Markdown("### Settings")
                        answerer = gr.Radio(backend.answerers, value="extractive", label="Answerer",
                                            info=None if backend.llm_name
                                            else "Start with --llm SPEC for a language model.")
                        k = gr.Slider(1, MAX_SOURCES, value=backend.default_k, step=1, label="Sources to retrieve")
                        date_from = gr.Textbox(label="From date", placeholder="YYYY-MM-DD")
                        date_to = gr.Textbox(label="To date", placeholder="YYYY-MM-DD")
                        show_timings = gr.Checkbox(value=True, label="Show timings")
                        info = gr.Markdown(elem_id="rag-index-info")
            with gr.Tab("Library", id="library") as library_tab:
                with gr.Row():
                    filter_box = gr.Textbox(label="Search the library", placeholder="title, source, date or id",
                                            scale=4, elem_id="rag-filter")
                    refresh_btn = gr.Button("Refresh", scale=1, min_width=90)
                articles = gr.Dataframe(headers=["Title", "Date", "Source", "Chunks", "ID"],
                                        datatype=["str", "str", "str", "number", "str"], interactive=False,
                                        wrap=True, column_widths=["46%", "12%", "14%", "8%", "20%"],
                                        elem_id="rag-articles", max_height=360)
                status = gr.HTML(elem_id="rag-status")
                with gr.Row(equal_height=False):
                    with gr.Column():
                        gr.Markdown(f"### Add files\n{', '.join(UPLOAD_SUFFIXES)} · up to "
                                    f"{_fmt_bytes(backend.max_upload_bytes)} each")
                        files = gr.File(file_count="multiple", file_types=list(UPLOAD_SUFFIXES),
                                        label="Article files", elem_id="rag-files")
                        add_files_btn = gr.Button("Index the files", variant="primary", elem_id="rag-add-files")
                    with gr.Column():
                        gr.Markdown("### Paste an article")
                        p_title = gr.Textbox(label="Title", elem_id="rag-p-title")
                        p_text = gr.Textbox(label="Text", lines=6, elem_id="rag-p-text")
                        with gr.Row():
                            p_date = gr.Textbox(label="Date (optional)", placeholder="YYYY-MM-DD")
                            p_source = gr.Textbox(label="Source (optional)")
                        p_url = gr.Textbox(label="URL (optional)")
                        add_text_btn = gr.Button("Add the article", variant="primary", elem_id="rag-add-text")
                with gr.Row():
                    remove_id = gr.Textbox(label="Remove an article: its id (click a row to fill it in)",
                                           scale=4, elem_id="rag-remove-id")
                    remove_btn = gr.Button("Remove", variant="stop", scale=1, min_width=90, elem_id="rag-remove")

        chat_inputs = [question, chatbot, turns, answerer, k, date_from, date_to, show_timings]
        for trigger in (question.submit, ask_btn.click):
            trigger(respond, chat_inputs, [question, chatbot, turns], show_progress="minimal", **private)
        new_btn.click(new_chat, None, [chatbot, turns, question], queue=False, **private)
        chatbot.clear(lambda: [], None, turns, queue=False, **private)

        demo.load(refresh, filter_box, [articles, info], **private)
        library_tab.select(refresh, filter_box, [articles, info], **private)
        refresh_btn.click(refresh, filter_box, [articles, info], **private)
        filter_box.change(table, filter_box, articles, show_progress="hidden", **private)
        articles.select(pick_row, None, remove_id, **private)
        add_files_btn.click(add_files, [files, filter_box], [articles, info, status, files], **private, **write)
        add_text_btn.click(add_pasted, [p_title, p_text, p_date, p_source, p_url, filter_box],
                           [articles, info, status, p_title, p_text, p_date, p_source, p_url], **private, **write)
        remove_btn.click(remove, [remove_id, filter_box], [articles, info, status, remove_id], **private, **write)

        gr.api(ask, api_name="ask")
        gr.api(add_article, api_name="add_article", **write)
        gr.api(search, api_name="search")
    return demo
