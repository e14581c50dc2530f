"""An index folder: manifest, article/chunk store and FAISS vectors, kept consistent.

Layout of ``index/``::

    manifest.json            how it was built (format, embedder, chunking, FAISS), counts, checksum
    store.sqlite             articles, chunk offsets, vectors and BM25 terms (the source of truth)
    vectors-<gen>.faiss      the FAISS index for store generation <gen>
    lexical-<gen>.npz        the BM25 matrix for store generation <gen>

Several processes may use one folder. The store is the truth; the FAISS file is a
cache of it. A writer takes the folder's lock for each commit (not for a whole
ingest) and first brings its in-memory FAISS index up to the store's current state,
so what another process committed meanwhile is never overwritten. Readers never
take the lock: they load the latest FAISS file and catch it up with the store in
memory (the file may lag during an ingest), and every read checks the store's
generation, so a long-running app sees another process's commits without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rag.analysis import ANALYZER
from rag.config import Config
from rag.errors import (IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError,
                        IngestInterrupted)
from rag.fsutil import atomic_write_json, fsync_dir, try_write_lock, write_lock
from rag.store import DB_NAME, Store
from rag.types import AddReport, Article, RecordProblem
from rag.vectors import VectorIndex, latest_vectors_file, vectors_filename

log = logging.getLogger(__name__)

FORMAT = "rag-news-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: How a new index stores sentence vectors: half the bytes of float32, and retrieval and
#: answers measured the same (README, "Sentence vectors"). Indexes built before say
#: nothing and hold float32, which still reads.
SENTENCE_DTYPE = "float16"

#: How long a writer waits for another process's commit before giving up (IndexLockedError).
LOCK_WAIT_SECONDS = 30.0
#: During a long ingest the FAISS and BM25 files are saved at most this often, so
#: that a reader opening meanwhile has little to catch up on in memory.
PERSIST_EVERY_SECONDS = 30.0

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


class Index:
    """A persisted index of news articles. Open with :meth:`open` or :meth:`create`.

    One process commits at a time (a lock file guards each commit); any number may
    read, without the lock. Writers and readers alike start from the store's current
    state, whatever other processes committed.
    """

    def __init__(self, path: Path, config: Config, store: Store, vectors: VectorIndex, manifest: dict,
                 vectors_generation: int | None = None):
        self.path = path
        self.config = config
        self.store = store
        self._vectors = vectors
        # The store generation the in-memory FAISS index mirrors.
        self._vectors_gen = store.generation if vectors_generation is None else vectors_generation
        self.manifest = manifest
        #: seconds a write waits for another process's commit (see LOCK_WAIT_SECONDS)
        self.lock_wait = LOCK_WAIT_SECONDS
        self._last_persist = time.monotonic()
        #: the clock that times commits (a test may set its own)
        self.clock: Callable[[], float] = time.monotonic
        self._embedder = None
        self._chunker = None
        self._lexical = None
        self._lexical_gen = -1
        self._language_shares: tuple[int, dict[str, float]] | None = None
        self._lock = threading.RLock()

    # -- opening ----------------------------------------------------------
    @classmethod
    def exists(cls, path: str | Path) -> bool:
        """Whether an index is at ``path`` (after finishing or undoing a rebuild that a crash
        interrupted, see :func:`recover_rebuild`)."""
        recover_rebuild(Path(path))
        return (Path(path) / MANIFEST).is_file() and (Path(path) / DB_NAME).is_file()

    @classmethod
    def create(cls, path: str | Path, config: Config | None = None) -> "Index":
        """Create an empty index at ``path`` (which must not hold one already)."""
        path = Path(path)
        config = (config or Config()).with_(index_dir=path)
        if cls.exists(path):
            raise IndexMismatchError(f"an index already exists at {path}; open it, or remove the folder first")
        path.mkdir(parents=True, exist_ok=True)
        with write_lock(path):
            settings = BuildSettings.from_config(config)
            embedder = _make_embedder(config)
            store = Store(path / DB_NAME)
            store.set_meta("settings", settings.__dict__)
            store.set_sentence_dtype(SENTENCE_DTYPE)
            vectors = VectorIndex.empty(_dim_of(embedder), config.faiss_index, hnsw_m=config.hnsw_m,
                                        ef_search=config.hnsw_ef_search)
            index = cls(path, config, store, vectors, {})
            index._embedder = embedder
            index.manifest = index._manifest()
            index._persist()
        log.info("created index at %s (%s)", path, settings.describe())
        return index

    @classmethod
    def open(cls, path: str | Path, config: Config | None = None, *, check_format: bool = True) -> "Index":
        """Open the index at ``path``.

        Args:
            config: when given, its build settings must match the index's (else
                :class:`IndexMismatchError` says what to run); when None the index's
                own settings are used.
            check_format: False only to rebuild an index written by another version.
        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError.
        """
        path = Path(path)
        if not cls.exists(path):
            raise IndexNotFoundError(
                f"no index at {path}: build one with `rag index add ARTICLES... --index {path}`"
            )
        import json

        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read {path / MANIFEST}: {exc}") from exc
        if check_format and (manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION):
            raise IndexMismatchError(
                f"{path} holds an index in format {manifest.get('format')!r} v{manifest.get('format_version')}, "
                f"this version reads {FORMAT!r} v{FORMAT_VERSION}: run `rag index rebuild --index {path}`"
            )
        from rag.chunking import SPLITTER

        splitter = manifest.get("chunking", {}).get("splitter")
        if splitter != SPLITTER and check_format:
            raise IndexMismatchError(
                f"the index at {path} was chunked by {splitter!r}, this version chunks by {SPLITTER!r}: "
                f"run `rag index rebuild --index {path}`"
            )
        analyzer = manifest.get("chunking", {}).get("analyzer")
        if analyzer != ANALYZER and check_format:
            # Still usable (vectors are unaffected); BM25 matches a little less well until re-analyzed.
            log.warning("the index at %s has BM25 terms from analyzer %s, this version analyzes with %s: "
                        "`rag index rebuild --index %s` re-analyzes them (no re-embedding)",
                        path, analyzer or "terms-v1", ANALYZER, path)
        store = Store(path / DB_NAME)
        if not store.dates_current:
            _rekey_dates(path, store)
        built = BuildSettings(**store.get_meta("settings"))
        base = config or Config(index_dir=path)
        if config is not None:
            wanted = BuildSettings.from_config(config)
            if wanted != built:
                env = f"RAG_POOL_SENTENCES={int(wanted.pool_sentences)} " if wanted.pool_sentences != built.pool_sentences else ""
                raise IndexMismatchError(
                    f"the index at {path} was built with {built.describe()}, but {wanted.describe()} was asked for. "
                    f"Run `{env}rag index rebuild --index {path} --embedder {wanted.embedder} --chunk-size {wanted.chunk_size} "
                    f"--chunk-overlap {wanted.chunk_overlap} --faiss {wanted.faiss_index}` to rebuild it with the new "
                    "settings, or leave them out to use the index as it was built."
                )
        config = base.with_(index_dir=path, embedder=built.embedder, chunk_size=built.chunk_size,
                            chunk_overlap=built.chunk_overlap, faiss_index=built.faiss_index, hnsw_m=built.hnsw_m,
                            pool_sentences=built.pool_sentences)
        emb = manifest.get("embedder", {})
        vectors, gen = cls._load_vectors(path, store, config, int(emb.get("dim", 0)))
        return cls(path, config, store, vectors, manifest, gen)

    @classmethod
    def open_or_create(cls, path: str | Path, config: Config | None = None) -> "Index":
        return cls.open(path, config) if cls.exists(path) else cls.create(path, config)

    @staticmethod
    def _load_vectors(path: Path, store: Store, config: Config, dim: int) -> tuple[VectorIndex, int]:
        """The latest FAISS file, checked against the store and caught up with it in memory.

        Never takes the writer's lock to do so, so opening works during another
        process's ingest. The repaired index is saved only when the lock is free.
        """
        with store.snapshot():
            gen = store.generation
            vectors, file_gen = _read_latest_vectors(path, config, dim)
            vectors, changed = _synced(vectors, store, config)
        if changed or file_gen != gen:
            log.info("FAISS file for generation %s did not match the store (generation %s); caught up in memory",
                     file_gen, gen)
            _save_repaired(path, store, vectors, gen)
        return vectors, gen

    # -- staying current ----------------------------------------------------
    @property
    def vectors(self) -> VectorIndex:
        """The FAISS index, first caught up with what any process committed since it was read."""
        with self._lock:
            if self.store.generation != self._vectors_gen:
                self._sync_vectors()
            return self._vectors

    def _sync_vectors(self) -> None:
        with self._lock, self.store.snapshot():
            gen = self.store.generation
            self._vectors, changed = _synced(self._vectors, self.store, self.config)
            if changed:
                log.info("FAISS index caught up with store generation %s (from %s)", gen, self._vectors_gen)
            self._vectors_gen = gen

    @contextlib.contextmanager
    def _writing(self):
        """Hold the writer lock (waiting for another process's commit), then this process's lock,
        with the FAISS index caught up with the store: a write starts from what every process
        committed, so the file it saves holds exactly the store's chunks."""
        with write_lock(self.path, wait=self.lock_wait), self._lock:
            if self.store.generation != self._vectors_gen:
                self._sync_vectors()
            yield

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

    # -- writing ----------------------------------------------------------
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
            self._save_files()
        report.seconds = time.perf_counter() - t0
        return report

    def _commit(self, articles: Sequence[Article], report: AddReport) -> int:
        known = self.store.checksums([a.id for a in articles])
        todo = []
        for a in articles:
            if known.get(a.id) == a.checksum:
                report.unchanged.append(a.id)
            else:
                todo.append(a)
        if not todo:
            return 0
        from rag.analysis import detect_language, terms
        from rag.chunking import embedding_text
        from rag.dedup import Sketch

        chunk_lists = self.chunker.chunk_many(todo)
        texts = [embedding_text(a.title, c.text) for a, cl in zip(todo, chunk_lists) for c in cl]
        vecs, sentences = self._embed(todo, chunk_lists, texts)
        items = []
        i = 0
        for a, cl, sents in zip(todo, chunk_lists, sentences):
            lang = detect_language(a.title + "\n" + a.text[:3000])
            items.append((a, cl, vecs[i : i + len(cl)], [terms(t, lang) for t in texts[i : i + len(cl)]], lang, sents))
            i += len(cl)
        sketches = {a.id: Sketch.of(a.title, a.text) for a in todo}  # for grouping copies, outside the lock
        with self._writing():
            removed, added = self.store.write(items, _now(), sketches=sketches)
            self._apply(removed, np.asarray(added, dtype=np.int64), vecs)
            self._vectors_gen = self.store.generation
            if time.monotonic() - self._last_persist > PERSIST_EVERY_SECONDS:
                self._persist()
        for a in todo:
            (report.updated if a.id in known else report.added).append(a.id)
        report.chunks_added += len(added)
        return len(added)

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
            return np.zeros((0, self.vectors_dim), np.float32), [[] for _ in articles]
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

    @property
    def vectors_dim(self) -> int:
        return int(self._vectors.faiss_index.d)

    def _apply(self, removed: Sequence[int], added_ids: np.ndarray, added_vecs: np.ndarray) -> None:
        """Mirror this object's store commit in the in-memory FAISS index (under :meth:`_writing`)."""
        if removed:
            if self._vectors.supports_remove:
                self._vectors.remove(removed)
            else:
                # HNSW cannot delete: rebuild its graph from the stored vectors.
                self._rebuild_vectors()
                return
        self._vectors.add(added_ids, added_vecs)

    def _rebuild_vectors(self) -> None:
        c = self.config
        vectors = VectorIndex.empty(self.vectors_dim, c.faiss_index, hnsw_m=c.hnsw_m, ef_search=c.hnsw_ef_search)
        with self._lock, self.store.snapshot():
            ids, vecs = self.store.all_vectors(self.vectors_dim)
            vectors.add(ids, vecs)
            self._vectors = vectors
            self._vectors_gen = self.store.generation

    def remove(self, article_id: str) -> bool:
        """Remove one article and its chunks. Returns False when there is no such article."""
        with self._writing():
            ids = self.store.remove(article_id)
            if ids is None:
                return False
            self._apply(ids, np.zeros(0, np.int64), np.zeros((0, self.vectors_dim), np.float32))
            self._vectors_gen = self.store.generation
            self._persist()
        return True

    def _save_files(self) -> None:
        """Save the FAISS and BM25 files and the manifest for the store's current generation.

        Best effort: when another process holds the lock too long, the files stay a
        generation behind, which every open and every writer catches up from the store.
        """
        try:
            with self._writing():
                self._persist()
        except IndexLockedError as exc:
            log.warning("index files not saved (%s); the next open catches up from the store", exc)

    @property
    def lexical(self):
        """The BM25 index of the chunks (loaded or rebuilt for the current generation)."""
        from rag.lexical import BM25Index, lexical_filename

        with self._lock, self.store.snapshot():
            gen = self.store.generation
            if self._lexical is None or self._lexical_gen != gen:
                path = self.path / lexical_filename(gen)
                if path.exists():
                    self._lexical = BM25Index.load(path)
                else:
                    ids, docs = self.store.all_terms()
                    self._lexical = BM25Index.build(ids, docs)
                self._lexical_gen = gen
            return self._lexical

    def _persist(self) -> None:
        """Save the files of the current generation (under :meth:`_writing`, or at create)."""
        from rag.lexical import lexical_filename

        gen = self.store.generation
        target = self.path / vectors_filename(gen)
        if not target.exists():
            self.vectors.save(target)
        self._last_persist = time.monotonic()
        lex_path = self.path / lexical_filename(gen)
        if not lex_path.exists():
            self.lexical.save(lex_path)
        self.manifest = self._manifest()
        atomic_write_json(self.path / MANIFEST, self.manifest)
        _drop_old_vector_files(self.path, gen)

    def _manifest(self) -> dict:
        settings = BuildSettings(**self.store.get_meta("settings"))
        n_articles, n_chunks = self.store.counts()
        emb = self.manifest.get("embedder") if self.manifest else None
        if self._embedder is not None:
            emb = {"name": settings.embedder, **self._embedder.info()}
        from rag.chunking import SPLITTER
        from rag.dedup import SETTINGS

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": (self.manifest or {}).get("created") or _now(),
            "updated": _now(),
            "embedder": emb or {"name": settings.embedder, "dim": self.vectors_dim},
            "chunking": {"size": settings.chunk_size, "overlap": settings.chunk_overlap, "unit": "model tokens",
                         "splitter": SPLITTER, "title_prefix": True,
                         "analyzer": ANALYZER},
            "faiss": {"kind": settings.faiss_index, "metric": "inner_product", "hnsw_m": settings.hnsw_m,
                      "file": vectors_filename(self.store.generation)},
            "sentence_vectors": {"dtype": self.store.sentence_dtype.name,
                                 "from": "chunk pass, mean-pooled" if settings.pool_sentences else "embedded apart"},
            # how syndicated copies are grouped (rag.dedup); None until an older index is grouped
            "stories": dict(SETTINGS) if self.store.stories_ready else None,
            "counts": {"articles": n_articles, "chunks": n_chunks},
            "checksum": self.store.corpus_checksum(),
            "generation": self.store.generation,
        }

    # -- reading ----------------------------------------------------------
    def stats(self) -> dict:
        n_articles, n_chunks = self.store.counts()
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        return {
            "path": str(self.path),
            "articles": n_articles,
            "chunks": n_chunks,
            "vectors": len(self.vectors),
            "sentence_vectors": self.store.sentence_count(),
            "stories": self.store.story_counts(),
            "embedder": self.manifest.get("embedder", {}),
            "chunking": self.manifest.get("chunking", {}),
            "faiss": {**self.manifest.get("faiss", {}), "kind": self.vectors.kind},
            "size_bytes": size,
            "updated": self.manifest.get("updated"),
            "checksum": self.manifest.get("checksum"),
        }

    def language_shares(self) -> dict[str, float]:
        """The share of each language among the indexed articles (cached per store generation).

        The prior that decides the language of very short queries (:func:`rag.analysis.detect_language`).
        """
        gen = self.store.generation
        cached = self._language_shares
        if cached is None or cached[0] != gen:
            counts = self.store.language_counts()
            total = sum(counts.values())
            cached = self._language_shares = (gen, {k: n / total for k, n in counts.items()} if total else {})
        return cached[1]

    def query_language(self, text: str) -> str:
        """The language of a question or query, the indexed articles' languages breaking ties."""
        from rag.analysis import detect_language

        return detect_language(text, prior=self.language_shares())

    def get_article(self, article_id: str) -> Article | None:
        return self.store.get_article(article_id)

    def articles(self) -> list[dict]:
        return self.store.list_articles()

    def retriever(self):
        from rag.retriever import Retriever

        return Retriever(self)

    # -- rebuilding -------------------------------------------------------
    @classmethod
    def rebuild(cls, path: str | Path, config: Config, *, progress: Progress | None = None) -> "Index":
        """Rebuild the index at ``path`` with ``config``'s settings.

        Only the FAISS structure changes: rebuilt from stored vectors. The embedder
        or chunking changes: every stored article is re-chunked and re-embedded into
        a new folder, which then replaces the old one.
        """
        from rag.chunking import SPLITTER

        path = Path(path)
        old = cls.open(path, check_format=False)
        wanted = BuildSettings.from_config(config)
        built = BuildSettings(**old.store.get_meta("settings"))
        same_chunks = old.manifest.get("chunking", {}).get("splitter") == SPLITTER and (
            old.manifest.get("format_version") == FORMAT_VERSION)
        if same_chunks and wanted.embeds_like(built):
            with write_lock(path):
                if old.manifest.get("chunking", {}).get("analyzer") != ANALYZER:
                    log.info("re-analyzing BM25 terms and languages with %s", ANALYZER)
                    old.store.reanalyze()
                    old._lexical = None
                old.store.regroup()  # an index written before syndicated copies were grouped
                old.store.rekey_dates()  # dates an earlier version could not read
                old.store.set_meta("settings", wanted.__dict__)
                old.config = old.config.with_(faiss_index=config.faiss_index, hnsw_m=config.hnsw_m,
                                              hnsw_ef_search=config.hnsw_ef_search)
                old._rebuild_vectors()
                for p in path.glob("vectors-*.faiss"):
                    p.unlink()
                old._persist()
            return old
        # Re-embed into <index>.rebuild, then swap folders. The writer lock is held
        # throughout, so no write to the old index is lost meanwhile; a crash at any
        # point is finished or undone by the next open (recover_rebuild).
        tmp, backup = _rebuild_paths(path)
        old.close()
        with write_lock(path, wait=LOCK_WAIT_SECONDS):
            old = cls.open(path, check_format=False)
            shutil.rmtree(tmp, ignore_errors=True)
            new = cls.create(tmp, config)
            new.add(list(old.store.iter_articles()), progress=progress)
            # The days relative dates ("il y a 2 jours") named when first indexed, not today's.
            new.store.keep_date_keys(old.store.date_keys())
            old.close()
            new.close()
            for name in KEPT_ON_REBUILD:  # uploads and feed state live with the index
                if (path / name).exists():
                    shutil.move(str(path / name), str(tmp / name))
            atomic_write_json(tmp / REBUILD_COMPLETE, {"rebuilt": _now()})
            shutil.rmtree(backup, ignore_errors=True)
            path.rename(backup)
            tmp.rename(path)
            fsync_dir(path.parent)
            (path / REBUILD_COMPLETE).unlink(missing_ok=True)
        shutil.rmtree(backup, ignore_errors=True)
        return cls.open(path, config)


def _rekey_dates(path: Path, store: Store) -> None:
    """Read the dates an earlier version could not (no re-embedding), when the writer lock
    is free at once; else the next open does it."""
    with try_write_lock(path) as free:
        if free:
            store.rekey_dates()


UPLOADS = "uploads"
#: What a rebuild carries over into the new folder: files added through the app, and the
#: state of the feeds the index follows (rag.feeds.FEEDS_DB), and the saved conversations (rag.serve.chats).
KEPT_ON_REBUILD = (UPLOADS, "feeds.sqlite", "chats.sqlite")
#: Written into <index>.rebuild once it holds everything; the swap may then complete.
REBUILD_COMPLETE = ".rebuild-complete"


def _rebuild_paths(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".rebuild"), path.with_name(path.name + ".old")


def recover_rebuild(path: Path) -> str | None:
    """Finish or undo a re-embedding rebuild that a crash interrupted; says what it did.

    A rebuild fills ``<index>.rebuild``, marks it complete, renames ``<index>`` to
    ``<index>.old`` and ``<index>.rebuild`` to ``<index>``. After a crash: a complete
    new folder is swapped in, an incomplete one is removed (moving back the uploads
    it had taken), and a left-over ``.old`` is removed once ``<index>`` is in place.
    Nothing is done while a rebuild is running (its lock is held).

    Returns:
        What was done (also logged as a warning), or None when there was nothing to do.
    """
    tmp, backup = _rebuild_paths(path)
    if not tmp.exists() and not backup.exists():
        return None
    holder = path if path.exists() else backup
    if not holder.exists():
        return None
    with try_write_lock(holder) as free:
        if not free:
            return None  # a rebuild (or another writer) is at work
        complete = (tmp / REBUILD_COMPLETE).is_file()
        if not path.exists():
            if complete:
                tmp.rename(path)
                done = f"finished an interrupted rebuild of {path}: the rebuilt index is in place"
            else:
                backup.rename(path)
                _discard_rebuild(tmp, path)
                done = f"undid an interrupted rebuild of {path}: the index is as it was before"
        elif tmp.exists() and complete:
            shutil.rmtree(backup, ignore_errors=True)
            path.rename(backup)
            tmp.rename(path)
            done = f"finished an interrupted rebuild of {path}: the rebuilt index is in place"
        elif tmp.exists():
            _discard_rebuild(tmp, path)
            done = f"removed an unfinished rebuild of {path} ({tmp.name}); the index is as it was before"
        else:
            done = f"removed {backup.name}, the copy of {path} an interrupted rebuild had kept"
        fsync_dir(path.parent)
    shutil.rmtree(backup, ignore_errors=True)
    (path / REBUILD_COMPLETE).unlink(missing_ok=True)
    log.warning("%s", done)
    return done


def _discard_rebuild(tmp: Path, path: Path) -> None:
    """Remove an unfinished rebuild folder, first moving back the uploads and feed state it had taken."""
    for name in KEPT_ON_REBUILD:
        if (tmp / name).exists() and not (path / name).exists():
            shutil.move(str(tmp / name), str(path / name))
    shutil.rmtree(tmp, ignore_errors=True)


def _read_latest_vectors(path: Path, config: Config, dim: int) -> tuple[VectorIndex, int | None]:
    """The newest saved FAISS index and its generation; an empty one (None) when there is
    none usable. A file a writer replaced while we looked is looked for again."""
    empty = VectorIndex.empty(dim, config.faiss_index, hnsw_m=config.hnsw_m, ef_search=config.hnsw_ef_search)
    for _ in range(5):
        found = latest_vectors_file(path)
        if found is None:
            return empty, None
        try:
            vectors = VectorIndex.load(found[1], ef_search=config.hnsw_ef_search)
        except IndexCorruptError as exc:
            if found[1].exists():
                log.warning("%s; rebuilding it from the stored vectors", exc)
                return empty, None
            continue  # replaced by a newer generation meanwhile
        if vectors.kind != config.faiss_index or int(vectors.faiss_index.d) != dim:
            # e.g. a `rebuild --faiss hnsw` interrupted after the settings changed
            log.warning("%s is a %s index of %s dimensions, the index is built as %s of %s; rebuilding it",
                        found[1].name, vectors.kind, vectors.faiss_index.d, config.faiss_index, dim)
            return empty, None
        return vectors, found[0]
    return empty, None


def _synced(vectors: VectorIndex, store: Store, config: Config) -> tuple[VectorIndex, bool]:
    """``vectors`` made to hold exactly the store's chunk ids (call inside ``store.snapshot()``).

    Only the difference is read from the store: ids a FAISS file lacks (committed
    after it was saved) and ids it has that the store no longer does (removed or
    replaced since). HNSW cannot delete, so then its graph is rebuilt.

    Returns:
        (the index, possibly a new one; whether anything changed).
    """
    want = store.chunk_ids()
    have = vectors.ids()
    if np.array_equal(want, have):
        return vectors, False
    dim = int(vectors.faiss_index.d)
    extra = np.setdiff1d(have, want, assume_unique=True)
    missing = np.setdiff1d(want, have, assume_unique=True)
    if len(extra) and not vectors.supports_remove or len(missing) > len(want) // 2:
        vectors = VectorIndex.empty(dim, config.faiss_index, hnsw_m=config.hnsw_m, ef_search=config.hnsw_ef_search)
        ids, vecs = store.all_vectors(dim)
        vectors.add(ids, vecs)
        return vectors, True
    vectors.remove(extra)
    for i in range(0, len(missing), 500):
        part = [int(x) for x in missing[i : i + 500]]
        got = store.vectors_for(part, dim)
        vectors.add(np.asarray(part, dtype=np.int64), np.stack([got[c] for c in part]))
    return vectors, True


def _save_repaired(path: Path, store: Store, vectors: VectorIndex, gen: int) -> None:
    """Save a FAISS index a reader repaired, if no writer is busy (else it just serves it)."""
    try:
        with try_write_lock(path) as locked:
            if not locked:
                log.info("another process is writing to %s; serving the repaired FAISS index from memory", path)
                return
            if store.generation != gen:
                return  # a writer committed since; its own save covers it
            vectors.save(path / vectors_filename(gen))
            _drop_old_vector_files(path, gen)
    except OSError as exc:
        log.warning("could not save the repaired FAISS index: %s", exc)


def _drop_old_vector_files(path: Path, keep_generation: int) -> None:
    from rag.lexical import lexical_filename

    keep = {vectors_filename(keep_generation), lexical_filename(keep_generation)}
    for p in [*path.glob("vectors-*.faiss"), *path.glob("lexical-*.npz")]:
        if p.name not in keep:
            p.unlink(missing_ok=True)


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
