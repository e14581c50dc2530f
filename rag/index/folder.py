"""The folder backend (the embedded default): manifest, article/chunk store and FAISS vectors, kept consistent.

Layout of ``index/``::

    manifest.json            how it was built (format, embedder, chunking, FAISS), counts, checksum
    store.sqlite             articles, chunk offsets, vectors and BM25 terms (the source of truth)
    vectors-<gen>.faiss      the FAISS index for store generation <gen>
    bm25-<gen>.npz           the BM25 postings for store generation <gen> (lexical-<gen>.npz before)

Several processes may use one folder. The store is the truth; the FAISS file is a
cache of it. A writer takes the folder's lock for each commit (not for a whole
ingest) and first brings its in-memory FAISS index up to the store's current state,
so what another process committed meanwhile is never overwritten. Readers never
take the lock: they load the latest FAISS file and catch it up with the store in
memory (the file may lag during an ingest), and every read checks the store's
generation, so a long-running app sees another process's commits without a restart.

:class:`FolderIndex` fills the roles of :mod:`rag.index.base` with :class:`rag.store.Store`
(documents, vectors, terms, sentence vectors), :class:`rag.vectors.VectorIndex` (dense
search) and :class:`rag.lexical.BM25Index` (lexical search); its on-disk format is
unchanged by the backend seam.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.analysis import ANALYZER
from rag.config import Config
from rag.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError
from rag.filters import Filters
from rag.fsutil import atomic_write_json, fsync_dir, try_write_lock, write_lock
from rag.index.base import ArticleRecord
from rag.index.core import BuildSettings, Index, Progress, _dim_of, _make_embedder, _now
from rag.store import DB_NAME, Store
from rag.types import Article, ChunkRow, Copy
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


class FolderIndex(Index):
    """An index folder. Open with :meth:`Index.open` or :meth:`Index.create`.

    One process commits at a time (a lock file guards each commit); any number may
    read, without the lock. Writers and readers alike start from the store's current
    state, whatever other processes committed.
    """

    def __init__(self, path: Path, config: Config, store: Store, vectors: VectorIndex, manifest: dict,
                 vectors_generation: int | None = None):
        super().__init__(config)
        self.path = path
        #: the folder's SQLite store (this backend's own; layers above use the Index methods)
        self.store = store
        self._vectors = vectors
        # The store generation the in-memory FAISS index mirrors.
        self._vectors_gen = store.generation if vectors_generation is None else vectors_generation
        self.manifest = manifest
        #: seconds a write waits for another process's commit (see LOCK_WAIT_SECONDS)
        self.lock_wait = LOCK_WAIT_SECONDS
        self._last_persist = time.monotonic()
        self._lexical = None
        self._lexical_gen = -1
        # The last filters' chunk ids and the last query's BM25 scores, per store generation:
        # the dense and the lexical search of one question share them.
        self._allowed: tuple[int, Filters, np.ndarray] | None = None
        self._bm25: tuple[object, tuple, np.ndarray] | None = None

    # -- opening ----------------------------------------------------------
    @classmethod
    def exists(cls, path: str | Path) -> bool:
        """Whether an index is at ``path`` (after finishing or undoing a rebuild that a crash
        interrupted, see :func:`recover_rebuild`)."""
        recover_rebuild(Path(path))
        return (Path(path) / MANIFEST).is_file() and (Path(path) / DB_NAME).is_file()

    @classmethod
    def create(cls, path: str | Path, config: Config | None = None) -> "FolderIndex":
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
    def open(cls, path: str | Path, config: Config | None = None, *, check_format: bool = True) -> "FolderIndex":
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

    @property
    def vectors_dim(self) -> int:
        return int(self._vectors.faiss_index.d)

    # -- writing (IndexBackend) ---------------------------------------------
    def write(self, records: Sequence[ArticleRecord], *, sketches: dict | None = None) -> list[int]:
        """Store the records in one commit (see :meth:`rag.store.Store.write`); the new chunk ids."""
        vecs = [r.vectors for r in records if len(r.chunks)]
        vecs = np.concatenate(vecs) if vecs else np.zeros((0, self.vectors_dim), np.float32)
        with self._writing():
            before = self.store.generation
            removed, added = self.store.write(records, _now(), sketches=sketches)
            self._apply(removed, np.asarray(added, dtype=np.int64), vecs)
            self._vectors_gen = self.store.generation
            self._apply_lexical(before, removed, added, [t for r in records for t in r.terms])
            if time.monotonic() - self._last_persist > PERSIST_EVERY_SECONDS:
                self._persist()
        return added

    def flush(self) -> None:
        self._save_files()

    def _apply_lexical(self, before: int, removed: Sequence[int], added: Sequence[int],
                       terms: Sequence[Sequence[str]]) -> None:
        """Mirror a commit in the in-memory BM25 index when it mirrored the state before it
        (else the next read catches it up from the store)."""
        if self._lexical is None or self._lexical_gen != before:
            return
        try:
            self._lexical.remove(removed)
            self._lexical.add(added, [list(t) for t in terms])
        except ValueError:  # ids out of order: start again from the store
            self._lexical = None
            return
        self._lexical_gen = self.store.generation

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
            before = self.store.generation
            ids = self.store.remove(article_id)
            if ids is None:
                return False
            self._apply(ids, np.zeros(0, np.int64), np.zeros((0, self.vectors_dim), np.float32))
            self._vectors_gen = self.store.generation
            self._apply_lexical(before, ids, [], [])
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
        """The BM25 index of the chunks, caught up with the store's current generation.

        This object's own commits are applied to it as they are written (:meth:`write`);
        another process's are caught up by reading the terms of the chunks it lacks. Only
        a first open without a usable file, a re-analysis, or a catch-up larger than half
        the index reads every chunk's terms.
        """
        with self._lock, self.store.snapshot():
            gen = self.store.generation
            if self._lexical is None or self._lexical_gen != gen:
                self._lexical = _synced_lexical(self._lexical, self.path, self.store)
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

    # -- reading (IndexBackend) -----------------------------------------------
    @property
    def generation(self) -> int:
        return self.store.generation

    @contextlib.contextmanager
    def reading(self):
        """Reads inside see one state: this process's writes wait (other processes' commits
        are caught up by the next read after the block)."""
        with self._lock:
            yield

    def _allowed_ids(self, filters: Filters | None) -> np.ndarray | None:
        """The chunk ids ``filters`` keep (None: no filter), cached for the last filters."""
        if filters is None or filters.empty:
            return None
        gen = self.store.generation
        cached = self._allowed
        if cached is None or cached[0] != gen or cached[1] != filters:
            cached = self._allowed = (gen, filters, self.store.filtered_chunk_ids(filters))
        return cached[2]

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None
                     ) -> tuple[list[int], list[float]]:
        allowed = self._allowed_ids(filters)
        if allowed is not None and not len(allowed):
            return [], []
        return self.vectors.search(vector, k, allowed)

    def _bm25_all(self, terms: Sequence[str]):
        """The BM25 index and the score of every chunk for ``terms`` (in its order), cached
        for the last query: the search and the fusion of one question read it twice."""
        lexical = self.lexical
        key = tuple(terms)
        cached = self._bm25
        if cached is None or cached[0] is not lexical or cached[1] != (lexical.version, key):
            cached = self._bm25 = (lexical, (lexical.version, key), lexical.scores(key))
        return cached[0], cached[2]

    def lexical_search(self, terms: Sequence[str], k: int, filters: Filters | None = None
                       ) -> tuple[list[int], list[float]]:
        allowed = self._allowed_ids(filters)
        if allowed is not None and not len(allowed):
            return [], []
        with self._lock:
            lexical, all_scores = self._bm25_all(terms)
            ids, scores = lexical.search(terms, k, allowed, scores=all_scores)
        return [int(i) for i in ids], [float(x) for x in scores]

    def bm25_scores(self, terms: Sequence[str], chunk_ids: Sequence[int]) -> np.ndarray:
        with self._lock:
            lexical, all_scores = self._bm25_all(terms)
            return lexical.scores_of(all_scores, chunk_ids)

    def term_coverage(self, terms: Sequence[str]) -> float:
        return self.lexical.coverage(terms)

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return self.store.vectors_for(list(chunk_ids), self.vectors_dim)

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        return self.store.chunk_rows(list(chunk_ids))

    def chunk_spans(self, article_id: str) -> list[tuple[int, int]]:
        return self.store.chunk_spans(article_id)

    def chunk_languages(self, chunk_ids: Sequence[int]) -> dict[int, str | None]:
        return self.store.languages(list(chunk_ids))

    def sentence_vectors(self, keys: Sequence[tuple[str, int, int]], kind: str) -> dict[tuple, np.ndarray]:
        return self.store.sentence_vectors(keys, kind)

    def save_sentence_vectors(self, items: Sequence[tuple[tuple[str, int, int], np.ndarray]], kind: str) -> None:
        self.store.save_sentence_vectors(items, kind)

    def sentence_rows_within(self, spans: Sequence[tuple[str, int, int]], kind: str
                             ) -> list[list[tuple[int, int, np.ndarray]]]:
        return self.store.sentence_rows_within(spans, kind)

    def get_article(self, article_id: str) -> Article | None:
        return self.store.get_article(article_id)

    def article_language(self, article_id: str) -> str | None:
        return self.store.article_language(article_id)

    def articles(self) -> list[dict]:
        return self.store.list_articles()

    def iter_articles(self) -> Iterable[Article]:
        return self.store.iter_articles()

    def checksums(self, article_ids: Sequence[str]) -> dict[str, str]:
        return self.store.checksums(list(article_ids))

    def counts(self) -> tuple[int, int]:
        return self.store.counts()

    def sources(self) -> list[tuple[str, int]]:
        return self.store.sources()

    def language_counts(self) -> dict[str, int]:
        return self.store.language_counts()

    def stories_of(self, article_ids: Sequence[str]) -> dict[str, str]:
        return self.store.stories_of(article_ids)

    def copies(self, article_ids: Sequence[str]) -> dict[str, tuple[Copy, ...]]:
        return self.store.copies(article_ids)

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

    @classmethod
    def rebuild(cls, path: str | Path, config: Config, *, progress: Progress | None = None) -> "FolderIndex":
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


def _synced_lexical(lexical, path: Path, store: Store):
    """``lexical`` (or the latest saved BM25 file) made to hold exactly the store's chunks
    (call inside ``store.snapshot()``), reading only the terms of the chunks it lacks.

    Built from every chunk's terms when there is nothing usable to start from, when the
    terms were re-analyzed since (the store's terms epoch), or when more than half is missing.
    """
    from rag.lexical import BM25Index, latest_lexical_file

    epoch = store.terms_epoch
    if lexical is not None and lexical.epoch != epoch:
        lexical = None
    if lexical is None:
        found = latest_lexical_file(path)
        if found is not None:
            try:
                lexical = BM25Index.load(found[1])
            except ValueError as exc:
                log.info("%s; rebuilding it from the stored terms", exc)
            if lexical is not None and lexical.epoch != epoch:
                lexical = None
    want = store.chunk_ids()
    if lexical is not None:
        have = lexical.live_ids()
        if np.array_equal(want, have):
            return lexical
        extra = np.setdiff1d(have, want, assume_unique=True)
        missing = np.setdiff1d(want, have, assume_unique=True)
        rest = np.setdiff1d(have, extra, assume_unique=True)
        if len(missing) <= len(want) // 2 and not (len(missing) and len(rest) and missing.min() <= rest.max()):
            lexical.remove(extra)
            lexical.add(missing, store.terms_for(missing.tolist()))
            return lexical
    ids, docs = store.all_terms()
    lexical = BM25Index.build(ids, docs)
    lexical.epoch = epoch
    return lexical


def _drop_old_vector_files(path: Path, keep_generation: int) -> None:
    from rag.lexical import lexical_filename

    keep = {vectors_filename(keep_generation), lexical_filename(keep_generation)}
    # lexical-*.npz: the BM25 files of the first format (precomputed weights), not read any more
    for p in [*path.glob("vectors-*.faiss"), *path.glob("lexical-*.npz"), *path.glob("bm25-*.npz")]:
        if p.name not in keep:
            p.unlink(missing_ok=True)
