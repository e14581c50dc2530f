"""The Milvus backend: Milvus Lite for a ``.db`` location, a Milvus server for ``milvus://``.

``--index archive.db`` keeps the index in a Milvus Lite folder (``pip install
'rag-news[milvus]'``); ``--index milvus://HOST:19530/COLLECTION`` uses a Milvus server or
Zilliz cluster, its token (``user:password`` or an API key) read from ``RAG_MILVUS_TOKEN``.
pymilvus is used directly (imported only when such a location is opened): the
llama-index Milvus store pins an old pymilvus and hides chunk offsets and the BM25 scores
of given candidates, which our fusion needs.

Four collections per index, named after it:

``<name>_chunks``
    the ANN collection: one row per chunk, with its dense vector (FLAT on Lite, HNSW on a
    server), the scalar fields the filters are pushed down to (``date_key`` as an integer
    ``YYYYMMDD``, -1 when unknown; ``source``; ``article_id``; ``lang``), the chunk's text
    and article metadata (so a hit needs no second read), and server-side BM25: a ``terms``
    text field holding OUR analysed terms (:func:`rag.analysis.terms`, joined by spaces)
    feeding Milvus's ``BM25`` function into a sparse field. The analysis stays ours because
    Milvus Lite ignores stemming and folding filters: French must behave the same
    everywhere. Terms that are not plain ``[a-z0-9]`` are spelt in hex so that Milvus's
    tokenizer can neither split nor fold them.
``<name>_articles``
    full texts (in parts of :data:`TEXT_PART` characters: a VARCHAR holds 64 KiB) and the
    articles' metadata, read by article id, never searched by ANN.
``<name>_sentences``
    sentence vectors by ``(kind, article, start, end)``, read by article id.
``<name>_meta``
    the build settings and a write generation.

Chunk ids are deterministic (a hash of article id and position), so a retried or
parallel write of the same article is idempotent. Reads right after this object wrote use
``Strong`` consistency; otherwise the collection's default (``Bounded``) serves. Not
supported here (said by the methods): grouping syndicated copies (:mod:`rag.dedup` works
on the folder's SQLite), ``rag index rebuild`` in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.config import Config
from rag.dates import date_key as parse_date_key
from rag.errors import ConfigError, IndexLockedError, IndexMismatchError, IndexNotFoundError, InputError
from rag.filters import Filters
from rag.index.base import ArticleRecord, iter_batches
from rag.index.core import BuildSettings, Index, _dim_of, _make_embedder, _now
from rag.types import Article, ChunkRow, Copy

log = logging.getLogger(__name__)

#: The environment variable holding a Milvus server's token.
TOKEN_ENV = "RAG_MILVUS_TOKEN"
#: Characters of article text per row of the articles collection (a VARCHAR holds 65,535 bytes).
TEXT_PART = 16_000
_VARCHAR = 65_535
_COLLECTIONS = ("chunks", "articles", "sentences", "meta")
_PLAIN_TERM = re.compile(r"^[a-z0-9]+$")
_NAME = re.compile(r"[^A-Za-z0-9_]")
#: At most this many ids in one ``in [...]`` filter, and rows in one insert.
_BATCH = 1000
#: Milvus's largest ``limit`` (top-k and query page).
_MAX_LIMIT = 16_384
#: Rows per page when listing a whole collection on Milvus Lite.
_PAGE = 5000


def parse_location(location: str | Path) -> tuple[str, str, str | None, bool]:
    """``(uri, collection prefix, token, is_lite)`` for an index location.

    ``x.db`` is a Milvus Lite folder (prefix ``rag_news``); ``milvus://HOST:PORT/NAME`` a
    server (``milvus:/HOST...``, what a ``Path`` makes of it, is read the same).

    Raises:
        InputError: a ``milvus://`` location without a host or collection name.
    """
    loc = str(location)
    if loc.startswith("milvus:"):
        rest = loc[len("milvus:"):].lstrip("/")
        host, _, name = rest.partition("/")
        name = name.strip("/")
        if not host or not name:
            raise InputError(f"a Milvus index is milvus://HOST:PORT/COLLECTION, got {loc!r}")
        if ":" not in host:
            host += ":19530"
        return f"http://{host}", _NAME.sub("_", name), os.environ.get(TOKEN_ENV) or None, False
    return str(Path(loc).expanduser()), "rag_news", None, True


def chunk_id(article_id: str, position: int) -> int:
    """A chunk's id: 63 bits of a hash of its article id and position (the same in every process)."""
    digest = hashlib.blake2b(f"{article_id}\x00{position}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def bm25_text(terms: Sequence[str]) -> str:
    """Analysed terms as the text Milvus's BM25 function reads: one token each, whatever its characters."""
    return " ".join(t if _PLAIN_TERM.match(t) else "x" + t.encode("utf-8").hex() for t in terms)


def _int_date(key: str | None) -> int:
    return int(key.replace("-", "")) if key else -1


def _clip(text: str | None, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (a VARCHAR's bound)."""
    text = text or ""
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def filter_expression(filters: Filters | None) -> str:
    """The Milvus boolean expression for ``filters`` ("" for none). An article whose date
    could not be read (``date_key`` -1) is left out by any date bound, as on the folder backend."""
    if filters is None or filters.empty:
        return ""
    parts = []
    if filters.date_from or filters.date_to:
        parts.append(f"date_key >= {_int_date(filters.date_from) if filters.date_from else 0}")
    if filters.date_to:
        parts.append(f"date_key <= {_int_date(filters.date_to)}")
    if filters.sources:
        parts.append(f"source in [{', '.join(_quote(s) for s in filters.sources)}]")
    return " and ".join(parts)


class MilvusIndex(Index):
    """An index in Milvus (Lite or a server): see the module's docstring for the layout."""

    def __init__(self, location: str | Path, config: Config, client, prefix: str, lite: bool, dim: int,
                 meta: dict):
        super().__init__(config)
        self.path = Path(location)
        self.location = str(location)
        self.manifest = meta
        self._client = client
        self._lite = lite
        self._dim = dim
        self._chunks = f"{prefix}_chunks"
        self._articles = f"{prefix}_articles"
        self._sentences = f"{prefix}_sentences"
        self._meta = f"{prefix}_meta"
        self._wrote = False

    # -- opening ------------------------------------------------------------
    @staticmethod
    def _connect(location: str | Path):
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # the optional extra
            raise ConfigError(f"the index {location} is a Milvus one: install the extra with "
                              "`pip install 'rag-news[milvus]'` (pymilvus, milvus-lite)") from exc
        from pymilvus.exceptions import MilvusException

        uri, prefix, token, lite = parse_location(location)
        if lite:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            client = MilvusClient(uri=uri, token=token or "")
        except MilvusException as exc:
            if lite:  # its folder is locked by the process that opened it
                raise IndexLockedError(f"{location} is open in another process: Milvus Lite serves one process at "
                                       "a time (a Milvus server, milvus://HOST:PORT/NAME, serves several)") from exc
            raise IndexNotFoundError(f"cannot reach the Milvus server of {location}: {exc}") from exc
        return client, prefix, lite

    @classmethod
    def exists(cls, path: str | Path) -> bool:
        uri, prefix, _, lite = parse_location(path)
        if lite and not Path(uri).exists():
            return False  # without creating the Lite folder just to look
        client, prefix, _ = cls._connect(path)
        try:
            return bool(client.has_collection(f"{prefix}_chunks") and client.has_collection(f"{prefix}_meta"))
        finally:
            client.close()

    @classmethod
    def create(cls, path: str | Path, config: Config | None = None) -> "MilvusIndex":
        config = (config or Config()).with_(index_dir=Path(path))
        if cls.exists(path):
            raise IndexMismatchError(f"an index already exists at {path}; open it, or drop its collections first")
        embedder = _make_embedder(config)
        dim = _dim_of(embedder)
        client, prefix, lite = cls._connect(path)
        with _quiet_lite_server(lite):
            _create_collections(client, prefix, dim, lite, config)
        settings = BuildSettings.from_config(config)
        meta = {"settings": settings.__dict__, "dim": dim, "embedder": {"name": settings.embedder, **embedder.info()},
                "created": _now(), "generation": 0}
        index = cls(path, config, client, prefix, lite, dim, meta)
        index._embedder = embedder
        index._set_meta(meta)
        log.info("created Milvus index at %s (%s)", path, settings.describe())
        return index

    @classmethod
    def open(cls, path: str | Path, config: Config | None = None, *, check_format: bool = True) -> "MilvusIndex":
        if not cls.exists(path):
            raise IndexNotFoundError(f"no index at {path}: build one with `rag index add ARTICLES... --index {path}`")
        client, prefix, lite = cls._connect(path)
        for name in _COLLECTIONS:  # a new process finds them released
            client.load_collection(f"{prefix}_{name}")
        rows = client.query(f"{prefix}_meta", filter='key == "meta"', output_fields=["value"],
                            consistency_level="Strong")
        meta = json.loads(rows[0]["value"]) if rows else {}
        built = BuildSettings(**meta["settings"])
        if config is not None and BuildSettings.from_config(config) != built:
            client.close()
            raise IndexMismatchError(f"the index at {path} was built with {built.describe()}, but "
                                     f"{BuildSettings.from_config(config).describe()} was asked for: "
                                     "leave the settings out to use it as it was built")
        base = config or Config(index_dir=Path(path))
        config = base.with_(index_dir=Path(path), embedder=built.embedder, chunk_size=built.chunk_size,
                            chunk_overlap=built.chunk_overlap, faiss_index=built.faiss_index, hnsw_m=built.hnsw_m,
                            pool_sentences=built.pool_sentences)
        return cls(path, config, client, prefix, lite, int(meta["dim"]), meta)

    def close(self) -> None:
        from pymilvus.exceptions import MilvusException

        with contextlib.suppress(MilvusException):  # already closed, or the server went away
            self._client.close()

    # -- helpers ---------------------------------------------------------------
    def _level(self) -> str:
        """``Strong`` once this object wrote (read-after-write), else the collection's default."""
        return "Strong" if self._wrote else "Bounded"

    def _query(self, collection: str, expr: str, fields: list[str], *, limit: int | None = None) -> list[dict]:
        if limit is not None:
            return self._client.query(collection, filter=expr, output_fields=fields, limit=limit,
                                      consistency_level=self._level())
        out: list[dict] = []
        if self._lite:
            # Milvus Lite has no server timestamp for a query iterator (its gRPC side logs an
            # error at each one); pages by offset are exact on a local file.
            while True:
                page = self._client.query(collection, filter=expr, output_fields=fields, limit=_PAGE,
                                          offset=len(out), consistency_level=self._level())
                out.extend(page)
                if len(page) < _PAGE:
                    return out
        it = self._client.query_iterator(collection, filter=expr, output_fields=fields, batch_size=1000,
                                         consistency_level=self._level())
        try:
            while batch := it.next():
                out.extend(batch)
        finally:
            it.close()
        return out

    def _set_meta(self, meta: dict) -> None:
        self._client.upsert(self._meta, [{"key": "meta", "value": json.dumps(meta), "dummy": [0.0, 0.0]}])
        self.manifest = meta

    # -- writing ---------------------------------------------------------------
    def write(self, records: Sequence[ArticleRecord], *, sketches: dict | None = None) -> list[int]:
        """Replace the records' articles (chunks, texts, sentence vectors); the new chunk ids.

        Deletes then inserts, per batch: a crash in between leaves the article absent (its
        checksum with it), so the next ingest writes it again."""
        if not records:
            return []
        now = _now()
        with self._lock:
            ids = [r.article.id for r in records]
            for part in iter_batches(ids, _BATCH):
                expr = f"article_id in [{', '.join(_quote(a) for a in part)}]"
                for coll in (self._chunks, self._articles, self._sentences):
                    self._client.delete(coll, filter=expr)
            chunk_rows, article_rows, sentence_rows, added = [], [], [], []
            for r in records:
                a = r.article
                key = parse_date_key(a.date, now)
                dk = _int_date(key)
                for c, vec, terms in zip(r.chunks, r.vectors, r.terms):
                    cid = chunk_id(a.id, c.position)
                    added.append(cid)
                    chunk_rows.append({
                        "id": cid, "article_id": _clip(a.id, 512), "position": int(c.position), "start": int(c.start),
                        "end": int(c.end), "text": _clip(a.text[c.start:c.end], _VARCHAR),
                        "title": _clip(a.title, 8192), "date": _clip(a.date, 256), "date_key": dk,
                        "source": _clip(a.source, 1024), "url": _clip(a.url, 8192), "lang": r.language or "",
                        "terms": _clip(bm25_text(terms), _VARCHAR),
                        "vector": np.asarray(vec, dtype=np.float32).tolist()})
                meta = {"title": a.title, "date": a.date, "source": a.source, "url": a.url, "heading": a.heading,
                        "origin": a.origin, "author": a.author, "added_at": now, "chunks": len(r.chunks)}
                parts = [a.text[i : i + TEXT_PART] for i in range(0, len(a.text), TEXT_PART)] or [""]
                for n, text in enumerate(parts):
                    article_rows.append({
                        "key": _clip(f"{a.id}\x1f{n}", _VARCHAR), "article_id": _clip(a.id, 512), "part": n,
                        "text": text, "meta": json.dumps(meta if n == 0 else {}, ensure_ascii=False),
                        "checksum": a.checksum, "lang": r.language or "", "source": _clip(a.source, 1024),
                        "date_key": dk, "title": _clip(a.title, 8192), "dummy": [0.0, 0.0]})
                for (st, en), vec in r.sentences:
                    sentence_rows.append(self._sentence_row(a.id, int(st), int(en), "title", vec))
            for coll, rows in ((self._chunks, chunk_rows), (self._articles, article_rows),
                               (self._sentences, sentence_rows)):
                for part in iter_batches(rows, _BATCH):
                    self._client.insert(coll, list(part))
            self._bump()
        return added

    def _sentence_row(self, article_id: str, start: int, end: int, kind: str, vector) -> dict:
        return {"key": _clip(f"{kind}\x1f{article_id}\x1f{start}\x1f{end}", _VARCHAR), "article_id": _clip(article_id, 512),
                "kind": kind, "start": start, "end": end, "vector": np.asarray(vector, dtype=np.float32).tolist()}

    def _bump(self) -> None:
        self._wrote = True
        meta = dict(self.manifest)
        meta["generation"] = int(meta.get("generation", 0)) + 1
        meta["updated"] = _now()
        self._set_meta(meta)

    def remove(self, article_id: str) -> bool:
        with self._lock:
            if not self.checksums([article_id]):
                return False
            expr = f"article_id == {_quote(article_id)}"
            for coll in (self._chunks, self._articles, self._sentences):
                self._client.delete(coll, filter=expr)
            self._bump()
        return True

    def flush(self) -> None:
        """Seal a server's growing segments at the end of an ingest (Milvus Lite persists each write)."""
        if not self._lite:
            for coll in (self._chunks, self._articles, self._sentences):
                self._client.flush(coll)

    # -- reading -----------------------------------------------------------------
    @property
    def generation(self) -> int:
        rows = self._client.query(self._meta, filter='key == "meta"', output_fields=["value"],
                                  consistency_level=self._level())
        return int(json.loads(rows[0]["value"]).get("generation", 0)) if rows else 0

    @property
    def vectors_dim(self) -> int:
        return self._dim

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None
                     ) -> tuple[list[int], list[float]]:
        if k <= 0:
            return [], []
        params = {"metric_type": "IP"}
        if not self._lite:
            params["params"] = {"ef": max(self.config.hnsw_ef_search, k)}
        res = self._client.search(self._chunks, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                  anns_field="vector", limit=min(k, _MAX_LIMIT), filter=filter_expression(filters),
                                  search_params=params, output_fields=["id"], consistency_level=self._level())
        hits = res[0] if res else []
        return [int(h["id"]) for h in hits], [float(h["distance"]) for h in hits]

    def _bm25(self, queries: list[str], limit: int, expr: str) -> list[list[tuple[int, float]]]:
        """Per query text, its chunks with a BM25 score > 0, best first (Milvus Lite returns
        the scores negated: turned back here, only their order is relied on)."""
        if not queries:
            return []
        res = self._client.search(self._chunks, data=queries, anns_field="sparse", limit=min(limit, _MAX_LIMIT),
                                  filter=expr, search_params={"metric_type": "BM25"}, output_fields=["id"],
                                  consistency_level=self._level())
        sign = -1.0 if self._lite else 1.0
        return [[(int(h["id"]), sign * float(h["distance"])) for h in hits] for hits in res]

    def lexical_search(self, terms: Sequence[str], k: int, filters: Filters | None = None
                       ) -> tuple[list[int], list[float]]:
        if not terms or k <= 0:
            return [], []
        hits = [(c, s) for c, s in self._bm25([bm25_text(terms)], k, filter_expression(filters))[0] if s > 0]
        return [c for c, _ in hits], [s for _, s in hits]

    def bm25_scores(self, terms: Sequence[str], chunk_ids: Sequence[int]) -> np.ndarray:
        found: dict[int, float] = {}
        if terms:
            for part in iter_batches([int(c) for c in chunk_ids], _BATCH):
                expr = f"id in [{', '.join(str(c) for c in part)}]"
                found.update(self._bm25([bm25_text(terms)], len(part), expr)[0])
        return np.asarray([max(found.get(int(c), 0.0), 0.0) for c in chunk_ids], dtype=np.float32)

    def term_coverage(self, terms: Sequence[str]) -> float:
        if not terms:
            return 0.0
        unique = list(dict.fromkeys(terms))
        known = {t for t, hits in zip(unique, self._bm25([bm25_text([t]) for t in unique], 1, "")) if hits}
        return sum(t in known for t in terms) / len(terms)

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for part in iter_batches([int(c) for c in chunk_ids], _BATCH):
            for r in self._query(self._chunks, f"id in [{', '.join(map(str, part))}]", ["id", "vector"],
                                 limit=len(part)):
                out[int(r["id"])] = np.asarray(r["vector"], dtype=np.float32)
        return out

    _ROW_FIELDS = ["id", "article_id", "position", "start", "end", "text", "title", "date", "source", "url", "lang"]

    def _chunk_dicts(self, chunk_ids: Sequence[int]) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for part in iter_batches([int(c) for c in chunk_ids], _BATCH):
            for r in self._query(self._chunks, f"id in [{', '.join(map(str, part))}]", self._ROW_FIELDS,
                                 limit=len(part)):
                out[int(r["id"])] = r
        return out

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        return {c: ChunkRow(c, r["article_id"], int(r["position"]), int(r["start"]), int(r["end"]), r["text"],
                            r["title"], r["date"] or None, r["source"] or None, r["url"] or None)
                for c, r in self._chunk_dicts(chunk_ids).items()}

    def chunk_languages(self, chunk_ids: Sequence[int]) -> dict[int, str | None]:
        return {c: r["lang"] or None for c, r in self._chunk_dicts(chunk_ids).items()}

    def chunk_spans(self, article_id: str) -> list[tuple[int, int]]:
        rows = self._query(self._chunks, f"article_id == {_quote(article_id)}", ["position", "start", "end"])
        return [(int(r["start"]), int(r["end"])) for r in sorted(rows, key=lambda r: r["position"])]

    def _sentence_rows(self, article_ids: Sequence[str], kind: str) -> dict[str, list[tuple[int, int, np.ndarray]]]:
        out: dict[str, list[tuple[int, int, np.ndarray]]] = {}
        for part in iter_batches(sorted(set(article_ids)), 100):
            expr = f"kind == {_quote(kind)} and article_id in [{', '.join(_quote(a) for a in part)}]"
            for r in self._query(self._sentences, expr, ["article_id", "start", "end", "vector"]):
                out.setdefault(r["article_id"], []).append(
                    (int(r["start"]), int(r["end"]), np.asarray(r["vector"], dtype=np.float32)))
        for rows in out.values():
            rows.sort(key=lambda x: (x[0], x[1]))
        return out

    def sentence_vectors(self, keys: Sequence[tuple[str, int, int]], kind: str) -> dict[tuple, np.ndarray]:
        by_article = self._sentence_rows([k[0] for k in keys], kind)
        found = {(a, st, en): v for a, rows in by_article.items() for st, en, v in rows}
        return {k: found[k] for k in keys if k in found}

    def save_sentence_vectors(self, items: Sequence[tuple[tuple[str, int, int], np.ndarray]], kind: str) -> None:
        from pymilvus.exceptions import MilvusException

        try:
            stored = self.checksums(list({k[0] for k, _ in items}))
            rows = [self._sentence_row(k[0], int(k[1]), int(k[2]), kind, v) for k, v in items if k[0] in stored]
            for part in iter_batches(rows, _BATCH):
                self._client.upsert(self._sentences, list(part))
        except MilvusException as exc:  # best effort, like the folder's cache: recomputed next time
            log.info("sentence vectors not cached in Milvus (%s)", exc)

    def sentence_rows_within(self, spans: Sequence[tuple[str, int, int]], kind: str
                             ) -> list[list[tuple[int, int, np.ndarray]]]:
        if not spans:
            return []
        by_article = self._sentence_rows([a for a, _, _ in spans], kind)
        return [[(st, en, v) for st, en, v in by_article.get(a, ()) if st >= s and en <= e] for a, s, e in spans]

    _ARTICLE_FIELDS = ["article_id", "part", "text", "meta", "lang", "checksum"]

    def get_article(self, article_id: str) -> Article | None:
        rows = sorted(self._query(self._articles, f"article_id == {_quote(article_id)}", self._ARTICLE_FIELDS),
                      key=lambda r: r["part"])
        if not rows:
            return None
        m = json.loads(rows[0]["meta"])
        return Article(article_id, m["title"], "".join(r["text"] for r in rows), m.get("date"), m.get("source"),
                       m.get("url"), m.get("heading"), m.get("origin"), m.get("author"))

    def article_language(self, article_id: str) -> str | None:
        rows = self._query(self._articles, f"article_id == {_quote(article_id)} and part == 0", ["lang"], limit=1)
        return (rows[0]["lang"] or None) if rows else None

    def _heads(self, fields: list[str]) -> list[dict]:
        return self._query(self._articles, "part == 0", fields)

    def articles(self) -> list[dict]:
        rows = self._heads(["article_id", "meta", "date_key", "title"])
        rows.sort(key=lambda r: r["title"])
        rows.sort(key=lambda r: r["date_key"], reverse=True)  # newest first, undated last, as on the folder
        out = []
        for r in rows:
            m = json.loads(r["meta"])
            out.append({"id": r["article_id"], "title": m["title"], "date": m.get("date"), "source": m.get("source"),
                        "url": m.get("url"), "origin": m.get("origin"), "chunks": m.get("chunks", 0)})
        return out

    def iter_articles(self) -> Iterable[Article]:
        for r in sorted(self._heads(["article_id"]), key=lambda r: r["article_id"]):
            article = self.get_article(r["article_id"])
            if article is not None:
                yield article

    def checksums(self, article_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        level = "Strong"  # what makes a retried write idempotent: never a stale answer
        for part in iter_batches(list(article_ids), _BATCH):
            expr = f"part == 0 and article_id in [{', '.join(_quote(a) for a in part)}]"
            for r in self._client.query(self._articles, filter=expr, output_fields=["article_id", "checksum"],
                                        limit=len(part), consistency_level=level):
                out[r["article_id"]] = r["checksum"]
        return out

    def _count(self, collection: str, expr: str = "") -> int:
        rows = self._client.query(collection, filter=expr, output_fields=["count(*)"], consistency_level=self._level())
        return int(rows[0]["count(*)"]) if rows else 0

    def counts(self) -> tuple[int, int]:
        return self._count(self._articles, "part == 0"), self._count(self._chunks)

    def sources(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for r in self._heads(["source"]):
            if r["source"]:
                counts[r["source"]] = counts.get(r["source"], 0) + 1
        return sorted(counts.items(), key=lambda x: (-x[1], x[0]))

    def language_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self._heads(["lang"]):
            if r["lang"]:
                counts[r["lang"]] = counts.get(r["lang"], 0) + 1
        return counts

    def stories_of(self, article_ids: Sequence[str]) -> dict[str, str]:
        """Every article is its own story: this backend does not group syndicated copies."""
        return {a: a for a in article_ids}

    def copies(self, article_ids: Sequence[str]) -> dict[str, tuple[Copy, ...]]:
        return {}

    def stats(self) -> dict:
        n_articles, n_chunks = self.counts()
        size = 0
        if self._lite and self.path.exists():
            size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        settings = BuildSettings(**self.manifest["settings"])
        from rag.analysis import ANALYZER
        from rag.chunking import SPLITTER

        return {
            "path": self.location, "articles": n_articles, "chunks": n_chunks, "vectors": n_chunks,
            "sentence_vectors": self._count(self._sentences, 'kind == "title"'),
            "stories": {"grouped": False, "stories": None, "copies": None},
            "embedder": self.manifest.get("embedder", {}),
            "chunking": {"size": settings.chunk_size, "overlap": settings.chunk_overlap, "unit": "model tokens",
                         "splitter": SPLITTER, "analyzer": ANALYZER},
            "faiss": {"kind": f"milvus {'lite, FLAT' if self._lite else 'HNSW'}"},
            "size_bytes": size, "updated": self.manifest.get("updated"), "checksum": None,
        }


class _NotImplementedFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Method not implemented" not in record.getMessage()


@contextlib.contextmanager
def _quiet_lite_server(lite: bool):
    """While collections are created: pymilvus waits for their indexes with a timestamp that
    Milvus Lite's in-process gRPC server does not implement; it logs a traceback and the
    client goes on without it. Only that message is dropped, only then."""
    if not lite:
        yield
        return
    logger, quiet = logging.getLogger("grpc._server"), _NotImplementedFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _create_collections(client, prefix: str, dim: int, lite: bool, config: Config) -> None:
    """The four collections of an index (see the module docstring)."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    def schema():
        return MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)

    s = schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    for name, length in (("article_id", 512), ("title", 8192), ("date", 256), ("source", 1024), ("url", 8192),
                         ("lang", 16)):
        s.add_field(name, DataType.VARCHAR, max_length=length)
    s.add_field("text", DataType.VARCHAR, max_length=_VARCHAR)
    for name in ("position", "start", "end", "date_key"):
        s.add_field(name, DataType.INT64)
    # Our terms, already analysed: the tokenizer only splits them (each is one plain token, see bm25_text).
    s.add_field("terms", DataType.VARCHAR, max_length=_VARCHAR, enable_analyzer=True,
                analyzer_params={"tokenizer": "standard"})
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                            output_field_names=["sparse"]))
    ip = client.prepare_index_params()
    if lite:
        ip.add_index("vector", index_type="FLAT", metric_type="IP")
    else:
        ip.add_index("vector", index_type="HNSW", metric_type="IP",
                     params={"M": config.hnsw_m, "efConstruction": max(40, 2 * config.hnsw_m)})
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    if not lite:  # scalar indexes for the pushed-down filters
        for name in ("date_key", "source", "article_id", "lang"):
            ip.add_index(name, index_type="INVERTED")
    client.create_collection(f"{prefix}_chunks", schema=s, index_params=ip)

    def side(name: str, fields, vector_dim: int) -> None:
        s = schema()
        s.add_field("key", DataType.VARCHAR, max_length=_VARCHAR, is_primary=True)
        for field, kind, opts in fields:
            s.add_field(field, kind, **opts)
        s.add_field("vector" if vector_dim > 2 else "dummy", DataType.FLOAT_VECTOR, dim=vector_dim)
        ip = client.prepare_index_params()
        ip.add_index("vector" if vector_dim > 2 else "dummy", index_type="FLAT", metric_type="IP")
        client.create_collection(f"{prefix}_{name}", schema=s, index_params=ip)

    text = (DataType.VARCHAR, {"max_length": _VARCHAR})
    side("articles", [("article_id", DataType.VARCHAR, {"max_length": 512}), ("part", DataType.INT64, {}),
                      ("text", *text), ("meta", *text), ("checksum", DataType.VARCHAR, {"max_length": 128}),
                      ("lang", DataType.VARCHAR, {"max_length": 16}), ("source", DataType.VARCHAR, {"max_length": 1024}),
                      ("date_key", DataType.INT64, {}), ("title", DataType.VARCHAR, {"max_length": 8192})], 2)
    side("sentences", [("article_id", DataType.VARCHAR, {"max_length": 512}),
                       ("kind", DataType.VARCHAR, {"max_length": 32}), ("start", DataType.INT64, {}),
                       ("end", DataType.INT64, {})], max(dim, 3))
    side("meta", [("value", *text)], 2)
