"""The FAISS vector index.

Vectors are keyed by chunk id (``IndexIDMap2``), so articles can be updated and
removed without rebuilding. FAISS is used directly: llama-index's ``FaissVectorStore``
numbers vectors by position (``FaissMapVectorStore`` reuses ``ntotal`` as the next id,
which collides with live ids after a removal), and importing it costs most of a second
at every cold start. llama-index meets our retriever above this line instead
(``Retriever.as_llama_index``). The file is FAISS's own format, as before.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rag.errors import IndexCorruptError
from rag.fsutil import atomic_write, latest_generation

log = logging.getLogger(__name__)


def vectors_filename(generation: int) -> str:
    return f"vectors-{generation:08d}.faiss"


def latest_vectors_file(folder: Path) -> tuple[int, Path] | None:
    """The saved FAISS file with the highest generation in ``folder``, if any."""
    return latest_generation(folder, "vectors-", ".faiss")


class VectorIndex:
    """Inner-product search over L2-normalized vectors keyed by int64 chunk ids."""

    def __init__(self, faiss_index, *, ef_search: int = 64):
        self._index = faiss_index
        self._ef_search = ef_search
        self._ids_cache: np.ndarray | None = None  # position -> chunk id, for the flat scan

    @classmethod
    def empty(cls, dim: int, kind: str = "flat", *, hnsw_m: int = 32, ef_search: int = 64) -> "VectorIndex":
        import faiss

        if kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = max(40, 2 * hnsw_m)
            inner.hnsw.efSearch = ef_search
        else:
            raise ValueError(f"unknown FAISS index kind {kind!r}")
        return cls(faiss.IndexIDMap2(inner), ef_search=ef_search)

    @classmethod
    def load(cls, path: Path, *, ef_search: int = 64) -> "VectorIndex":
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read the FAISS index {path}: {exc}") from exc
        inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = ef_search
        return cls(index, ef_search=ef_search)

    @property
    def faiss_index(self):
        return self._index

    @property
    def kind(self) -> str:
        """``flat`` or ``hnsw``: what the index really is (not what a manifest says)."""
        import faiss

        return "hnsw" if isinstance(faiss.downcast_index(self.faiss_index.index), faiss.IndexHNSW) else "flat"

    @property
    def supports_remove(self) -> bool:
        import faiss

        return isinstance(faiss.downcast_index(self.faiss_index.index), faiss.IndexFlat)

    def __len__(self) -> int:
        return int(self.faiss_index.ntotal)

    def ids(self) -> np.ndarray:
        """The chunk ids held, sorted."""
        import faiss

        return np.sort(faiss.vector_to_array(self.faiss_index.id_map).astype(np.int64, copy=False))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._ids_cache = None
        if len(ids):
            self.faiss_index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids) -> int:
        """Remove ids; returns how many were removed. HNSW cannot remove: callers rebuild."""
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids):
            return 0
        self._ids_cache = None
        return int(self.faiss_index.remove_ids(ids))

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> tuple[list[int], list[float]]:
        """The ``k`` nearest chunk ids and their scores, best first.

        ``allowed_ids`` restricts the search (metadata filters).
        """
        if len(self) == 0 or k <= 0:
            return [], []
        k = min(k, len(self))
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if allowed_ids is None:
            flat = self._flat_matrix()
            if flat is not None:
                return self._scan(flat, q[0], k)
            scores, ids = self._index.search(q, k)
            keep = ids[0] >= 0
            return [int(i) for i in ids[0][keep]], [float(s) for s in scores[0][keep]]
        import faiss

        selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
        params = faiss.SearchParameters(sel=selector)
        if isinstance(faiss.downcast_index(self.faiss_index.index), faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self._ef_search, k))
        scores, ids = self.faiss_index.search(q, k, params=params)
        keep = ids[0] >= 0
        return [int(i) for i in ids[0][keep]], [float(s) for s in scores[0][keep]]

    def _flat_matrix(self) -> np.ndarray | None:
        """The stored vectors of a flat index as a NumPy view (no copy), else None."""
        import faiss

        inner = faiss.downcast_index(self._index.index)
        if not isinstance(inner, faiss.IndexFlat) or inner.ntotal == 0:
            return None
        return faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d).reshape(inner.ntotal, inner.d)

    def _scan(self, matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        # FAISS scans for one query on one thread (~16-30 ms at 100k vectors here); a BLAS
        # matrix-vector product on every core does the same exact search 2-3x faster.
        if self._ids_cache is None or len(self._ids_cache) != len(matrix):
            import faiss

            self._ids_cache = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        scores = matrix @ query
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return self._ids_cache[top].tolist(), scores[top].astype(float).tolist()

    def save(self, path: Path) -> None:
        """Write atomically (temp file, fsync, rename)."""
        import faiss

        atomic_write(path, lambda tmp: faiss.write_index(self._index, str(tmp)))
