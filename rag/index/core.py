"""The index: one object that ingests articles and answers the layers above, whatever stores them.

:class:`Index` reads, chunks, analyses and embeds articles (the same on every backend) and
hands :class:`~rag.index.base.ArticleRecord` values to its backend; reading goes through
the roles of :mod:`rag.index.base`. The backend is chosen by the index location
(:func:`backend_for`): a folder (the default, :mod:`rag.index.folder`), a ``.db`` file
(Milvus Lite) or a ``milvus://`` URI (a Milvus server, :mod:`rag.index.milvus`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rag.config import Config
from rag.errors import IndexMismatchError, IngestInterrupted
from rag.index.base import ArticleRecord
from rag.types import AddReport, Article, RecordProblem

log = logging.getLogger(__name__)

#: The size of an ingest's first batch: small, so the first commit comes early.
FIRST_BATCH = 8


@dataclass(frozen=True)
class IngestProgress:
    """Where an ingest is: what :meth:`Index.add` passes its ``progress`` callback, once at
    the start and after each commit.

    Attributes:
        done: records handled: articles committed or found unchanged, and bad records skipped.
        total: the records expected, counted cheaply before reading (:mod:`rag.counting`);
            None when not known. ``done`` may end a little off when records repeat an id
            or a large JSON file's count was estimated.
        saved: articles of this ingest now in the index (added, updated or already there).
        chunks: chunks embedded so far.
        seconds: since the ingest started.
        title: the last committed article's title ("" at the start and end).
    """

    done: int
    total: int | None
    saved: int
    chunks: int
    seconds: float
    title: str = ""

    @property
    def fraction(self) -> float | None:
        """``done / total`` (at most 1), or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far, or None when it cannot be told yet."""
        if not self.total or not self.done or self.seconds <= 0:
            return None
        return max(0.0, (self.total - self.done) * self.seconds / self.done)


#: Called during ingestion with an :class:`IngestProgress`.
Progress = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class BuildSettings:
    """The settings an index is built with; a mismatch means results would be wrong."""

    embedder: str
    chunk_size: int
    chunk_overlap: int
    faiss_index: str
    hnsw_m: int
    #: sentence vectors pooled from the chunk's forward pass (absent from indexes built before: False)
    pool_sentences: bool = False

    @classmethod
    def from_config(cls, c: Config) -> "BuildSettings":
        return cls(c.embedder, c.chunk_size, c.chunk_overlap, c.faiss_index, c.hnsw_m, c.pool_sentences)

    def describe(self) -> str:
        return (f"embedder {self.embedder}, chunks of {self.chunk_size} tokens with {self.chunk_overlap} overlap, "
                f"FAISS {self.faiss_index}" + (", sentence vectors pooled from the chunks" if self.pool_sentences else ""))

    def embeds_like(self, other: "BuildSettings") -> bool:
        """Whether the two give the same stored vectors (only the FAISS structure may differ)."""
        return (self.embedder, self.chunk_size, self.chunk_overlap, self.pool_sentences) == (
            other.embedder, other.chunk_size, other.chunk_overlap, other.pool_sentences)

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: The backends, tried in order: (does it serve this location?, "module:Class"). A new
#: backend is one module and one line here; the folder backend takes everything else.
BACKENDS: list[tuple[Callable[[str], bool], str]] = [
    (lambda loc: loc.startswith(("milvus://", "milvus:/")) or loc.endswith(".db"), "rag.index.milvus:MilvusIndex"),
]
DEFAULT_BACKEND = "rag.index.folder:FolderIndex"


def backend_for(location: str | Path) -> type["Index"]:
    """The :class:`Index` subclass that serves ``location`` (imported only when chosen)."""
    loc = str(location)
    name = next((cls for serves, cls in BACKENDS if serves(loc)), DEFAULT_BACKEND)
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


class Index:
    """A persisted index of news articles. Open with :meth:`open` or :meth:`create`.

    What is stored where is the backend's (a subclass, see :mod:`rag.index.base` for the
    contract); this class ingests and is what the retriever, the assistant and the UI use.
    """

    def __init__(self, config: Config):
        self.config = config
        #: the clock that times commits (a test may set its own)
        self.clock: Callable[[], float] = time.monotonic
        self._embedder = None
        self._chunker = None
        self._language_shares: tuple[int, dict[str, float]] | None = None
        self._lock = threading.RLock()

    # -- opening (dispatched to the backend of the location) -------------------
    @classmethod
    def exists(cls, path: str | Path) -> bool:
        """Whether an index is at ``path``."""
        return backend_for(path).exists(path)

    @classmethod
    def create(cls, path: str | Path, config: Config | None = None) -> "Index":
        """Create an empty index at ``path`` (which must not hold one already)."""
        return backend_for(path).create(path, config)

    @classmethod
    def open(cls, path: str | Path, config: Config | None = None, *, check_format: bool = True) -> "Index":
        """Open the index at ``path``; ``config``'s build settings, when given, must match its own.

        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError.
        """
        return backend_for(path).open(path, config, check_format=check_format)

    @classmethod
    def open_or_create(cls, path: str | Path, config: Config | None = None) -> "Index":
        return cls.open(path, config) if cls.exists(path) else cls.create(path, config)

    @classmethod
    def rebuild(cls, path: str | Path, config: Config, *, progress: "Progress | None" = None) -> "Index":
        """Rebuild the index at ``path`` with ``config``'s settings (see the backend's)."""
        target = backend_for(path)
        if target.rebuild.__func__ is Index.rebuild.__func__:
            raise IndexMismatchError(f"the index at {path} cannot be rebuilt in place: "
                                     "create a new one and add the articles to it")
        return target.rebuild(path, config, progress=progress)

    def close(self) -> None:
        pass

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def reading(self):
        """Reads inside see one state: no write of this process commits in between."""
        with self._lock:
            yield

    # -- components -------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = _make_embedder(self.config)
        return self._embedder

    @property
    def chunker(self):
        if self._chunker is None:
            from rag.chunking import Chunker

            emb = self.embedder
            size = self.config.chunk_size
            emb.warm_up()
            if size > emb.max_tokens:
                raise IndexMismatchError(
                    f"chunk size {size} is longer than the {emb.max_tokens} tokens {self.config.embedder} reads; "
                    f"use --chunk-size {emb.max_tokens} or less"
                )
            self._chunker = Chunker(emb.count_tokens, size=size, overlap=self.config.chunk_overlap)
        return self._chunker

    # -- writing (the same on every backend: read, chunk, analyse, embed, then write) ------
    def add(self, sources: Iterable[str | Path | Article], *, progress: Progress | None = None) -> AddReport:
        """Read articles from files, folders, web pages or :class:`Article` values and index them.

        An article already indexed with the same content is skipped (so re-running
        an interrupted ingest continues where it stopped); one whose content changed
        replaces its old chunks. Bad files and records, and pages that cannot be
        fetched or read, are reported in the returned :class:`AddReport` and skipped;
        nothing of theirs is written.

        Articles are committed in batches: at most ``config.commit_every``, sized so that
        a commit comes about every ``config.commit_seconds`` (the first after
        :data:`FIRST_BATCH` articles), and on time too when the source is slow.

        Args:
            sources: paths, ``http(s)://`` URLs (strings; fetched by :mod:`rag.fetch`,
                after the files are read) and articles.
            progress: called with an :class:`IngestProgress` at the start and after each
                commit; given one, the input is first counted (cheaply) for its ``total``.
        Raises:
            IngestInterrupted: on KeyboardInterrupt, after saving what was committed; it
                carries the report so far.
        """
        from rag.articles import read_articles
        from rag.fetch import fetch_articles, is_url

        report = AddReport()
        t0 = time.perf_counter()
        items = [sources] if isinstance(sources, (str, Path, Article)) else list(sources)
        urls = [s for s in items if is_url(s)]
        paths = [s for s in items if not isinstance(s, Article) and not is_url(s)]
        given = [s for s in items if isinstance(s, Article)]
        total = _expected_records(given, paths, urls) if progress else None

        def stream():
            yield from given
            if paths:
                yield from read_articles(paths)
            if urls:
                yield from fetch_articles(urls)

        clock = self.clock
        started = last_commit = clock()
        every, budget = self.config.commit_every, self.config.commit_seconds
        # The first batch is small, so something is saved (and the speed known) early; the
        # next ones are sized from the speed so that a commit comes every `budget` seconds.
        limit = min(every, FIRST_BATCH)
        read = embedded = written = 0
        embed_seconds = 0.0

        def tell(title: str) -> None:
            if progress:
                progress(IngestProgress(read, total, _saved(report), embedded, clock() - started, title))

        def commit(title: str) -> None:
            nonlocal batch, embedded, written, embed_seconds, limit, last_commit
            t = clock()
            before = len(report.added) + len(report.updated)
            embedded += self._commit(list(batch.values()), report)
            batch = {}
            last_commit = clock()
            n = len(report.added) + len(report.updated) - before
            if n:
                written += n
                embed_seconds += last_commit - t
                limit = every if embed_seconds <= 0 else max(1, min(every, int(budget * written / embed_seconds)))
            tell(title)

        # The locks (the process's and this object's) are held only around each commit:
        # searches from other threads and other processes' commits go on while a batch
        # is embedded.
        batch: dict[str, Article] = {}
        try:
            tell("")
            for item in stream():
                read += 1
                if isinstance(item, RecordProblem):
                    # Logged at info: the caller reports problems (the CLI prints them once).
                    if report.add_problem(item):
                        log.info("skipped %s", item)
                    continue
                report.note_date(item)
                batch[item.id] = item
                # On count, and on time for a slow source (pages, a slow disk).
                if len(batch) >= limit or clock() - last_commit >= budget:
                    commit(item.title)
            if batch:
                commit("")
        except KeyboardInterrupt as exc:
            # What was committed is saved (below), the rest is re-done next run.
            report.seconds = time.perf_counter() - t0
            raise IngestInterrupted(report, total) from exc
        finally:
            self.flush()
        report.seconds = time.perf_counter() - t0
        return report

    def _commit(self, articles: Sequence[Article], report: AddReport) -> int:
        known = self.checksums([a.id for a in articles])
        todo = []
        for a in articles:
            if known.get(a.id) == a.checksum:
                report.unchanged.append(a.id)
            else:
                todo.append(a)
        if not todo:
            return 0
        records, sketches = self.records_for(todo)
        added = self.write(records, sketches=sketches)
        for a in todo:
            (report.updated if a.id in known else report.added).append(a.id)
        report.chunks_added += len(added)
        return len(added)

    def records_for(self, articles: Sequence[Article]) -> tuple[list[ArticleRecord], dict]:
        """What writing ``articles`` stores, computed without touching the store: their records
        (chunks, vectors, terms, language, sentence vectors) and their dedup sketches by id.

        The whole cost of an ingest but the write; :mod:`rag.index.distributed` runs it on
        Ray workers (on a bare ``Index(config)``, which has no backend) and writes the
        results through one writer, so both paths store the same ids, offsets and vectors.
        """
        from rag.analysis import detect_language, terms
        from rag.chunking import embedding_text
        from rag.dedup import Sketch

        todo = list(articles)
        chunk_lists = self.chunker.chunk_many(todo)
        texts = [embedding_text(a.title, c.text) for a, cl in zip(todo, chunk_lists) for c in cl]
        vecs, sentences = self._embed(todo, chunk_lists, texts)
        records = []
        i = 0
        for a, cl, sents in zip(todo, chunk_lists, sentences):
            lang = detect_language(a.title + "\n" + a.text[:3000])
            records.append(ArticleRecord(a, cl, vecs[i : i + len(cl)], [terms(t, lang) for t in texts[i : i + len(cl)]],
                                         lang, sents))
            i += len(cl)
        sketches = {a.id: Sketch.of(a.title, a.text) for a in todo}  # for grouping copies, outside the lock
        return records, sketches

    def _embed(self, articles: Sequence[Article], chunk_lists: Sequence[Sequence], texts: list[str]):
        """The chunks' vectors and, per article, its sentences' as ``((start, end), vector)`` pairs.

        Each sentence once per article (overlapping chunks share some), with the title as
        context, embedded with the chunks so the second retrieval stage never embeds at
        query time: apart, in the same batches as the chunks (the default), or pooled from
        its chunk's forward pass (``pool_sentences``; a backend that cannot pool embeds it
        apart, see :meth:`Embedder.embed_passages_with_spans`).
        """
        from rag.chunking import chunk_sentences, embedding_text

        spans: list[list[tuple[int, int]]] = []  # per chunk: its new sentences, as offsets into its text
        keys: list[list[tuple[int, int]]] = []  # per article: the same, as offsets into the article
        sent_texts: list[str] = []
        context: list[int] = []
        k = 0
        for a, cl in zip(articles, chunk_lists):
            seen: dict[tuple[int, int], None] = {}
            for c in cl:
                head = len(texts[k]) - len(c.text)  # the title line embedding_text put first
                k += 1
                context.append(head)
                new = []
                if self.config.embed_sentences:
                    for st, en, sent in chunk_sentences(c.text, c.start):
                        if (st, en) not in seen:
                            seen[(st, en)] = None
                            new.append((st - c.start + head, en - c.start + head))
                            sent_texts.append(embedding_text(a.title, sent))
                spans.append(new)
            keys.append(list(seen))
        if not texts:
            return np.zeros((0, _dim_of(self.embedder)), np.float32), [[] for _ in articles]
        if self.config.pool_sentences:
            vecs, per_chunk = self.embedder.embed_passages_with_spans(texts, spans, context=context)
            flat = [v for rows in per_chunk for v in rows]
        else:
            everything = self.embedder.embed_passages(texts + sent_texts)
            vecs, flat = everything[: len(texts)], everything[len(texts):]
        out, j = [], 0
        for ks in keys:
            out.append(list(zip(ks, flat[j : j + len(ks)])))
            j += len(ks)
        return vecs, out

    def flush(self) -> None:
        """Make what was written durable and visible to other processes (end of an ingest)."""

    def language_shares(self) -> dict[str, float]:
        """The share of each language among the indexed articles (cached per store generation).

        The prior that decides the language of very short queries (:func:`rag.analysis.detect_language`).
        """
        gen = self.generation
        cached = self._language_shares
        if cached is None or cached[0] != gen:
            counts = self.language_counts()
            total = sum(counts.values())
            cached = self._language_shares = (gen, {k: n / total for k, n in counts.items()} if total else {})
        return cached[1]

    def query_language(self, text: str) -> str:
        """The language of a question or query, the indexed articles' languages breaking ties."""
        from rag.analysis import detect_language

        return detect_language(text, prior=self.language_shares())

    def retriever(self):
        from rag.retriever import Retriever

        return Retriever(self)


def _expected_records(given: Sequence[Article], paths: Sequence, urls: Sequence[str]) -> int | None:
    """How many records an ingest of these will read (each distinct page is one), cheaply;
    None when the files cannot be counted."""
    from rag.counting import count_records
    from rag.fetch import normalize_url

    try:
        n_files = count_records(paths)
    except OSError as exc:
        log.debug("could not count the input: %s", exc)
        return None
    return len(given) + n_files + len({normalize_url(u) for u in urls})


def _saved(report: AddReport) -> int:
    return len(report.added) + len(report.updated) + len(report.unchanged)


def _make_embedder(config: Config):
    from rag.embedding import get_embedder

    return get_embedder(config.embedder, cache_dir=config.cache_dir, batch_size=config.batch_size, threads=config.threads,
                        runtime=config.runtime)


def _dim_of(embedder) -> int:
    if not embedder.dim:
        embedder.warm_up()
    return int(embedder.dim)
