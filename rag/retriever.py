"""Dense retrieval over an index: a question in, ranked :class:`Hit` values out."""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

from rag.config import Config
from rag.errors import InputError
from rag.index import Index
from rag.store import Filters
from rag.types import Hit

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_query(query: str, max_chars: int = MAX_QUERY_CHARS) -> str:
    """Validate and tidy a user's question.

    Control characters become spaces and whitespace is collapsed.

    Raises:
        InputError: when the question is not a string, is empty once tidied, or is
            longer than ``max_chars``.
    """
    if not isinstance(query, str):
        raise InputError(f"the question must be text, got {type(query).__name__}")
    text = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", query)).split())
    if not text:
        raise InputError("the question is empty: type a question about the articles")
    if len(text) > max_chars:
        raise InputError(
            f"the question is {len(text):,} characters long; the limit is {max_chars:,}. Ask something shorter."
        )
    return text


class Retriever:
    """Finds the chunks of indexed articles closest to a question.

    Works across languages: the default embedder places an English question near
    the French passage that answers it.
    """

    def __init__(self, index: Index):
        self.index = index

    @classmethod
    def load(cls, path: str | Path = "index", config: Config | None = None) -> "Retriever":
        """Open the index at ``path`` for retrieval (see :meth:`Index.open`)."""
        return cls(Index.open(path, config))

    def warm_up(self) -> None:
        self.index.embedder.warm_up()

    def retrieve(self, query: str, k: int = 5, filters: Filters | dict | None = None, *,
                 query_vector=None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first.

        Args:
            query: the question, in any language the embedder reads.
            k: how many hits (1-100).
            filters: ``Filters`` or a dict with ``date_from``/``date_to`` (ISO dates,
                inclusive) and ``sources`` (a name or list of names).
            query_vector: the query's embedding, when the caller already has it.
        Raises:
            InputError: for an empty or over-long question or a bad ``k``.
        """
        text = clean_query(query)
        if not isinstance(k, int) or not 1 <= k <= 100:
            raise InputError(f"k must be an integer from 1 to 100, got {k!r}")
        try:
            flt = Filters.coerce(filters)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from exc
        allowed = None
        if flt is not None and not flt.empty:
            allowed = self.index.store.filtered_chunk_ids(flt)
            if not len(allowed):
                return []
        vec = self.index.embedder.embed_query(text) if query_vector is None else query_vector
        with self.index._lock:
            ids, scores = self.index.vectors.search(vec, k, allowed)
            rows = self.index.store.chunk_rows(ids)
        hits = []
        for cid, score in zip(ids, scores):
            r = rows.get(cid)
            if r is None:  # removed since the vectors were loaded
                continue
            hits.append(Hit(r.article_id, r.title, r.date, r.source, r.url, cid, score, r.text, r.start, r.end))
        return hits

    def as_llama_index(self, k: int = 5, filters: Filters | dict | None = None):
        """This retriever as a llama-index ``BaseRetriever`` (for query engines)."""
        from rag.llama import LlamaIndexRetriever

        return LlamaIndexRetriever(self, k=k, filters=filters)
