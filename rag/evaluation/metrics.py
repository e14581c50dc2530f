"""Gold sets and answer metrics: how right, how well cited, how well it refuses.

A gold item (JSONL, one object a line)::

    {"id": "...", "question": "...", "answers": ["accepted", "answers"], "unanswerable": false,
     "support": ["text of the sentence(s) that answer it"], "answer_sentence": "a full-sentence answer"}

``support`` and ``answer_sentence`` are optional; ``support`` enables the citation
check, ``answer_sentence`` the calibration of the citation verifier.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.analysis import fold
from rag.errors import InputError
from rag.types import Answer


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    unanswerable: bool = False
    support: tuple[str, ...] = ()
    answer_sentence: str | None = None
    lang: str | None = None
    #: for retrieval metrics: the article or passage ids that hold the answer
    relevant: tuple[str, ...] = ()
    #: factual, multi, articles, summary, followup or unanswerable (news gold set)
    kind: str | None = None
    #: every part a complete answer holds: each a tuple of accepted variants
    all_of: tuple[tuple[str, ...], ...] = ()
    #: the user's earlier questions (a follow-up is asked after them)
    history: tuple[str, ...] = ()


def load_gold(path: str | Path) -> list[GoldItem]:
    """Read a gold JSONL file; a bad line is an :class:`InputError` naming it."""
    items = []
    path = Path(path)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            items.append(GoldItem(
                id=str(d.get("id") or f"{path.stem}-{n}"),
                question=d["question"],
                answers=tuple(d.get("answers") or ()),
                unanswerable=bool(d.get("unanswerable", False)),
                support=tuple(d.get("support") or ()),
                answer_sentence=d.get("answer_sentence"),
                lang=d.get("lang"),
                relevant=tuple(str(x) for x in d.get("relevant") or ()),
                kind=d.get("type"),
                all_of=tuple(tuple([g] if isinstance(g, str) else g) for g in d.get("all_of") or ()),
                history=tuple(d.get("history") or ()),
            ))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"bad gold record: {exc}", path=str(path), line=n) from exc
        if not items[-1].unanswerable and not items[-1].answers and not items[-1].all_of:
            raise InputError("an answerable gold record needs 'answers'", path=str(path), line=n)
    return items


def _norm(text: str) -> str:
    text = fold(text).replace("’", "'")
    text = re.sub(r"\b(le|la|les|l'|un|une|des|du|de|d'|the|a|an)\b", " ", text)
    return " ".join(re.findall(r"\w+", text))


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """Whether ``text`` holds one of the accepted answers (case, accents and articles ignored)."""
    t = f" {_norm(text)} "
    return any(_norm(a) and f" {_norm(a)} " in t for a in answers)


def exact_match(text: str, answers: Iterable[str]) -> bool:
    return any(_norm(text) == _norm(a) for a in answers)


def token_f1(text: str, answers: Iterable[str]) -> float:
    """SQuAD-style token F1 against the best accepted answer."""
    pred = _norm(text).split()
    best = 0.0
    for a in answers:
        gold = _norm(a).split()
        common = sum((Counter(pred) & Counter(gold)).values())
        if not pred or not gold or not common:
            continue
        p, r = common / len(pred), common / len(gold)
        best = max(best, 2 * p * r / (p + r))
    return best


def complete(text: str, item: GoldItem, cited: Iterable[str] | None = None) -> bool:
    """Whether ``text`` holds the answer: every part of ``all_of`` when given, else an accepted
    answer. A "which articles" item is answered by the articles themselves: with ``cited``
    (the article ids the answer cites), every relevant article must be among them."""
    if item.kind == "articles" and item.relevant and cited is not None:
        return set(item.relevant) <= set(cited)
    if item.all_of:
        return all(contains_answer(text, group) for group in item.all_of)
    return contains_answer(text, item.answers)


def supports(quote: str, item: GoldItem) -> bool:
    """Whether one cited quote states something asked for: a gold support text, an
    accepted answer, or one part of a multi-part answer."""
    q = _norm(quote)
    if any(_norm(s) and (_norm(s) in q or q in _norm(s)) for s in item.support):
        return True
    return contains_answer(quote, item.answers) or any(contains_answer(quote, g) for g in item.all_of)


def citation_correct(answer: Answer, item: GoldItem) -> bool:
    """A cited quote holds a gold support text or an accepted answer."""
    for c in answer.citations:
        q = _norm(c.quote)
        if any(_norm(s) in q or q in _norm(s) for s in item.support if _norm(s)):
            return True
        if contains_answer(c.quote, item.answers):
            return True
    return False


@dataclass
class AnswerReport:
    n: int = 0
    answerable: int = 0
    unanswerable: int = 0
    accuracy: float = 0.0  # answer contained, over answerable questions that were answered or refused
    exact_match: float = 0.0
    token_f1: float = 0.0
    citation_correct: float = 0.0  # over answerable questions that were answered
    #: share of all citations of answered answerable questions that state something asked for
    citation_precision: float = 0.0
    refusal_precision: float = 0.0
    refusal_recall: float = 0.0
    #: share of answerable questions refused
    answerable_refused: float = 0.0
    #: per question kind: n, complete (answer holds every part), refused
    by_kind: dict = field(default_factory=dict)
    #: median characters of answered factual answers (all answered answers when no kinds)
    median_chars: float = 0.0
    #: when the assistant answers with confidence c, how often is it right (10 bins)
    reliability: list = field(default_factory=list)
    per_item: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def score_answers(items: Sequence[GoldItem], answers: Sequence[Answer]) -> AnswerReport:
    """Answer accuracy (containment; every part for multi-part items), EM, token F1,
    citation correctness and precision, refusal P/R, per-kind results, length, reliability."""
    import statistics

    rep = AnswerReport(n=len(items))
    correct = em = f1 = cited_ok = answered = 0
    refused_right = refused_all = refused_answerable = 0
    cites = cites_ok = 0
    lengths: list[int] = []
    conf_ok: list[tuple[float, float]] = []
    kinds: dict[str, dict] = {}
    for item, ans in zip(items, answers):
        quoted = " ".join(c.quote for c in ans.citations)
        kind = item.kind or ("unanswerable" if item.unanswerable else "factual")
        row = {"id": item.id, "kind": kind, "question": item.question, "refused": ans.refused,
               "unanswerable": item.unanswerable, "evidence_score": ans.evidence_score, "confidence": ans.confidence,
               "chars": len(ans.text), "text": ans.text}
        k = kinds.setdefault(kind, {"n": 0, "complete": 0, "refused": 0})
        k["n"] += 1
        k["refused"] += ans.refused
        if ans.refused:
            refused_all += 1
            refused_right += item.unanswerable
        if item.unanswerable:
            rep.unanswerable += 1
            if not ans.refused:
                conf_ok.append((ans.confidence, 0.0))
        else:
            rep.answerable += 1
            refused_answerable += ans.refused
            ok = not ans.refused and complete(ans.text, item, [c.article_id for c in ans.citations])
            k["complete"] += ok
            correct += ok
            em += (not ans.refused) and exact_match(quoted, item.answers)
            f1 += 0.0 if ans.refused else max(token_f1(c.quote, item.answers) for c in ans.citations) if ans.citations else 0.0
            if not ans.refused:
                answered += 1
                cok = citation_correct(ans, item)
                cited_ok += cok
                row["citation_correct"] = cok
                good = [supports(c.quote, item) or (kind == "articles" and c.article_id in item.relevant)
                        for c in ans.citations]
                cites += len(good)
                cites_ok += sum(good)
                row["citations_supporting"] = f"{sum(good)}/{len(good)}"
                conf_ok.append((ans.confidence, float(ok)))
                if kind in ("factual", "followup"):
                    lengths.append(len(ans.text))
            row["correct"] = ok
        rep.per_item.append(row)
    if rep.answerable:
        rep.accuracy = correct / rep.answerable
        rep.exact_match = em / rep.answerable
        rep.token_f1 = f1 / rep.answerable
        rep.answerable_refused = refused_answerable / rep.answerable
    rep.citation_correct = cited_ok / answered if answered else 0.0
    rep.citation_precision = cites_ok / cites if cites else 0.0
    rep.refusal_precision = refused_right / refused_all if refused_all else 0.0
    rep.refusal_recall = refused_right / rep.unanswerable if rep.unanswerable else 0.0
    for k in kinds.values():
        k["complete_share"] = round(k["complete"] / k["n"], 4) if k["n"] else 0.0
    rep.by_kind = kinds
    rep.median_chars = float(statistics.median(lengths)) if lengths else 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        sel = [ok for c, ok in conf_ok if lo <= c < hi or (b == 9 and c == 1.0)]
        if sel:
            rep.reliability.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(sel),
                                    "right": round(sum(sel) / len(sel), 3)})
    return rep


def best_threshold(answerable: Sequence[float], unanswerable: Sequence[float]) -> tuple[float, list[dict]]:
    """The threshold that best separates answerable from unanswerable scores.

    Maximizes balanced accuracy (mean of the share of answerable questions kept and
    unanswerable ones refused); ties go to the lower threshold (fewer refusals of
    answerable questions). Returns it with the trade-off table.
    """
    if not answerable or not unanswerable:
        raise ValueError("calibration needs both answerable and unanswerable questions")
    cands = sorted(set(answerable) | set(unanswerable))
    mids = [cands[0] - 1e-3] + [(a + b) / 2 for a, b in zip(cands, cands[1:])] + [cands[-1] + 1e-3]
    table = []
    for t in mids:
        kept = sum(s >= t for s in answerable) / len(answerable)
        refused = sum(s < t for s in unanswerable) / len(unanswerable)
        refused_total = sum(s < t for s in answerable) + sum(s < t for s in unanswerable)
        precision = sum(s < t for s in unanswerable) / refused_total if refused_total else 1.0
        table.append({"threshold": round(t, 4), "answerable_kept": round(kept, 4), "unanswerable_refused": round(refused, 4),
                      "refusal_precision": round(precision, 4), "balanced_accuracy": round((kept + refused) / 2, 4)})
    best = max(table, key=lambda r: (r["balanced_accuracy"], -r["threshold"]))
    return best["threshold"], table
