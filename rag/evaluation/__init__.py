"""Evaluation: gold sets, metrics, data-set loaders, runs, reports and ``rag eval``.

Out of the core's way: nothing in ``rag`` outside this package imports it, and the
``rag`` command imports it only for ``rag eval``. The modules:

- :mod:`~rag.evaluation.metrics`: gold items and answer metrics (re-exported here);
- :mod:`~rag.evaluation.datasets`: PIAF/SQuAD, XQuAD and news loaders;
- :mod:`~rag.evaluation.runner`: named retrieval configurations run and measured;
- :mod:`~rag.evaluation.baselines`: the plain llama-index pipelines;
- :mod:`~rag.evaluation.report`: terminal table, JSON and markdown report;
- :mod:`~rag.evaluation.calibrate`: refusal and verifier thresholds from data;
- :mod:`~rag.evaluation.cli`: ``rag eval`` and ``rag eval calibrate``.
"""

from __future__ import annotations

from rag.evaluation.metrics import (
    AnswerReport,
    GoldItem,
    best_threshold,
    citation_correct,
    complete,
    contains_answer,
    exact_match,
    load_gold,
    score_answers,
    supports,
    token_f1,
)

__all__ = [
    "AnswerReport", "GoldItem", "best_threshold", "citation_correct", "complete", "contains_answer",
    "exact_match", "load_gold", "score_answers", "supports", "token_f1",
]
