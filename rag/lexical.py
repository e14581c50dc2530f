"""BM25 over French-aware terms, as a sparse matrix saved with the index.

Terms come from :func:`rag.analysis.terms` (elision, accent folding, stop words,
Snowball stemming) and are stored per chunk in the article store, so the matrix
can be rebuilt without re-reading articles. It is saved next to the FAISS file,
stamped with the same store generation.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.fsutil import atomic_write

log = logging.getLogger(__name__)


def lexical_filename(generation: int) -> str:
    return f"lexical-{generation:08d}.npz"


class BM25Index:
    """Okapi BM25 with precomputed per-(chunk, term) weights in a CSC matrix."""

    def __init__(self, ids: np.ndarray, vocab: dict[str, int], weights, *, k1: float = 1.2, b: float = 0.75):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vocab = vocab
        self.weights = weights  # scipy.sparse.csc_matrix, shape (len(ids), len(vocab))
        self.k1, self.b = k1, b
        self._row_of = {int(c): i for i, c in enumerate(self.ids)}

    @classmethod
    def build(cls, ids: Sequence[int], docs: Sequence[Sequence[str]], *, k1: float = 1.2, b: float = 0.75) -> "BM25Index":
        from scipy.sparse import csc_matrix

        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for r, terms in enumerate(docs):
            lengths[r] = len(terms)
            for t, tf in Counter(terms).items():
                rows.append(r)
                cols.append(vocab.setdefault(t, len(vocab)))
                tfs.append(tf)
        n = len(docs)
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        tf_a = np.asarray(tfs, dtype=np.float32)
        df = np.bincount(cols_a, minlength=len(vocab)).astype(np.float32)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        avgdl = float(lengths.mean()) if n else 1.0
        norm = k1 * (1 - b + b * lengths[rows_a] / max(avgdl, 1e-9))
        data = idf[cols_a] * tf_a * (k1 + 1) / (tf_a + norm)
        weights = csc_matrix((data.astype(np.float32), (rows_a, cols_a)), shape=(n, len(vocab)))
        return cls(np.asarray(ids, dtype=np.int64), vocab, weights, k1=k1, b=b)

    def __len__(self) -> int:
        return len(self.ids)

    def query_columns(self, terms: Sequence[str]) -> list[int]:
        return [self.vocab[t] for t in terms if t in self.vocab]

    def coverage(self, terms: Sequence[str]) -> float:
        """Share of the query's terms that occur in the corpus at all."""
        return len(self.query_columns(terms)) / len(terms) if terms else 0.0

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """The BM25 score of every chunk, in the order of ``self.ids``."""
        cols = self.query_columns(terms)
        if not cols or not len(self.ids):
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.weights[:, cols].sum(axis=1)).ravel()

    def scores_of(self, scores: np.ndarray, chunk_ids: Sequence[int]) -> np.ndarray:
        """The entries of a :meth:`scores` array for ``chunk_ids`` (0 for unknown ids)."""
        rows = [self._row_of.get(int(c), -1) for c in chunk_ids]
        return np.asarray([scores[r] if r >= 0 else 0.0 for r in rows], dtype=np.float32)

    def search(self, terms: Sequence[str], k: int, allowed: np.ndarray | None = None, *,
               scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` chunk ids (and scores > 0) for the query terms, best first.

        ``scores`` is the query's :meth:`scores` array, when the caller already has it.
        """
        scores = self.scores(terms) if scores is None else scores
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=bool)
            rows = [self._row_of[int(c)] for c in allowed if int(c) in self._row_of]
            mask[rows] = True
            scores = np.where(mask, scores, 0.0)
        nz = np.flatnonzero(scores > 0)
        if not len(nz):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(k, len(nz))
        top = nz[np.argpartition(-scores[nz], k - 1)[:k]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return self.ids[top], scores[top]

    def save(self, path: Path) -> None:
        w = self.weights
        vocab = [None] * len(self.vocab)
        for t, j in self.vocab.items():
            vocab[j] = t
        buf = io.BytesIO()
        np.savez(buf, ids=self.ids, data=w.data, indices=w.indices, indptr=w.indptr, shape=np.asarray(w.shape),
                 vocab=np.frombuffer(json.dumps(vocab, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
                 params=np.asarray([self.k1, self.b]))
        atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()))

    @classmethod
    def load(cls, path: Path) -> "BM25Index":
        from scipy.sparse import csc_matrix

        with np.load(path) as z:
            vocab_list = json.loads(z["vocab"].tobytes().decode("utf-8"))
            weights = csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            k1, b = (float(x) for x in z["params"])
            ids = z["ids"]
        return cls(ids, {t: j for j, t in enumerate(vocab_list)}, weights, k1=k1, b=b)


def lexical_weight(coverage: float, same_language: bool, *, base: float = 1.0, cross: float = 0.0) -> float:
    """How much the BM25 ranking counts in the fusion.

    Lexical matching across languages is noise (an English question shares few
    stems with a Spanish passage, and the ones it shares mislead), so the weight
    drops to ``cross`` when the question's language differs from the passages';
    it also scales with the share of query terms the corpus knows.
    """
    if math.isnan(coverage):
        coverage = 0.0
    return (base if same_language else cross) * coverage
