"""Setting the refusal and verification thresholds from gold data.

Refusal: run the assistant with refusal off over answerable and unanswerable
questions, then pick, separately for same-language and cross-lingual questions, the
evidence score that best separates the two (balanced accuracy).

Verification: for gold items with a full-sentence answer and its supporting text,
compare the answer sentence with the supporting sentence (should pass) and with
the best sentence of every chunk that does not hold the support (should fail).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rag.analysis import detect_language
from rag.chunking import split_sentences
from rag.config import AnswerConfig
from rag.evaluation.metrics import GoldItem, best_threshold
from rag.types import Answer

log = logging.getLogger(__name__)


def is_cross_lingual(item: GoldItem, answer: Answer) -> bool:
    if not answer.citations and not answer.related:
        return False
    text = answer.citations[0].quote if answer.citations else answer.related[0].text
    return detect_language(item.question) != detect_language(text)


def refusal_thresholds(runs: Sequence[tuple[GoldItem, Answer]]) -> dict:
    """Best thresholds for same-language and cross-lingual questions, with trade-off tables."""
    out = {}
    for group in ("same", "cross"):
        pos = [a.evidence_score for it, a in runs if not it.unanswerable and is_cross_lingual(it, a) == (group == "cross")]
        neg = [a.evidence_score for it, a in runs if it.unanswerable and is_cross_lingual(it, a) == (group == "cross")]
        if not pos or not neg:
            out[group] = {"threshold": None, "answerable": len(pos), "unanswerable": len(neg)}
            continue
        t, table = best_threshold(pos, neg)
        best = next(r for r in table if r["threshold"] == t)
        out[group] = {"threshold": t, "answerable": len(pos), "unanswerable": len(neg), "at_threshold": best,
                      "table": _thin(table)}
    return out


def _thin(table: list[dict], n: int = 15) -> list[dict]:
    if len(table) <= n:
        return table
    idx = np.linspace(0, len(table) - 1, n).round().astype(int)
    return [table[i] for i in sorted(set(idx))]


def verifier_threshold(index, items: Sequence[GoldItem]) -> dict:
    """Thresholds for the citation verifier, for same-language and cross-lingual answer sentences.

    Positives: an answer sentence against its supporting sentence. Negatives: the
    same sentence against the best sentence of each chunk without the support (what
    a wrong citation would point at). Sentences are embedded plain, as the verifier does.
    """
    emb = index.embedder
    groups: dict[str, tuple[list, list]] = {"same": ([], []), "cross": ([], [])}
    arts = [index.get_article(a["id"]) for a in index.articles()]
    sent_vecs = {}
    for art in arts:
        sents = split_sentences(art.text)
        sent_vecs[art.id] = (sents, emb.embed_passages([art.text[s:e] for s, e in sents]) if sents else None)
    for it in items:
        if it.unanswerable or not it.answer_sentence or not it.support:
            continue
        claim = emb.embed_passages([it.answer_sentence])[0]
        for art in arts:
            sents, vecs = sent_vecs[art.id]
            if vecs is None:
                continue
            pos, neg = groups["same" if detect_language(it.answer_sentence) == detect_language(art.text) else "cross"]
            sims = vecs @ claim
            is_support = [any(sup in art.text[s:e] or art.text[s:e] in sup for sup in it.support) for s, e in sents]
            if any(is_support):
                pos.append(float(max(sim for sim, ok in zip(sims, is_support) if ok)))
            for start, end in index.chunk_spans(art.id):
                inside = [i for i, (s, e) in enumerate(sents) if s >= start and e <= end]
                if inside and not any(is_support[i] for i in inside):
                    neg.append(float(max(sims[i] for i in inside)))
    out = {}
    for group, (pos, neg) in groups.items():
        if not pos or not neg:
            out[group] = {"threshold": None, "positives": len(pos), "negatives": len(neg)}
            continue
        t, table = best_threshold(pos, neg)
        out[group] = {"threshold": t, "positives": len(pos), "negatives": len(neg),
                      "at_threshold": next(r for r in table if r["threshold"] == t), "table": _thin(table)}
    return out


def no_refusal_config(base: AnswerConfig | None = None) -> AnswerConfig:
    from dataclasses import replace

    return replace(base or AnswerConfig(), refusal_threshold=-1.0, refusal_threshold_cross=-1.0)
