"""BM25 over French-aware terms: postings saved with the index, updated batch by batch.

Terms come from :func:`rag.analysis.terms` (elision, accent folding, stop words,
Snowball stemming) and are stored per chunk in the article store, so the postings
can be rebuilt without re-reading articles. They are saved next to the FAISS file,
stamped with the same store generation; a commit adds its own chunks to them (it
never re-reads every chunk's terms), and a reader catches up with another process's
commits by reading the terms of the chunks it lacks.
"""

from __future__ import annotations

import io
import json
import logging
import math
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.fsutil import atomic_write, latest_generation

log = logging.getLogger(__name__)


#: The format of a generation's BM25 postings file (``bm25-<generation>.npz``). Files of the
#: first format (``lexical-*.npz``, BM25 weights precomputed for the whole corpus) are not read
#: any more: they are rebuilt from the stored terms once, and removed.
FILE_FORMAT = 2


def lexical_filename(generation: int) -> str:
    return f"bm25-{generation:08d}.npz"


def latest_lexical_file(folder: Path) -> tuple[int, Path] | None:
    """The saved BM25 file with the highest generation in ``folder``, if any."""
    return latest_generation(folder, "bm25-", ".npz")


class _Segment:
    """Term frequencies of a run of consecutive rows, as a CSC matrix (rows x terms known then)."""

    __slots__ = ("start", "tf")

    def __init__(self, start: int, tf):
        self.start = start
        self.tf = tf  # scipy.sparse.csc_matrix of float32

    @property
    def rows(self) -> int:
        return self.tf.shape[0]


class BM25Index:
    """Okapi BM25 over term-frequency postings, scored at query time.

    Only the statistics (document frequencies, lengths, the number of chunks) are global,
    and they are kept as counts, so adding a batch costs the batch (a new segment of
    postings; segments are merged two by two as they grow, as a log-structured index does)
    and removing chunks costs those chunks. A query reads the postings of its terms only.
    Rows are kept in chunk-id order (ids only grow); removed rows stay as dead rows until
    the index is saved and loaded again.
    """

    def __init__(self, ids: np.ndarray, vocab: dict[str, int], tf, lengths: np.ndarray, *,
                 k1: float = 1.2, b: float = 0.75):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vocab = vocab
        self.k1, self.b = k1, b
        self._lengths = np.asarray(lengths, dtype=np.float32)
        self._live = np.ones(len(self.ids), dtype=bool)
        self._segments: list[_Segment] = [_Segment(0, tf)] if tf.shape[0] else []
        self._df = np.zeros(len(vocab), dtype=np.int64)
        if tf.shape[0]:
            counts = np.diff(tf.indptr)
            self._df[: len(counts)] = counts
        self._row_of = {int(c): i for i, c in enumerate(self.ids)}
        self._stats: tuple[int, float, np.ndarray] | None = None
        #: the store's terms epoch the postings were read at (see :attr:`rag.store.Store.terms_epoch`)
        self.epoch = 0
        #: changes with every add or remove (what a cache of scores is keyed by)
        self.version = 0

    # -- building ---------------------------------------------------------------
    def _postings(self, docs: Sequence[Sequence[str]]):
        """A CSC matrix of ``docs``' term frequencies (new terms join the vocabulary), and their lengths."""
        from scipy.sparse import csc_matrix

        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for r, terms in enumerate(docs):
            lengths[r] = len(terms)
            for t, tf in Counter(terms).items():
                rows.append(r)
                cols.append(self.vocab.setdefault(t, len(self.vocab)))
                tfs.append(tf)
        tf = csc_matrix((np.asarray(tfs, dtype=np.float32), (np.asarray(rows, dtype=np.int64),
                         np.asarray(cols, dtype=np.int64))), shape=(len(docs), len(self.vocab)))
        return tf, lengths

    @classmethod
    def build(cls, ids: Sequence[int], docs: Sequence[Sequence[str]], *, k1: float = 1.2, b: float = 0.75) -> "BM25Index":
        from scipy.sparse import csc_matrix

        empty = cls(np.zeros(0, np.int64), {}, csc_matrix((0, 0), dtype=np.float32), np.zeros(0), k1=k1, b=b)
        empty.add(ids, docs)
        return empty

    def add(self, ids: Sequence[int], docs: Sequence[Sequence[str]]) -> None:
        """Append chunks (their ids above every id held); costs the batch, not the corpus.

        Raises:
            ValueError: an id not above those held (rows must stay in id order).
        """
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if len(self.ids) and int(ids.min()) <= int(self.ids[-1]) or np.any(np.diff(ids) <= 0):
            raise ValueError("BM25 rows are appended in increasing chunk-id order")
        tf, lengths = self._postings(docs)
        start = len(self.ids)
        self.ids = np.concatenate([self.ids, ids])
        self._lengths = np.concatenate([self._lengths, lengths])
        self._live = np.concatenate([self._live, np.ones(len(ids), dtype=bool)])
        self._row_of.update({int(c): start + i for i, c in enumerate(ids)})
        df = np.zeros(len(self.vocab), dtype=np.int64)
        df[: len(self._df)] = self._df
        df[: tf.shape[1]] += np.diff(tf.indptr)
        self._df = df
        self._segments.append(_Segment(start, tf))
        while len(self._segments) > 1 and self._segments[-2].rows <= 2 * self._segments[-1].rows:
            last = self._segments.pop()
            prev = self._segments.pop()
            self._segments.append(_Segment(prev.start, _stack(prev.tf, last.tf)))
        self._stats = None
        self.version += 1

    def remove(self, ids) -> int:
        """Drop chunks from the statistics and results; returns how many were held."""
        rows = [self._row_of.pop(int(c)) for c in ids if int(c) in self._row_of]
        if not rows:
            return 0
        for r in rows:
            self._live[r] = False
            seg = self._segment_of(r)
            row = seg.tf.getrow(r - seg.start)
            self._df[row.indices] -= 1
        self._stats = None
        self.version += 1
        return len(rows)

    def _segment_of(self, row: int) -> _Segment:
        for seg in self._segments:
            if seg.start <= row < seg.start + seg.rows:
                return seg
        raise KeyError(row)

    def live_ids(self) -> np.ndarray:
        """The chunk ids held, sorted."""
        return self.ids[self._live]

    def __len__(self) -> int:
        return int(self._live.sum())

    # -- scoring -------------------------------------------------------------------
    def _statistics(self) -> tuple[int, float, np.ndarray]:
        """(live chunks, their mean length, every term's idf), kept until the next change."""
        if self._stats is None:
            n = int(self._live.sum())
            live_lengths = self._lengths[self._live] if n != len(self._live) else self._lengths
            avgdl = float(live_lengths.mean()) if n else 1.0
            df = self._df.astype(np.float32)
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            self._stats = (n, avgdl, idf)
        return self._stats

    def query_columns(self, terms: Sequence[str]) -> list[int]:
        cols = [self.vocab[t] for t in terms if t in self.vocab]
        return [c for c in cols if self._df[c] > 0]

    def coverage(self, terms: Sequence[str]) -> float:
        """Share of the query's terms that occur in the corpus at all."""
        return len(self.query_columns(terms)) / len(terms) if terms else 0.0

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """The BM25 score of every row (removed ones 0), in the order of ``self.ids``."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        cols = self.query_columns(terms)
        if not cols or not len(self.ids):
            return out
        _, avgdl, idf = self._statistics()
        k1, b = self.k1, self.b
        for c in cols:
            for seg in self._segments:
                tf = seg.tf
                if c >= tf.shape[1]:
                    continue
                lo, hi = tf.indptr[c], tf.indptr[c + 1]
                if lo == hi:
                    continue
                rows = tf.indices[lo:hi] + seg.start
                f = tf.data[lo:hi]
                norm = k1 * (1 - b + b * self._lengths[rows] / max(avgdl, 1e-9))
                out[rows] += idf[c] * f * (k1 + 1) / (f + norm)
        out[~self._live] = 0.0
        return out

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

    # -- files ---------------------------------------------------------------------
    def _compacted(self):
        """The live rows' postings as one CSC matrix, with their ids and lengths."""
        from scipy.sparse import csc_matrix

        if not self._segments:
            return self.ids[:0], self._lengths[:0], csc_matrix((0, len(self.vocab)), dtype=np.float32)
        tf = self._segments[0].tf
        for seg in self._segments[1:]:
            tf = _stack(tf, seg.tf)
        tf = _pad(tf, len(self.vocab))
        if not self._live.all():
            tf = tf.tocsr()[self._live].tocsc()
        return self.ids[self._live], self._lengths[self._live], tf

    def save(self, path: Path) -> None:
        ids, lengths, w = self._compacted()
        vocab = [None] * len(self.vocab)
        for t, j in self.vocab.items():
            vocab[j] = t
        buf = io.BytesIO()
        np.savez(buf, format=np.asarray([FILE_FORMAT]), ids=ids, lengths=lengths, data=w.data, indices=w.indices,
                 indptr=w.indptr, shape=np.asarray(w.shape),
                 vocab=np.frombuffer(json.dumps(vocab, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
                 params=np.asarray([self.k1, self.b]), epoch=np.asarray([self.epoch]))
        atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()))

    @classmethod
    def load(cls, path: Path) -> "BM25Index":
        """Read a saved index.

        Raises:
            ValueError: the file is not of this format (the caller rebuilds from the stored terms).
        """
        from scipy.sparse import csc_matrix

        try:
            with np.load(path) as z:
                if "format" not in z.files or int(z["format"][0]) != FILE_FORMAT:
                    raise ValueError(f"{path} is not a BM25 file of format {FILE_FORMAT}")
                vocab_list = json.loads(z["vocab"].tobytes().decode("utf-8"))
                tf = csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
                k1, b = (float(x) for x in z["params"])
                ids, lengths, epoch = z["ids"], z["lengths"], int(z["epoch"][0])
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"cannot read the BM25 file {path}: {exc}") from exc
        index = cls(ids, {t: j for j, t in enumerate(vocab_list)}, tf, lengths, k1=k1, b=b)
        index.epoch = epoch
        return index


def _pad(tf, n_cols: int):
    """``tf`` with empty columns added up to ``n_cols`` (terms first seen in later rows)."""
    from scipy.sparse import csc_matrix

    if tf.shape[1] >= n_cols:
        return tf
    indptr = np.concatenate([tf.indptr, np.full(n_cols - tf.shape[1], tf.indptr[-1], dtype=tf.indptr.dtype)])
    return csc_matrix((tf.data, tf.indices, indptr), shape=(tf.shape[0], n_cols))


def _stack(top, bottom):
    """Two segments' postings as one (rows of ``top`` first)."""
    from scipy.sparse import vstack

    n = max(top.shape[1], bottom.shape[1])
    return vstack([_pad(top, n), _pad(bottom, n)], format="csc", dtype=np.float32)


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
