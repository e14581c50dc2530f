"""Dense retrieval over an index: a question in, ranked :class:`Hit` values out."""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.analysis import detect_language, terms
from rag.config import Config
from rag.errors import InputError
from rag.filters import Filters
from rag.lexical import lexical_weight
from rag.types import Hit

if TYPE_CHECKING:  # the index imports this module only inside a method; no import circle either way
    from rag.index import Index

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


MAX_K = 100


def validate(query: str, k: int, filters: Filters | dict | None) -> tuple[str, int, Filters | None]:
    """The question tidied (:func:`clean_query`), ``k`` checked (1 to :data:`MAX_K`) and the
    filters coerced: what every public entry point checks, once.

    Raises:
        InputError: naming what is wrong.
    """
    text = clean_query(query)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InputError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    try:
        flt = Filters.coerce(filters)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    return text, k, flt


class Retriever:
    """Finds the chunks of indexed articles closest to a question.

    Modes: ``dense`` (embeddings), ``bm25`` (French-aware lexical), ``hybrid``
    (both, the lexical side weighted by whether the question shares the passages'
    language). With ``rerank`` (the default), the candidates are also scored by
    their best sentence. ``Hit.score`` is always the cosine similarity of question
    and chunk, whatever decided the order, so thresholds keep one scale.

    Args:
        candidates: how many chunks each of the dense and lexical searches proposes.
        sentence_weight: weight of the best sentence next to the chunk's cosine
            (doubled when the lexical side has no say, as across languages).
        cross_lexical_weight: weight of BM25 when question and articles differ in language.
    """

    def __init__(self, index: Index, *, mode: str | None = None, rerank: bool | None = None,
                 candidates: int = 30, sentence_weight: float = 1.0, cross_lexical_weight: float = 0.0):
        from rag.config import RETRIEVAL_MODES

        self.index = index
        self.mode = mode or index.config.retrieval
        if self.mode not in RETRIEVAL_MODES:
            raise ValueError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, got {self.mode!r}")
        self.rerank = index.config.rerank if rerank is None else rerank
        self.candidates = candidates
        self.sentence_weight = sentence_weight
        self.cross_lexical_weight = cross_lexical_weight
        from rag.evidence import SentenceVectors

        #: sentence vectors (title as context) read by the sentence stage, shared with the
        #: answer stage so that it never reads or embeds the same sentences again
        self.sentences = SentenceVectors(index.embedder, index, "title")

    @classmethod
    def load(cls, path: str | Path = "index", config: Config | None = None, **options) -> "Retriever":
        """Open the index at ``path`` for retrieval (see :meth:`Index.open`)."""
        from rag.index import Index

        return cls(Index.open(path, config), **options)

    def warm_up(self) -> None:
        self.index.embedder.warm_up()

    def retrieve(self, query: str, k: int = 5, filters: Filters | dict | None = None, *,
                 query_vector=None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first.

        Args:
            query: the question, in any language the embedder reads.
            k: how many hits (1-100).
            filters: ``Filters`` or a dict with ``date_from``/``date_to`` (ISO dates,
                inclusive), ``recent`` (``7d``, ``2w``, ``3m``, ``1y``: from that long ago)
                and ``sources`` (a name or list of names). An article whose date could
                not be read is left out by any date filter.
            query_vector: the query's embedding, when the caller already has it.
        Raises:
            InputError: for an empty or over-long question, a bad ``k`` or bad filters.
        """
        text, k, flt = validate(query, k, filters)
        return self.search(text, k, flt, query_vector=query_vector)

    def search(self, text: str, k: int, filters: Filters | None = None, *, query_vector=None) -> list[Hit]:
        """:meth:`retrieve` for arguments already checked by :func:`validate` (the assistant
        validates once at its own entry point and calls this)."""
        flt = filters if filters is None or isinstance(filters, Filters) else validate(text, k, filters)[2]
        if flt is not None and flt.empty:
            flt = None
        vec = self.index.embedder.embed_query(text) if query_vector is None else query_vector
        with self.index.reading():
            ids, cosines, rows = self._rank(text, vec, k, flt)
            missing = [c for c in ids if c not in rows]
            if missing:
                rows.update(self.index.chunk_rows(missing))
        hits = []
        for cid in ids:
            r = rows.get(cid)
            if r is None:  # removed since the vectors were loaded
                continue
            hits.append(Hit(r.article_id, r.title, r.date, r.source, r.url, cid, cosines[cid], r.text, r.start, r.end))
        return hits

    def _rank(self, text: str, vec: np.ndarray, k: int, filters: Filters | None
              ) -> tuple[list[int], dict[int, float], dict]:
        """Chunk ids best first, the cosine of every one of them, and the store rows
        read on the way (the sentence stage reads every candidate's).

        The candidates (the dense and the lexical top ``candidates``) are ordered by a
        weighted sum of standardized scores: the chunk's cosine, its BM25 score
        (weighted by :func:`lexical_weight`), and with ``rerank`` its best sentence's
        cosine. Standardizing within the candidates puts the three on one scale
        without tuning; the sentence side takes the share the lexical side leaves,
        so it weighs most when the question is in another language than the articles.
        The filters are pushed down into both searches (the backend's).
        """
        index = self.index
        if self.mode == "dense" and not self.rerank:
            ids, scores = index.dense_search(vec, k, filters)
            return ids, dict(zip(ids, scores)), {}
        n = max(k, self.candidates)
        dense_ids, dense_scores = ([], []) if self.mode == "bm25" else index.dense_search(vec, n, filters)
        cosines = dict(zip(dense_ids, dense_scores))
        pool = list(dense_ids)
        weight = 0.0
        if self.mode != "dense":
            lang = index.query_language(text)
            q_terms = terms(text, lang)
            lex_ids = index.lexical_search(q_terms, n, filters)[0]
            if self.mode == "bm25":
                weight = 1.0
            else:
                langs = self._languages(dense_ids[:5])
                same = not langs or max(set(langs), key=langs.count) == lang
                weight = lexical_weight(index.term_coverage(q_terms), same, cross=self.cross_lexical_weight)
            if weight > 0:
                pool += [c for c in lex_ids if c not in cosines]
        missing = [c for c in pool if c not in cosines]
        for cid, v in index.chunk_vectors(missing).items():
            cosines[cid] = float(v @ vec)
        pool = [c for c in pool if c in cosines]
        if len(pool) <= 1:
            return pool[:k], cosines, {}
        fused = np.zeros(len(pool))
        if self.mode != "bm25":
            fused += _standardize(np.array([cosines[c] for c in pool]))
        if weight > 0:
            fused += weight * _standardize(index.bm25_scores(q_terms, pool))
        rows = {}
        if self.rerank:
            rows = index.chunk_rows(pool)
            w = self.sentence_weight * (2.0 - min(weight, 1.0))
            fused += w * _standardize(self._best_sentences(pool, rows, vec, cosines))
        # Ties keep the first stage's order (dense, then lexical).
        order = sorted(range(len(pool)), key=lambda i: (-fused[i], i))
        return [pool[i] for i in order[:k]], cosines, rows

    def _languages(self, chunk_ids: list[int]) -> list[str]:
        """Languages of the chunks' articles (detected from the text for stores that lack them)."""
        known = self.index.chunk_languages(chunk_ids)
        unknown = [c for c, lang in known.items() if not lang]
        if unknown:
            rows = self.index.chunk_rows(unknown)
            known.update({c: detect_language(r.title + " " + r.text) for c, r in rows.items()})
        return [x for x in known.values() if x]

    def _best_sentences(self, pool: list[int], rows: dict, vec: np.ndarray, cosines: dict[int, float]) -> np.ndarray:
        """Per chunk of ``pool`` (``rows``: their store rows), the cosine of its sentence closest to the question.

        Sentence vectors (title as context) are stored at ingestion and read by span;
        a chunk with none stored (an index built without them) has its sentences
        embedded once and cached.
        """
        q = np.asarray(vec, dtype=np.float32)
        best = np.array([cosines[c] for c in pool])  # a chunk without sentences keeps its own score
        present = [i for i, c in enumerate(pool) if c in rows]
        spans = [(rows[pool[i]].article_id, rows[pool[i]].start, rows[pool[i]].end) for i in present]
        stored = self.index.sentence_rows_within(spans, "title")
        todo = []
        for i, (aid, _, _), found in zip(present, spans, stored):
            if not found:
                todo.append(i)
            else:
                best[i] = float((np.stack([v for _, _, v in found]) @ q).max())
                self.sentences.put([((aid, st, en), v) for st, en, v in found])
        if todo:
            self._embed_sentences([rows[pool[i]] for i in todo], todo, q, best)
        return best

    def _embed_sentences(self, chunk_rows, positions: list[int], q: np.ndarray, best: np.ndarray) -> None:
        from rag.chunking import chunk_sentences, embedding_text

        keys, texts, owner = [], [], []
        for i, r in zip(positions, chunk_rows):
            for st, en, sent in chunk_sentences(r.text, r.start):
                keys.append((r.article_id, st, en))
                texts.append(embedding_text(r.title, sent))
                owner.append(i)
        if not keys:
            return
        sims = self.sentences.get(keys, texts) @ q
        seen = set()
        for i, sim in zip(owner, sims):
            best[i] = sim if i not in seen else max(best[i], sim)
            seen.add(i)

    def as_llama_index(self, k: int = 5, filters: Filters | dict | None = None):
        """This retriever as a llama-index ``BaseRetriever`` (for query engines)."""
        from rag.llama import LlamaIndexRetriever

        return LlamaIndexRetriever(self, k=k, filters=filters)


def _standardize(x: np.ndarray) -> np.ndarray:
    """``x`` centred and scaled to unit variance (all zeros when it is constant)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)
