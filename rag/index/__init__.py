"""The index: articles, chunks, vectors and BM25 terms behind one object, :class:`Index`.

``Index.open(location)`` picks the backend by the location (:func:`backend_for`): a
folder is the embedded default (:mod:`rag.index.folder`: SQLite + FAISS + BM25 files),
a ``.db`` file is Milvus Lite and ``milvus://HOST:PORT/COLLECTION`` a Milvus server
(:mod:`rag.index.milvus`, the optional ``milvus`` extra, imported only then). The roles a
backend fills are written down in :mod:`rag.index.base`.
"""

from rag.index.base import ArticleRecord, IndexBackend
from rag.index.core import (BACKENDS, FIRST_BATCH, BuildSettings, Index, IngestProgress, Progress,
                            backend_for)
from rag.index.folder import (FORMAT, FORMAT_VERSION, KEPT_ON_REBUILD, LOCK_WAIT_SECONDS, MANIFEST,
                              PERSIST_EVERY_SECONDS, REBUILD_COMPLETE, SENTENCE_DTYPE, UPLOADS, FolderIndex,
                              recover_rebuild)

__all__ = ["ArticleRecord", "BACKENDS", "BuildSettings", "FIRST_BATCH", "FORMAT", "FORMAT_VERSION", "FolderIndex",
           "Index", "IndexBackend", "IngestProgress", "KEPT_ON_REBUILD", "LOCK_WAIT_SECONDS", "MANIFEST",
           "PERSIST_EVERY_SECONDS", "Progress", "REBUILD_COMPLETE", "SENTENCE_DTYPE", "UPLOADS", "backend_for",
           "recover_rebuild"]
