"""The contracts of an index backend: what the retriever, the assistant and the UI may ask.

Everything above the storage line talks to one :class:`rag.index.Index`; an index kind
(the folder of SQLite + FAISS + BM25 files, Milvus) is a subclass of it that fills these
roles. They are written as ``Protocol``s, like :class:`rag.embedding.Embedder` and the LLM
base, so that a new backend knows exactly what to answer, and so that no layer above
needs another object's private state (``index.store``, ``index.vectors``, its lock).

Chunk ids are int64 and stable for as long as a chunk is stored. Scores are what each
backend computes: dense scores are inner products of L2-normalized vectors (cosines)
everywhere, BM25 scores are comparable only within one backend (rank by them, never
compare their raw values across backends). Filters are pushed down into the searches:
a backend never returns a chunk the filters leave out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from rag.filters import Filters
from rag.types import Article, Chunk, ChunkRow, Copy

__all__ = ["ArticleRecord", "ChunkRow", "DenseSearch", "DocumentStore", "Filters", "IndexBackend",
           "LexicalSearch", "SentenceStore"]


class ArticleRecord(NamedTuple):
    """What an ingest writes for one article (it replaces any article stored with its id).

    Attributes:
        article: the article, its text as stored (offsets index into it).
        chunks: its chunks, in order.
        vectors: one L2-normalized vector per chunk (rows of a float32 array).
        terms: per chunk, its analyzed BM25 terms (:func:`rag.analysis.terms`).
        language: the article's detected language (None: unknown).
        sentences: ``((start, end), vector)`` per sentence, embedded with the title
            (the ``title`` kind of :class:`SentenceStore`).
    """

    article: Article
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    terms: Sequence[Sequence[str]]
    language: str | None = None
    sentences: Sequence[tuple[tuple[int, int], np.ndarray]] = ()


@runtime_checkable
class DocumentStore(Protocol):
    """Articles and their chunks' text, offsets and metadata."""

    def get_article(self, article_id: str) -> Article | None: ...

    def article_language(self, article_id: str) -> str | None: ...

    def articles(self) -> list[dict]:
        """Every article as ``{id, title, date, source, url, origin, chunks}``, newest first."""

    def iter_articles(self) -> Iterable[Article]: ...

    def checksums(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The stored checksum of each of ``article_ids`` that is stored (what makes writes idempotent)."""

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        """The stored chunks among ``chunk_ids`` (an id removed since is absent)."""

    def chunk_spans(self, article_id: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` offsets of an article's chunks, in order."""

    def chunk_languages(self, chunk_ids: Sequence[int]) -> dict[int, str | None]: ...

    def counts(self) -> tuple[int, int]:
        """(articles, chunks)."""

    def sources(self) -> list[tuple[str, int]]:
        """The sources with their article counts, most articles first."""

    def language_counts(self) -> dict[str, int]: ...

    def stories_of(self, article_ids: Sequence[str]) -> dict[str, str]:
        """Each article's story id (:mod:`rag.dedup`); an article without one is its own."""

    def copies(self, article_ids: Sequence[str]) -> dict[str, tuple[Copy, ...]]:
        """For each article that has any, the other articles of its story."""


@runtime_checkable
class DenseSearch(Protocol):
    """Nearest chunks by vector, filters pushed down; the stored vectors by id."""

    @property
    def vectors_dim(self) -> int: ...

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None
                     ) -> tuple[list[int], list[float]]:
        """The ``k`` chunks of highest inner product with ``vector``, best first, with their scores."""

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]: ...


@runtime_checkable
class LexicalSearch(Protocol):
    """BM25 over the chunks' pre-analysed terms (our analysis, the same on every backend)."""

    def lexical_search(self, terms: Sequence[str], k: int, filters: Filters | None = None
                       ) -> tuple[list[int], list[float]]:
        """The ``k`` chunks of highest BM25 score (> 0) for the analysed query ``terms``, best first."""

    def bm25_scores(self, terms: Sequence[str], chunk_ids: Sequence[int]) -> np.ndarray:
        """The BM25 score of each of ``chunk_ids`` for ``terms`` (0 for an id that matches none)."""

    def term_coverage(self, terms: Sequence[str]) -> float:
        """The share of ``terms`` that occur in the corpus at all (0 for no terms)."""


@runtime_checkable
class SentenceStore(Protocol):
    """Sentence vectors keyed by ``(article id, start, end)`` and a kind (``title``, ``plain``):
    read by span for the re-ranking and answer stages, never searched by ANN."""

    def sentence_vectors(self, keys: Sequence[tuple[str, int, int]], kind: str) -> dict[tuple, np.ndarray]: ...

    def save_sentence_vectors(self, items: Sequence[tuple[tuple[str, int, int], np.ndarray]], kind: str) -> None:
        """Best effort: a cache that could not be written costs only a recomputation."""

    def sentence_rows_within(self, spans: Sequence[tuple[str, int, int]], kind: str
                             ) -> list[list[tuple[int, int, np.ndarray]]]:
        """Per span, its stored sentences as ``(start, end, vector)``, in article order."""


@runtime_checkable
class IndexBackend(DocumentStore, DenseSearch, LexicalSearch, SentenceStore, Protocol):
    """Every role, plus writing and the state a reader may rely on.

    :class:`rag.index.Index` implements the ingestion (reading, chunking, embedding) once;
    a backend subclass implements this. ``write`` must be idempotent (an article written
    again replaces its chunks) and visible to the next read of the same object.
    """

    @property
    def generation(self) -> int:
        """Changes with every committed write (caches above are keyed by it)."""

    def write(self, records: Sequence[ArticleRecord], *, sketches: dict | None = None) -> list[int]:
        """Store the records (replacing the articles' earlier chunks); the new chunk ids, in order.

        ``sketches`` (:class:`rag.dedup.Sketch` by article id, computed outside any lock) are
        for a backend that groups syndicated copies; one that does not ignores them."""

    def remove(self, article_id: str) -> bool:
        """Delete an article, its chunks and sentence vectors; False when there is none."""

    def reading(self) -> contextlib.AbstractContextManager:
        """A block whose reads see one consistent state (no write of this process in between)."""

    def stats(self) -> dict: ...

    def close(self) -> None: ...


def iter_batches(items: Sequence, size: int) -> Iterator[Sequence]:
    """``items`` in slices of at most ``size`` (for backends that bound a request's length)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
