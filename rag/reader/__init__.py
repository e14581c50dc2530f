"""The answer reader: which retrieved sentence answers the question, and how likely.

- :mod:`rag.reader.features`: what the reader looks at (question kind, sentence facts, cosines).
- :mod:`rag.reader.candidates`: the candidate sentences of retrieved chunks.
- :mod:`rag.reader.model`: the feature scorer (:class:`Reader`, NumPy weights) and
  :class:`AnswerReader`, which adds the cross-encoder.
- :mod:`rag.reader.cross`: the cross-encoder (e5-small's top layers, fine-tuned here).
- :mod:`rag.reader.train`: ``rag reader train`` (PIAF train pages; dev and XQuAD measured).

Names are imported lazily: building the ``rag`` command line must not import NumPy.
"""

from __future__ import annotations

_EXPORTS = {
    "Candidate": "rag.reader.features",
    "question_kind": "rag.reader.features",
    "Reader": "rag.reader.model",
    "AnswerReader": "rag.reader.model",
    "default_reader": "rag.reader.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rag.reader' has no attribute {name!r}")
