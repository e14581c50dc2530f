"""The article and chunk store: SQLite, the index's source of truth.

It keeps every article's text, its chunks' offsets and their vectors. The FAISS
file is derived from it and stamped with the store's generation, so after a crash
between the two writes the FAISS index is rebuilt from the stored vectors (no
re-embedding) instead of being silently out of step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag import dedup
from rag.dates import PARSER_VERSION, date_key
from rag.errors import IndexCorruptError
from rag.filters import Filters  # noqa: F401  (imported from here by earlier code)
from rag.types import Article, Chunk, ChunkRow, Copy  # noqa: F401  (ChunkRow: as for Filters)

log = logging.getLogger(__name__)

DB_NAME = "store.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    date TEXT,
    date_key TEXT,
    source TEXT,
    url TEXT,
    heading TEXT,
    origin TEXT,
    checksum TEXT NOT NULL,
    added_at TEXT NOT NULL,
    lang TEXT,
    author TEXT
);
CREATE INDEX IF NOT EXISTS articles_date ON articles(date_key);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
-- AUTOINCREMENT: chunk ids are FAISS ids and must never be reused after a removal.
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    vector BLOB NOT NULL,
    -- analyzed terms for BM25, space-separated (rag.analysis.terms)
    terms TEXT
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
-- Sentence embeddings (re-ranking, answer evidence): written at ingestion for the
-- 'title' kind, else filled on first use.
CREATE TABLE IF NOT EXISTS sentence_vectors (
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    kind TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (article_id, start, end, kind)
);
"""


#: Articles with a date text the date parser could not read (kept, without a date key).
_UNDATED = "date_key IS NULL AND date IS NOT NULL AND trim(date) != ''"


class Store:
    """SQLite store of articles, chunks and vectors; one connection shared under a lock."""

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = Path(path)
        uri = f"file:{self.path}?mode={'ro' if read_only else 'rwc'}"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
                self._db.executescript(_SCHEMA)
                self._db.executescript(dedup.SCHEMA)
                self._migrate()
            self._db.execute("SELECT count(*) FROM meta").fetchone()
            # A store written before authors were kept, opened read-only, has no author column.
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(articles)")}
            self._article_cols = ("id, title, text, date, source, url, heading, origin, "
                                  + ("author" if "author" in cols else "NULL"))
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"cannot read the article store {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        # Sentence vectors are float16 in stores that say so; earlier stores hold float32.
        self._sentence_dtype = np.dtype(self.get_meta("sentence_dtype", "float32"))

    @property
    def sentence_dtype(self) -> np.dtype:
        """How sentence vectors are stored (they are always read back as float32)."""
        return self._sentence_dtype

    def set_sentence_dtype(self, name: str) -> None:
        """Store sentence vectors as ``name`` (float16 or float32) from now on; only for a new store.

        Raises:
            ValueError: an unknown type, or the store already holds sentence vectors of another.
        """
        dtype = np.dtype(name)
        if dtype not in (np.float16, np.float32):
            raise ValueError(f"sentence vectors are stored as float16 or float32, not {name!r}")
        with self._lock:
            if dtype != self._sentence_dtype and self._db.execute("SELECT 1 FROM sentence_vectors LIMIT 1").fetchone():
                raise ValueError(f"{self.path} holds {self._sentence_dtype} sentence vectors already")
            self.set_meta("sentence_dtype", dtype.name)
            self._sentence_dtype = dtype

    def _sentence_blob(self, vector) -> bytes:
        return np.asarray(vector, dtype=self._sentence_dtype).tobytes()

    def _sentence_vector(self, blob: bytes) -> np.ndarray:
        return np.frombuffer(blob, dtype=self._sentence_dtype).astype(np.float32)

    def _migrate(self) -> None:
        """Add columns that stores written by earlier versions lack (values filled lazily), and
        mark a new store's stories (:mod:`rag.dedup`) as complete."""
        for table, column in (("articles", "lang"), ("chunks", "terms"), ("articles", "author")):
            cols = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in cols:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        # A new (empty) store groups copies from its first article. One written before
        # stories existed is grouped by its next write or `rag index rebuild`, not here:
        # opening stays cheap and readers never write (stats says it is not grouped yet).
        if not self._db.execute("SELECT 1 FROM articles LIMIT 1").fetchone() and (
                self._db.execute("SELECT 1 FROM meta WHERE key = 'stories'").fetchone() is None):
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('stories', ?)",
                             (json.dumps(dedup.SETTINGS),))
        # Likewise a new store's dates are all read by this parser (see rekey_dates).
        if not self._db.execute("SELECT 1 FROM articles LIMIT 1").fetchone() and (
                self._db.execute("SELECT 1 FROM meta WHERE key = 'date_parser'").fetchone() is None):
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('date_parser', ?)",
                             (json.dumps(PARSER_VERSION),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- meta -------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation", 0))

    @contextlib.contextmanager
    def _immediate(self):
        """A write transaction (the caller holds ``self._lock``): committed when the block
        ends, rolled back when it raises (Ctrl-C included)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def snapshot(self):
        """Read several things from one committed state (a read transaction).

        Another process may commit at any moment; inside this block every read sees
        the same generation. Nested use joins the outer snapshot.
        """
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                if self._db.in_transaction:
                    self._db.execute("COMMIT")

    def chunk_ids(self) -> np.ndarray:
        """Every chunk id, sorted (what the FAISS index of this generation must hold)."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM chunks ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    # -- reads ------------------------------------------------------------
    def checksums(self, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                part = list(ids[i : i + 500])
                q = f"SELECT id, checksum FROM articles WHERE id IN ({','.join('?' * len(part))})"
                out.update(self._db.execute(q, part).fetchall())
        return out

    def counts(self) -> tuple[int, int]:
        with self._lock:
            a = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
            c = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(a), int(c)

    def language_counts(self) -> dict[str, int]:
        """How many articles each detected language has (articles of unknown language left out)."""
        with self._lock:
            rows = self._db.execute("SELECT lang, count(*) FROM articles WHERE lang IS NOT NULL GROUP BY lang").fetchall()
        return {str(lang): int(n) for lang, n in rows}

    def sentence_count(self, kind: str = "title") -> int:
        """How many sentence vectors of ``kind`` are stored."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM sentence_vectors WHERE kind = ?", (kind,)).fetchone()[0])

    def corpus_checksum(self) -> str:
        h = hashlib.sha256()
        with self._lock:
            for aid, cs in self._db.execute("SELECT id, checksum FROM articles ORDER BY id"):
                h.update(f"{aid}\x00{cs}\n".encode())
        return h.hexdigest()

    def get_article(self, article_id: str) -> Article | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._article_cols} FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        return Article(*row) if row else None

    def article_language(self, article_id: str) -> str | None:
        """The language detected when the article was indexed (None: unknown, or no such article)."""
        with self._lock:
            row = self._db.execute("SELECT lang FROM articles WHERE id = ?", (article_id,)).fetchone()
        return row[0] if row else None

    def list_articles(self, limit: int | None = None, offset: int = 0) -> list[dict]:
        q = (
            "SELECT a.id, a.title, a.date, a.source, a.url, a.origin, count(c.id) FROM articles a "
            "LEFT JOIN chunks c ON c.article_id = a.id GROUP BY a.id ORDER BY a.date_key DESC, a.title"
        )
        args: list = []
        if limit is not None:
            q += " LIMIT ? OFFSET ?"
            args = [limit, offset]
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        keys = ("id", "title", "date", "source", "url", "origin", "chunks")
        return [dict(zip(keys, r)) for r in rows]

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not chunk_ids:
            return {}
        q = (
            "SELECT c.id, c.article_id, c.position, c.start, c.end, "
            "substr(a.text, c.start + 1, c.end - c.start), a.title, a.date, a.source, a.url "
            f"FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({','.join('?' * len(chunk_ids))})"
        )
        with self._lock:
            rows = self._db.execute(q, list(chunk_ids)).fetchall()
        return {r[0]: ChunkRow(*r) for r in rows}

    def all_terms(self) -> tuple[np.ndarray, list[list[str]]]:
        """Every chunk id with its analyzed terms (computed from the text where missing)."""
        from rag.analysis import terms as analyze
        from rag.chunking import embedding_text

        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.terms, a.title, substr(a.text, c.start + 1, c.end - c.start), a.lang "
                "FROM chunks c JOIN articles a ON a.id = c.article_id ORDER BY c.id"
            ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        docs = [r[1].split() if r[1] is not None else analyze(embedding_text(r[2], r[3]), r[4]) for r in rows]
        return ids, docs

    def terms_for(self, chunk_ids: Sequence[int]) -> list[list[str]]:
        """The analyzed terms of ``chunk_ids`` (which must be stored), in their order: what a
        BM25 index lacking them reads, instead of every chunk's (:meth:`all_terms`)."""
        from rag.analysis import terms as analyze
        from rag.chunking import embedding_text

        found: dict[int, list[str]] = {}
        with self._lock:
            for i in range(0, len(chunk_ids), 500):
                part = [int(c) for c in chunk_ids[i : i + 500]]
                for cid, t, title, text, lang in self._db.execute(
                        "SELECT c.id, c.terms, a.title, substr(a.text, c.start + 1, c.end - c.start), a.lang "
                        f"FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({','.join('?' * len(part))})",
                        part):
                    found[int(cid)] = t.split() if t is not None else analyze(embedding_text(title, text), lang)
        return [found[int(c)] for c in chunk_ids]

    @property
    def terms_epoch(self) -> int:
        """Changes when every chunk's terms are analyzed again (:meth:`reanalyze`), so a BM25
        index caught up by chunk ids alone knows to rebuild instead."""
        return int(self.get_meta("terms_epoch", 0))

    def vectors_for(self, chunk_ids: Sequence[int], dim: int) -> dict[int, np.ndarray]:
        if not chunk_ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(chunk_ids))})", list(chunk_ids)
            ).fetchall()
        return {int(r[0]): np.frombuffer(r[1], dtype=np.float32, count=dim) for r in rows}

    def languages(self, chunk_ids: Sequence[int]) -> dict[int, str | None]:
        if not chunk_ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, a.lang FROM chunks c JOIN articles a ON a.id = c.article_id "
                f"WHERE c.id IN ({','.join('?' * len(chunk_ids))})", list(chunk_ids)
            ).fetchall()
        return {int(a): b for a, b in rows}

    def sentence_vectors(self, keys: Sequence[tuple[str, int, int]], kind: str) -> dict[tuple, np.ndarray]:
        """Cached sentence vectors for (article id, start, end) keys."""
        out: dict[tuple, np.ndarray] = {}
        by_article: dict[str, list] = {}
        for k in keys:
            by_article.setdefault(k[0], []).append(k)
        with self._lock:
            for aid, ks in by_article.items():
                for a, st, en, blob in self._db.execute(
                    "SELECT article_id, start, end, vector FROM sentence_vectors WHERE article_id = ? AND kind = ?",
                    (aid, kind),
                ):
                    out[(a, st, en)] = self._sentence_vector(blob)
        return {k: out[k] for k in keys if k in out}

    def sentence_vectors_within(self, spans: Sequence[tuple[str, int, int]], kind: str) -> list[np.ndarray | None]:
        """Per ``(article id, start, end)`` span, the stored vectors of the sentences inside it
        (one row each), or None when it has none stored."""
        out: list[np.ndarray | None] = []
        for rows in self.sentence_rows_within(spans, kind):
            out.append(np.stack([v for _, _, v in rows]) if rows else None)
        return out

    def sentence_rows_within(self, spans: Sequence[tuple[str, int, int]], kind: str
                             ) -> list[list[tuple[int, int, np.ndarray]]]:
        """Per ``(article id, start, end)`` span, its stored sentences as ``(start, end, vector)``
        in article order (empty when none is stored)."""
        if not spans:
            return []
        by_article: dict[str, list[tuple[int, int, bytes]]] = {}
        articles = sorted({a for a, _, _ in spans})
        with self._lock:
            for i in range(0, len(articles), 500):
                part = articles[i : i + 500]
                for a, st, en, blob in self._db.execute(
                    f"SELECT article_id, start, end, vector FROM sentence_vectors WHERE kind = ? "
                    f"AND article_id IN ({','.join('?' * len(part))}) ORDER BY article_id, start", [kind, *part],
                ):
                    by_article.setdefault(a, []).append((st, en, blob))
        return [[(st, en, self._sentence_vector(b)) for st, en, b in by_article.get(a, ()) if st >= s and en <= e]
                for a, s, e in spans]

    def save_sentence_vectors(self, items: Sequence[tuple[tuple[str, int, int], np.ndarray]], kind: str) -> None:
        """Add to the sentence cache. Best effort: a busy database only costs a recomputation later."""
        try:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR IGNORE INTO sentence_vectors(article_id, start, end, kind, vector) "
                    "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM articles WHERE id = ?)",
                    [(k[0], k[1], k[2], kind, self._sentence_blob(v), k[0]) for k, v in items],
                )
                self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            log.info("sentence vectors not cached on disk (%s)", exc)
            with self._lock:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    def chunk_spans(self, article_id: str) -> list[tuple[int, int]]:
        """The (start, end) offsets of an article's chunks, in order."""
        with self._lock:
            rows = self._db.execute("SELECT start, end FROM chunks WHERE article_id = ? ORDER BY position",
                                    (article_id,)).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def filtered_chunk_ids(self, filters: Filters) -> np.ndarray:
        where, args = [], []
        if filters.date_from:
            where.append("a.date_key >= ?")
            args.append(filters.date_from)
        if filters.date_to:
            where.append("a.date_key <= ?")
            args.append(filters.date_to)
        if filters.sources:
            where.append(f"a.source IN ({','.join('?' * len(filters.sources))})")
            args.extend(filters.sources)
        q = "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id"
        if where:
            q += " WHERE " + " AND ".join(where)
        with self._lock:
            return np.fromiter((r[0] for r in self._db.execute(q, args)), dtype=np.int64)

    def all_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Every chunk id and vector, for rebuilding the FAISS index without re-embedding."""
        with self._lock:
            rows = self._db.execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return ids, vecs

    def iter_articles(self, batch: int = 256) -> Iterable[Article]:
        last = ""
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {self._article_cols} FROM articles WHERE id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield Article(*r)
            last = rows[-1][0]

    # -- writes -----------------------------------------------------------
    def write(self, items: Sequence[tuple], now: str, *,
              sketches: "dict[str, dedup.Sketch] | None" = None) -> tuple[list[int], list[int]]:
        """Insert or replace articles with their chunks and vectors in one transaction.

        Each item is a :class:`rag.index.base.ArticleRecord` (a named tuple), or for older
        callers ``(article, chunks, vectors)`` or ``(article, chunks, vectors, terms, lang)``
        with ``terms`` one list of analyzed terms per chunk, optionally followed by
        ``sentences``: ``((start, end), vector)`` pairs saved as ``title`` sentence vectors.
        Each article is filed under its story (:mod:`rag.dedup`) in the same transaction;
        ``sketches`` (by article id) saves computing them under the lock.

        Returns:
            (chunk ids removed from replaced articles, chunk ids added), in order.
        """
        removed: list[int] = []
        added: list[int] = []
        with self._lock:
            with self._immediate():
                self._ensure_stories()
                for item in items:
                    article, chunks, vectors = item[:3]
                    terms = item[3] if len(item) > 3 else [None] * len(chunks)
                    lang = item[4] if len(item) > 4 else None
                    sentences = item[5] if len(item) > 5 else ()
                    dedup.ungroup(self._db, article.id)  # a replaced article is filed again below
                    removed += [r[0] for r in self._db.execute("SELECT id FROM chunks WHERE article_id = ?", (article.id,))]
                    self._db.execute("DELETE FROM chunks WHERE article_id = ?", (article.id,))
                    self._db.execute("DELETE FROM sentence_vectors WHERE article_id = ?", (article.id,))
                    self._db.execute(
                        "INSERT OR REPLACE INTO articles(id, title, text, date, date_key, source, url, heading, origin, checksum, added_at, lang, author) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (article.id, article.title, article.text, article.date, date_key(article.date, now), article.source,
                         article.url, article.heading, article.origin, article.checksum, now, lang, article.author),
                    )
                    for chunk, vec, t in zip(chunks, vectors, terms):
                        cur = self._db.execute(
                            "INSERT INTO chunks(article_id, position, start, end, vector, terms) VALUES (?, ?, ?, ?, ?, ?)",
                            (article.id, chunk.position, chunk.start, chunk.end, np.asarray(vec, dtype=np.float32).tobytes(),
                             " ".join(t) if t is not None else None),
                        )
                        added.append(int(cur.lastrowid))
                    self._db.executemany(
                        "INSERT OR IGNORE INTO sentence_vectors(article_id, start, end, kind, vector) VALUES (?, ?, ?, 'title', ?)",
                        [(article.id, st, en, self._sentence_blob(v)) for (st, en), v in sentences],
                    )
                    dedup.group(self._db, article.id, article.title, article.text, (sketches or {}).get(article.id))
                self._bump_generation()
        return removed, added

    def remove(self, article_id: str) -> list[int] | None:
        """Delete an article and its chunks; returns their chunk ids, or None if there was no such article."""
        with self._lock:
            with self._immediate():
                if not self._db.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone():
                    return None  # nothing written: the empty transaction commits
                ids = [r[0] for r in self._db.execute("SELECT id FROM chunks WHERE article_id = ?", (article_id,))]
                self._ensure_stories()
                dedup.ungroup(self._db, article_id)
                self._db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
                self._bump_generation()
        return ids

    # -- dates -------------------------------------------------------------
    @property
    def dates_current(self) -> bool:
        """Whether every article's date key was read by this version's date parser."""
        return self.get_meta("date_parser", 1) >= PARSER_VERSION

    def rekey_dates(self) -> int:
        """Read again the dates that have no key (written by an earlier, narrower parser),
        relative ones from when each article was indexed; no re-embedding. Returns how many
        now have one. The caller holds the writer lock."""
        with self._lock:
            rows = self._db.execute(f"SELECT id, date, added_at FROM articles WHERE {_UNDATED}").fetchall()
            keyed = [(k, i) for i, d, at in rows if (k := date_key(d, at))]
            with self._immediate():
                self._db.executemany("UPDATE articles SET date_key = ? WHERE id = ?", keyed)
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('date_parser', ?)",
                                 (json.dumps(PARSER_VERSION),))
        if keyed:
            log.info("read %d stored date(s) that had no key; %d still unread", len(keyed), len(rows) - len(keyed))
        return len(keyed)

    def date_keys(self) -> dict[str, str]:
        """Every article's date key (articles that have one), by id."""
        with self._lock:
            return dict(self._db.execute("SELECT id, date_key FROM articles WHERE date_key IS NOT NULL"))

    def keep_date_keys(self, keys: dict[str, str]) -> None:
        """Set these articles' date keys (a rebuild keeps the days that relative dates named
        when first indexed); ids not stored are ignored."""
        with self._lock:
            with self._immediate():
                self._db.executemany("UPDATE articles SET date_key = ? WHERE id = ?",
                                     [(k, i) for i, k in keys.items()])

    def undated_count(self) -> int:
        """Articles with a date text that could not be read (no date key)."""
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM articles WHERE {_UNDATED}").fetchone()[0]

    def sources(self) -> list[tuple[str, int]]:
        """The sources of the indexed articles with their article counts, most articles first."""
        with self._lock:
            rows = self._db.execute("SELECT source, count(*) FROM articles WHERE source IS NOT NULL "
                                    "AND source != '' GROUP BY source ORDER BY count(*) DESC, source").fetchall()
        return [(r[0], int(r[1])) for r in rows]

    def reanalyze(self, batch: int = 500) -> int:
        """Detect every article's language and analyze its chunks' BM25 terms again.

        For an index whose terms came from an older analyzer (``rag.analysis.ANALYZER``):
        texts, offsets and vectors stay as they are, so nothing is re-embedded. One
        transaction: an interruption leaves the old terms. Returns the articles done.
        """
        from rag.analysis import detect_language, terms as analyze
        from rag.chunking import embedding_text

        with self._lock:
            with self._immediate():
                ids = [r[0] for r in self._db.execute("SELECT id FROM articles ORDER BY id")]
                for i in range(0, len(ids), batch):
                    part = ids[i : i + batch]
                    marks = ",".join("?" * len(part))
                    arts = self._db.execute(f"SELECT id, title, text FROM articles WHERE id IN ({marks})", part).fetchall()
                    langs = {aid: detect_language(title + "\n" + text[:3000]) for aid, title, text in arts}
                    texts = {aid: (title, text) for aid, title, text in arts}
                    self._db.executemany("UPDATE articles SET lang = ? WHERE id = ?", [(v, k) for k, v in langs.items()])
                    rows = self._db.execute(
                        f"SELECT id, article_id, start, end FROM chunks WHERE article_id IN ({marks})", part).fetchall()
                    self._db.executemany("UPDATE chunks SET terms = ? WHERE id = ?", [
                        (" ".join(analyze(embedding_text(texts[aid][0], texts[aid][1][st:en]), langs[aid])), cid)
                        for cid, aid, st, en in rows])
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('terms_epoch', ?)",
                                 (json.dumps(self.terms_epoch + 1),))
                self._bump_generation()
        return len(ids)

    # -- stories (syndicated copies, rag.dedup) ---------------------------------------
    @property
    def stories_ready(self) -> bool:
        """Whether every article is filed under its story with the current settings."""
        return self.get_meta("stories") == dedup.SETTINGS

    def _ensure_stories(self) -> None:
        """Group every article when the store was written before stories (or with other
        settings); inside a write transaction, so the write that follows is grouped too."""
        if self.stories_ready:
            return
        log.warning("grouping the syndicated copies of the %s stored articles (once)", self.counts()[0])
        n = dedup.regroup_all(self._db)
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('stories', ?)", (json.dumps(dedup.SETTINGS),))
        log.info("grouped %s articles", n)

    def regroup(self) -> bool:
        """Group the stored articles if they are not (``rag index rebuild``); True when it did."""
        with self._lock:
            if self.stories_ready:
                return False
            with self._immediate():
                self._ensure_stories()
        return True

    def stories_of(self, article_ids: Sequence[str]) -> dict[str, str]:
        """Each article's story id (the id of its first article); an article without one is its own."""
        with self._lock:
            found = dedup.stories_of(self._db, article_ids)
        return {a: found.get(a, a) for a in article_ids}

    def copies(self, article_ids: Sequence[str]) -> dict[str, tuple[Copy, ...]]:
        """For each of ``article_ids`` that has any, the other articles of its story, in ingest order."""
        with self._lock:
            found = dedup.copies(self._db, article_ids)
        return {a: tuple(Copy(*row) for row in rows) for a, rows in found.items()}

    def story_counts(self) -> dict:
        """How many stories the articles make, and how many articles are copies in one."""
        if not self.stories_ready:
            return {"grouped": False, "stories": None, "copies": None}
        with self._lock:
            _, stories, copies = dedup.counts(self._db)
        return {"grouped": True, "stories": stories, "copies": copies}

    def _bump_generation(self) -> None:
        g = self.generation + 1
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)", (json.dumps(g),))

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
