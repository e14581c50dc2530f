"""A deterministic, model-free embedder for fast unit tests of the plumbing.

Vectors are signed feature hashes of lowercased word unigrams and bigrams: texts
that share words are close, so retrieval tests stay meaningful, but nothing is
multilingual or semantic. Never the default.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from rag.embedding.base import Embedder, Kind, l2_normalize

_WORD = re.compile(r"\w+", re.UNICODE)


def _fold(text: str) -> list[str]:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _WORD.findall(text)


class HashEmbedder(Embedder):
    """Feature-hashing embedder (``hash`` or ``hash:DIM``)."""

    def __init__(self, dim: int = 256):
        if dim < 8:
            raise ValueError(f"hash embedder dimension must be >= 8, got {dim}")
        self.dim = dim
        self.model_id = f"hash-{dim}"
        self.max_tokens = 512

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]

    def _features(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        words = _fold(text)
        grams = words + [a + " " + b for a, b in zip(words, words[1:])]
        for g in grams:
            digest = hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            vec[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return vec

    def embed_batch(self, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(np.stack([self._features(t) for t in texts]))
