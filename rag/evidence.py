"""Sentence-level evidence: the scored sentences the answer stage quotes, and their vectors.

:class:`Evidence` is one sentence of a retrieved chunk with the reader's score
(:mod:`rag.reader`). :class:`SentenceVectors` serves sentence embeddings (the article
title as context, as for chunks) from the index, embedding once what an index built
without them lacks. Text that addresses a language model is never evidence.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
    """One sentence of a retrieved chunk, scored against the question (``score``: the
    reader's probability that it answers; ``dense``: the question-sentence cosine)."""

    hit: Hit
    start: int  # offsets into the article text
    end: int
    text: str
    score: float
    dense: float
    lexical: float
    #: whether it holds the kind of answer asked (a date for "when", a number for "how many"…)
    typed: bool = True


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

    def put(self, items: Sequence[tuple[tuple, np.ndarray]]) -> None:
        """Remember vectors another stage already read (the retriever's sentence stage)."""
        with self._lock:
            for k, v in items:
                self._cache[k] = v
                self._cache.move_to_end(k)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)

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
