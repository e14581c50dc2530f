"""The web UI's work, without Gradio: one index, the assistants over it, uploads and the library.

:class:`Backend` is shared by every browser session and API call; :mod:`rag.ui.layout`
only wires it to the page. :class:`UIConfig` says how the app is served.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag.articles import SUPPORTED_SUFFIXES, article_from_text, read_articles
from rag.config import AnswerConfig
from rag.errors import ConfigError, InputError, RagError
from rag.types import AddReport, Answer, Article, Hit, ProblemTally, RecordProblem

if TYPE_CHECKING:
    from rag.index import IngestProgress

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: What the upload box takes: the single-file formats and (J)JSON, not gzip.
UPLOAD_SUFFIXES = tuple(s for s in SUPPORTED_SUFFIXES if not s.endswith(".gz"))
UPLOADS_DIR = "uploads"
MAX_SOURCES = 20
#: Problems of a bad upload named one by one in the status box; the rest are counted by kind.
MAX_SHOWN_PROBLEMS = 10


# -- configuration -------------------------------------------------------------


@dataclass(frozen=True)
class UIConfig:
    """How the web app is served; built once by ``rag serve`` (or ``app.py``) from flags and environment."""

    index_dir: Path = Path("index")
    host: str = "127.0.0.1"
    port: int = 7860
    llm: str | None = None
    concurrency: int = 2
    auth: tuple[str, str] | None = field(default=None, repr=False)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    #: longest article the app indexes in one call: embedding holds every other write of the
    #: app meanwhile (about 15 s at this size); longer ones go through `rag index add`
    max_article_chars: int = 200_000
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


class LoginGuard:
    """The app's login check (``RAG_AUTH``), throttled: each failed attempt for a name waits a
    little longer (up to ``max_delay`` seconds), and ``max_failures`` failures within ``window``
    seconds lock that name out for ``lockout`` seconds, right password or not. Passwords are
    compared in constant time. Gradio calls it with (username, password).
    """

    def __init__(self, user: str, password: str, *, max_failures: int = 5, window: float = 300.0,
                 lockout: float = 300.0, max_delay: float = 2.0, clock=None, sleep=None):
        import time

        self._user, self._password = user, password
        self.max_failures, self.window, self.lockout, self.max_delay = max_failures, window, lockout, max_delay
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, username: str, password: str) -> bool:
        import hmac

        name = str(username or "")[:200]
        now = self._clock()
        with self._lock:
            if self._locked_until.get(name, 0.0) > now:
                log.warning("login refused for %r: locked after too many failed attempts", name)
                return False
        ok = hmac.compare_digest(name.encode(), self._user.encode()) & hmac.compare_digest(
            str(password or "").encode(), self._password.encode())
        if ok:
            with self._lock:
                self._failures.pop(name, None)
            return True
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < self.window] + [now]
            self._failures[name] = recent
            if len(self._failures) > 10_000:  # names are attacker-chosen: keep memory bounded
                self._failures.pop(next(iter(self._failures)))
            if len(recent) >= self.max_failures:
                self._locked_until[name] = now + self.lockout
                log.warning("login for %r locked for %.0f s after %d failed attempts", name, self.lockout, len(recent))
        self._sleep(min(self.max_delay, 0.25 * len(recent)))
        return False


# -- the work ------------------------------------------------------------------


class Backend:
    """One index and the assistants over it, shared by every browser session and API call.

    Writes (adding, removing) are serialized by a lock: the index allows one writer
    at a time. Reads go on during a write; new articles are searchable as soon as
    they are committed, with no restart.
    """

    def __init__(self, index, llm=None, answer_config: AnswerConfig | None = None,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES, max_article_chars: int = 200_000):
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
        self.max_article_chars = max_article_chars
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._feed_scheduler = None
        self._chats = None

    @property
    def chats(self):
        """The saved conversations of the web chat (:class:`rag.serve.chats.ChatStore`, in the
        index folder), opened at first use."""
        from rag.serve.chats import ChatStore

        with self._lock:
            if self._chats is None:
                self._chats = ChatStore(self.index.path)
            return self._chats

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
        return cls(Index.open(config.index_dir), llm, config.answer, config.max_upload_bytes,
                   config.max_article_chars)

    def warm_up(self) -> None:
        """Load the embedder and the reader and run them once, so the first question is as
        fast as the next."""
        self.retriever.warm_up()
        self.index.embedder.embed_query("warm-up")
        self._base["extractive"].warm_up()
        if "llm" in self._base:  # a local model is loaded (and joined from its parts, once) now
            self._base["llm"].generative.llm.warm_up()

    def warm_up_in_background(self) -> threading.Thread:
        """:meth:`warm_up` in a thread, so the page is served meanwhile (a question asked
        before it ends waits for the models, then runs). A failure is logged; the first
        question then reports it."""

        def run() -> None:
            t0 = time.perf_counter()
            try:
                self.warm_up()
            except Exception:  # noqa: BLE001 (logged; the first question raises it again for the user)
                log.exception("warming up the models failed")
            else:
                log.info("models ready in %.1f s", time.perf_counter() - t0)

        thread = threading.Thread(target=run, name="rag-warm-up", daemon=True)
        thread.start()
        return thread

    @property
    def answerers(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the answerers on offer."""
        out = [("Extractive (quotes the articles)", "extractive")]
        if self.llm_name:
            # "llm:openai:http://host/v1#qwen" -> "qwen"; "llm:llama-cpp:/models/x.gguf" -> "x.gguf"
            # "llm:local:qwen2.5-coder-0.5b" -> "qwen2.5-coder-0.5b"
            short = (self.llm_name.rpartition("#")[2] if "#" in self.llm_name
                     else self.llm_name.rpartition("/")[2].rpartition(":")[2])
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
               date_from: str | None = None, date_to: str | None = None, sources=None,
               recent: str | None = None) -> Iterator[str | Answer]:
        """Answer pieces, then the :class:`Answer` (see :meth:`rag.chat.Assistant.stream`);
        the filters are those of :func:`make_filters`."""
        from rag.retriever import clean_query

        question = clean_query(question)
        filters = make_filters(date_from, date_to, sources, recent)
        k = self._check_k(k)
        return self.assistant(answerer).stream(question, history, filters=filters, k=k)

    def ask(self, question: str, **kw) -> Answer:
        answer = None
        for item in self.stream(question, **kw):
            if isinstance(item, Answer):
                answer = item
        return answer

    def search(self, query: str, k: int = 5, *, date_from: str | None = None, date_to: str | None = None,
               sources=None, recent: str | None = None) -> list[Hit]:
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        return self.retriever.retrieve(query, k=k, filters=make_filters(date_from, date_to, sources, recent))

    def sources(self) -> list[str]:
        """The sources of the indexed articles, most articles first (for the source filter)."""
        return [name for name, _ in self.index.sources()]

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
        return self.index.counts()

    def add_text(self, title: str, text: str, date: str | None = None, source: str | None = None,
                 url: str | None = None) -> tuple[Article, AddReport]:
        """Index an article typed or pasted by a user.

        Raises:
            InputError: empty or over-long title or text.
        """
        article = article_from_text(title, text, date=_blank_to_none(date, "date"),
                                    source=_blank_to_none(source, "source"), url=_blank_to_none(url, "url"),
                                    origin="web UI (pasted)")
        self._check_size([article])
        with self._write_lock:
            report = self.index.add([article])
        log.info("pasted article %s (%s): %d chunks", article.id, "new" if report.added else "known",
                 report.chunks_added)
        return article, report

    def _check_size(self, articles: Sequence[Article]) -> None:
        limit = self.max_article_chars
        big = [a for a in articles if len(a.text) > limit]
        if big:
            raise InputError(
                f"nothing was added: «{big[0].title[:80]}» is {len(big[0].text):,} characters long; the app takes "
                f"articles of up to {limit:,} (embedding a longer one would hold every other change meanwhile). "
                f"Add it with `rag index add FILE --index {self.index.path}`: the app sees it at once.")

    def add_uploads(self, files: Sequence[str | Path], *, names: Sequence[str] | None = None,
                    progress: Callable[[IngestProgress], None] | None = None) -> AddReport:
        """Check, copy and index uploaded files; all or nothing.

        Each file must have a supported suffix and be at most ``max_upload_bytes``;
        it is copied into ``<index>/uploads/`` under a new unique name (the client's
        name is only a hint, cleaned) and read from there. If any file or record is
        bad, the copies are deleted and nothing is indexed.

        Args:
            files: paths of the uploaded files (in Gradio's upload cache).
            names: the names to report them by (default: their file names).
            progress: called as :meth:`rag.index.Index.add` calls it (its ``total`` is known).
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
                articles, problems = [], ProblemTally(keep=MAX_SHOWN_PROBLEMS)
                for item in read_articles(saved):
                    if isinstance(item, Article):
                        articles.append(item)
                    else:
                        where = shown.get(item.path, Path(item.path).name)
                        record = "" if item.line is None else f" (record {item.line})"
                        problems.add(RecordProblem(f"{where}{record}", None, item.reason))
                if problems.total:
                    raise InputError("nothing was added: " + "; ".join(problems.summary(MAX_SHOWN_PROBLEMS)))
                if not articles:
                    raise InputError("nothing was added: the files hold no articles")
                self._check_size(articles)
                report = self.index.add(articles, progress=progress)
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
            raise InputError(f"{name} is {fmt_bytes(size)}; the limit is {fmt_bytes(self.max_upload_bytes)}")
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


    # -- feeds -------------------------------------------------------------------
    def feeds(self) -> list[dict]:
        """The feeds the index follows: url, title, last_checked, last_ok, last_error, articles..."""
        from rag.feeds import FeedStore

        if not FeedStore.exists(self.index.path):
            return []
        with FeedStore(self.index.path) as store:
            return [f.to_dict() for f in store.feeds()]

    def refresh_feeds(self):
        """Read the followed feeds and index what is new (see :func:`rag.feeds.refresh`); the
        articles are added under the app's write lock, the fetching is done outside it."""
        from rag.feeds import refresh

        def add(articles):
            with self._write_lock:
                return self.index.add(articles)

        report = refresh(self.index, add=add)
        log.info("feeds refreshed: %s", report.summary())
        if report.date_summary():
            log.info("feeds: %s", report.date_summary())
        return report

    def refresh_feeds_every(self, seconds: float, *, after: threading.Thread | None = None):
        """Refresh the feeds now (once ``after`` is done, e.g. the models' warm-up), then every
        ``seconds``, in a background thread. Returns the :class:`rag.feeds.FeedScheduler`."""
        from rag.feeds import FeedScheduler

        def run():
            if after is not None:
                after.join()
            self.refresh_feeds()

        self._feed_scheduler = FeedScheduler(run, seconds).start()
        return self._feed_scheduler

    def feeds_schedule(self) -> str:
        """One line on when the feeds are read."""
        s = self._feed_scheduler
        if s is None:
            return "Feeds are read by `rag feeds refresh` (or start the app with --refresh-feeds 30m)."
        hours = s.interval >= 3600 and s.interval % 3600 == 0
        every = f"{s.interval / 3600:g} h" if hours else f"{s.interval / 60:g} min"
        line = f"Feeds are read every {every}"
        if s.next_run is not None:
            line += time.strftime(", next at %H:%M UTC", time.gmtime(s.next_run))
        if s.last_error:
            line += f"; the last refresh failed: {s.last_error}"
        return line + "."


#: The app's recency choices: (label, duration for Filters.make).
RECENCY = [("Any time", ""), ("Last 24 hours", "1d"), ("Last 7 days", "7d"), ("Last 30 days", "30d"),
           ("Last 12 months", "1y")]


def make_filters(date_from: str | None, date_to: str | None, sources=None, recent: str | None = None):
    """Retrieval filters from the settings (blank = open), or None when nothing is set.

    Args:
        sources: a source name or names (blank ones ignored).
        recent: ``7d``, ``2w``, ``3m`` or ``1y``: from that long ago (or from ``date_from``, if later).
    Raises:
        InputError: a date that is not ``YYYY-MM-DD``, a bad duration, or a range that ends
            before it starts.
    """
    from rag.filters import Filters

    date_from, date_to = _blank_to_none(date_from, "date_from"), _blank_to_none(date_to, "date_to")
    recent = _blank_to_none(recent, "recent")
    if isinstance(sources, str):
        sources = [sources]
    sources = [x.strip() for x in (sources or []) if isinstance(x, str) and x.strip()]
    if date_from is None and date_to is None and recent is None and not sources:
        return None
    try:
        return Filters.make(date_from, date_to, sources, recent)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def upload_suffix(name: str) -> str | None:
    low = name.lower()
    return next((s for s in sorted(UPLOAD_SUFFIXES, key=len, reverse=True) if low.endswith(s)), None)


def safe_upload_name(client_name: str, suffix: str) -> str:
    """A new file name for an upload: a random prefix, the client's name reduced to [A-Za-z0-9_-]."""
    stem = Path(client_name.replace("\\", "/")).name
    stem = stem[: len(stem) - len(suffix)] if stem.lower().endswith(suffix) else stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:60] or "upload"
    return f"{uuid.uuid4().hex[:12]}-{stem}{suffix}"


def fmt_bytes(n: int) -> str:
    if n >= 1048576:
        return f"{n / 1048576:.1f} MB".replace(".0 MB", " MB")
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"


def _blank_to_none(value: str | None, name: str = "value") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, got {type(value).__name__}")
    return value.strip() or None
