"""The flat scan (a BLAS product over FAISS's own storage) finds what FAISS finds."""

from __future__ import annotations

import numpy as np

from rag.vectors import VectorIndex


def _unit(rng, n, d=32):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_flat_scan_matches_faiss_after_adds_and_removals():
    rng = np.random.default_rng(0)
    index = VectorIndex.empty(32, "flat")
    index.add(np.arange(100, 400), _unit(rng, 300))
    index.remove(range(150, 200))
    index.add(np.arange(1000, 1050), _unit(rng, 50))
    for q in _unit(rng, 5):
        ids, scores = index.search(q, 10)
        ref_scores, ref_ids = index.faiss_index.search(q[None, :], 10)
        assert ids == ref_ids[0].tolist()
        assert np.allclose(scores, ref_scores[0], atol=1e-5)
        assert not set(ids) & set(range(150, 200))
    assert len(index.search(_unit(rng, 1)[0], 10_000)[0]) == 300  # k above the count: all of them


def test_filtered_and_hnsw_searches_still_go_to_faiss():
    rng = np.random.default_rng(1)
    vecs = _unit(rng, 200)
    for kind in ("flat", "hnsw"):
        index = VectorIndex.empty(32, kind)
        index.add(np.arange(200), vecs)
        ids, _ = index.search(vecs[7], 5, allowed_ids=np.array([3, 7, 9]))
        assert ids[0] == 7 and set(ids) <= {3, 7, 9}
        assert index.search(vecs[42], 1)[0] == [42]
