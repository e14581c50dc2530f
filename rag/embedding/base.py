"""The embedder role: texts in, L2-normalized float32 vectors out."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Kind = Literal["query", "passage"]
#: ``(start, end)`` character offsets into a text, end excluded.
Span = tuple[int, int]


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

    def embed_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, context: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed passages and, inside each, the given character spans (its sentences).

        This default embeds every span as a passage of its own, read after the first
        ``context[i]`` characters of its text (a title line): ``text[:context] + text[start:end]``.
        A backend that can instead pools each span's token states from the passage's own
        forward pass (see :func:`pool_spans`), one pass for both.

        Args:
            texts: the passages.
            spans: per passage, the spans to embed, as offsets into it.
            context: per passage, how many leading characters every span is read with (0: none).

        Returns:
            ``(vectors, span_vectors)``: a ``(len(texts), dim)`` array, and per passage a
            ``(len(spans[i]), dim)`` array; float32, L2-normalized rows.

        Raises:
            ValueError: ``spans`` or ``context`` do not have one entry per text, or a span
                is not inside its text.
        """
        context = _check_spans(texts, spans, context)
        pieces = [t[:c] + t[s:e] for t, sp, c in zip(texts, spans, context) for s, e in sp]
        vectors = self.embed_passages(list(texts) + pieces) if texts else np.zeros((0, self.dim), np.float32)
        return vectors[: len(texts)], _split_rows(vectors[len(texts):], [len(sp) for sp in spans], vectors.shape[1])

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


def pool_spans(
    token_states: np.ndarray,
    attention_mask: np.ndarray,
    offsets: np.ndarray,
    spans: Sequence[Sequence[Span]],
    *,
    context: Sequence[int] | None = None,
    normalize: bool = True,
) -> list[np.ndarray]:
    """Mean-pool a batch's token states over character spans of each text (numpy only).

    A token belongs to a span when its characters overlap it; tokens that end within
    ``text[:context]`` belong to every span of that text. Tokens with an empty or negative character range
    belong to none: give special tokens ``(0, 0)`` and shift a prompt's tokens below zero
    (offsets into ``prompt + text`` minus ``len(prompt)``).

    Args:
        token_states: ``(batch, tokens, dim)`` last hidden states.
        attention_mask: ``(batch, tokens)``, nonzero for real tokens (padding is never pooled).
        offsets: ``(batch, tokens, 2)``: each token's ``[start, end)`` characters in its text.
        spans: per text, ``(start, end)`` spans.
        context: per text, a number of leading characters pooled with every span (None: 0).
        normalize: L2-normalize each pooled vector.

    Returns:
        Per text, a ``(len(spans[b]), dim)`` float32 array; a span that no token overlaps
        (truncated away, or empty) gets a zero row.
    """
    states = np.asarray(token_states, dtype=np.float32)
    mask = np.asarray(attention_mask) != 0
    offsets = np.asarray(offsets)
    if states.ndim != 3 or mask.shape != states.shape[:2] or offsets.shape != (*states.shape[:2], 2):
        raise ValueError(f"token_states {states.shape}, attention_mask {mask.shape} and offsets {offsets.shape} "
                         "must be (batch, tokens, dim), (batch, tokens) and (batch, tokens, 2)")
    if len(spans) != len(states) or context is not None and len(context) != len(states):
        raise ValueError(f"spans and context need one entry per text of the batch ({len(states)})")
    out = []
    for b, text_spans in enumerate(spans):
        sp = np.asarray(text_spans, dtype=np.int64).reshape(-1, 2)
        start, end = offsets[b, :, 0], offsets[b, :, 1]
        real = mask[b] & (end > start) & (end > 0)
        member = real[None, :] & (start[None, :] < sp[:, 1:2]) & (end[None, :] > sp[:, 0:1])
        if context is not None and context[b] > 0:
            # Ending inside it: a token that starts on the separator ("\n" + word) is the span's.
            member |= (real & (end <= context[b]))[None, :]
        counts = member.sum(axis=1, keepdims=True)
        pooled = (member.astype(np.float32) @ states[b]) / np.maximum(counts, 1)
        pooled[counts[:, 0] == 0] = 0.0
        out.append(l2_normalize(pooled) if normalize else np.ascontiguousarray(pooled, dtype=np.float32))
    return out


def _check_spans(texts: Sequence[str], spans: Sequence[Sequence[Span]], context: Sequence[int] | None) -> list[int]:
    """``context`` as a list (zeros when None), after checking both against ``texts``."""
    if len(spans) != len(texts):
        raise ValueError(f"spans has {len(spans)} entries for {len(texts)} texts")
    context = [0] * len(texts) if context is None else [int(c) for c in context]
    if len(context) != len(texts):
        raise ValueError(f"context has {len(context)} entries for {len(texts)} texts")
    for t, sp, c in zip(texts, spans, context):
        if not 0 <= c <= len(t):
            raise ValueError(f"context {c} is outside a text of {len(t)} characters")
        for s, e in sp:
            if not 0 <= s <= e <= len(t):
                raise ValueError(f"span ({s}, {e}) is outside a text of {len(t)} characters")
    return context


def _split_rows(rows: np.ndarray, sizes: Sequence[int], dim: int) -> list[np.ndarray]:
    out, i = [], 0
    for n in sizes:
        out.append(rows[i : i + n] if n else np.zeros((0, dim), np.float32))
        i += n
    return out
