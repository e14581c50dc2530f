"""The embedder role: texts in, L2-normalized float32 vectors out."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Kind = Literal["query", "passage"]


class Embedder(ABC):
    """One embedding model. Subclasses implement :meth:`embed_batch`; the rest builds on it.

    Heavy state (model weights) is loaded in :meth:`warm_up`, which every method
    calls on first use, never in ``__init__`` and never at import.
    """

    #: Stable identifier recorded in an index manifest; two embedders with the
    #: same id must produce interchangeable vectors.
    model_id: str = ""
    #: Vector dimension.
    dim: int = 0
    #: Longest input, in model tokens, that the model reads whole (prompt and specials excluded).
    max_tokens: int = 512

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
        """Embed texts as queries or passages.

        Returns:
            A ``(len(texts), dim)`` float32 array of L2-normalized rows.
        """

    def warm_up(self) -> None:
        """Load the model now rather than on first use."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text, without special tokens or prompt."""
        return [len(t.split()) for t in texts]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text], kind="query")[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_batch(texts, kind="query")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_batch(texts, kind="passage")

    def info(self) -> dict:
        """What an index records about the model that built it."""
        return {"id": self.model_id, "dim": self.dim, "max_tokens": self.max_tokens}


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-normalize to unit length as float32 (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)
