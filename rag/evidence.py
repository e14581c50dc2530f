"""Sentence-level evidence: which sentences of the retrieved chunks answer a question.

Each sentence is scored against the question with the embedder (the article title
as context, as for chunks) and by lexical overlap of content terms. Sentence vectors
are cached, so follow-up questions over the same articles cost little.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.analysis import terms
from rag.chunking import chunk_sentences, embedding_text
from rag.types import Hit

log = logging.getLogger(__name__)

# Text that addresses the model rather than the reader. Such a sentence is never
# taken as evidence: article text is data, not instructions.
_INJECTION = re.compile(
    r"(ignore|disregard|oublie[zr]?|ignore[zr]?)\b.{0,40}\b(instructions?|consignes?|previous|précédentes?|above|ci-dessus)"
    r"|\b(system prompt|prompt système|you are now|tu es maintenant|vous êtes maintenant)\b"
    r"|\b(réponds|répondez|answer|reply|say|dis|dites)\b.{0,20}\b(only|uniquement|seulement)\b",
    re.IGNORECASE,
)


def looks_like_instructions(text: str) -> bool:
    """True for text that tries to instruct a language model."""
    return bool(_INJECTION.search(text))


@dataclass(frozen=True)
class Evidence:
    """One sentence of a retrieved chunk, scored against the question."""

    hit: Hit
    start: int  # offsets into the article text
    end: int
    text: str
    score: float
    dense: float
    lexical: float


class SentenceVectors:
    """Sentence embeddings keyed by (article id, start, end): an in-memory LRU in front
    of the store's on-disk cache (when a store is given), filled on first use.

    ``kind`` names what was embedded (``title``: title + sentence; ``plain``: the sentence).
    """

    def __init__(self, embedder, store=None, kind: str = "title", capacity: int = 50_000):
        self._embedder = embedder
        self._store = store
        self._kind = kind
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, keys: Sequence[tuple], texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing and self._store is not None:
            found = self._store.sentence_vectors([keys[i] for i in missing], self._kind)
            with self._lock:
                self._cache.update(found)
            missing = [i for i in missing if keys[i] not in found]
        if missing:
            # The same sentence can come twice (overlapping chunks): embed it once.
            todo = list(dict.fromkeys(keys[i] for i in missing))
            text_of = {keys[i]: texts[i] for i in missing}
            vecs = self._embedder.embed_passages([text_of[k] for k in todo])
            if self._store is not None:
                self._store.save_sentence_vectors(list(zip(todo, vecs)), self._kind)
            with self._lock:
                for k, v in zip(todo, vecs):
                    self._cache[k] = v
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        with self._lock:
            out = []
            for k in keys:
                self._cache.move_to_end(k)
                out.append(self._cache[k])
        return np.stack(out) if out else np.zeros((0, 1), np.float32)


class EvidenceScorer:
    """Scores the sentences of retrieved hits against a question.

    Args:
        embedder: the index's embedder (queries and passages).
        lexical_weight: weight of the share of question terms found in the sentence
            and its title; it only ever adds, so it cannot hurt a cross-lingual match.
        chunk_weight: weight of the retrieval score of the sentence's chunk.
    """

    def __init__(self, embedder, *, store=None, lexical_weight: float = 0.15, chunk_weight: float = 0.25):
        self.embedder = embedder
        self.vectors = SentenceVectors(embedder, store, "title")
        self.lexical_weight = lexical_weight
        self.chunk_weight = chunk_weight

    def candidates(self, hits: Sequence[Hit]) -> list[tuple[Hit, int, int, str]]:
        seen = set()
        out = []
        for h in hits:
            for s, e, sentence in chunk_sentences(h.text, h.start):
                key = (h.article_id, s, e)
                if key in seen:
                    continue
                seen.add(key)
                if looks_like_instructions(sentence):
                    log.warning("ignored a sentence that reads like instructions to a model in article %s", h.article_id)
                    continue
                if len(sentence) < 8:
                    continue
                out.append((h, s, e, sentence))
        return out

    def score(self, question: str, hits: Sequence[Hit], query_vec: np.ndarray | None = None) -> list[Evidence]:
        """Every candidate sentence of ``hits``, best first."""
        cands = self.candidates(hits)
        if not cands:
            return []
        if query_vec is None:
            query_vec = self.embedder.embed_query(question)
        keys = [(h.article_id, s, e) for h, s, e, _ in cands]
        vecs = self.vectors.get(keys, [embedding_text(h.title, t) for h, _, _, t in cands])
        dense = vecs @ np.asarray(query_vec, dtype=np.float32)
        q_terms = set(terms(question))
        out = []
        for (h, s, e, text), d in zip(cands, dense):
            lex = 0.0
            if q_terms:
                lex = len(q_terms & set(terms(h.title + " " + text))) / len(q_terms)
            score = (1 - self.chunk_weight) * float(d) + self.chunk_weight * h.score + self.lexical_weight * lex
            out.append(Evidence(h, s, e, text, score, float(d), lex))
        out.sort(key=lambda ev: ev.score, reverse=True)
        return out


def missing_anchors(question: str, hits: Sequence[Hit], *, with_names: bool = True) -> list[str]:
    """Numbers (and names) of the question that appear nowhere in the retrieved text.

    A question about "the 2018 World Cup" over articles that never mention 2018
    is likely not answerable from them, however close the embeddings are. Names
    match on a folded 5-letter prefix ("Russia" finds "Russie") but are only
    checked when question and articles share a language: "Putin" is "Poutine".
    """
    from rag.analysis import fold, names, numbers, words

    text = " ".join(h.title + " " + h.text for h in hits)
    have_numbers = numbers(text)
    have_prefixes = {fold(w)[:5] for w in words(text)}
    missing = sorted(numbers(question) - have_numbers)
    if with_names:
        missing += sorted(n for n in names(question) if n[:5] not in have_prefixes)
    return missing
