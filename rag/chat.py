"""The assistant: question (and conversation) in, grounded and cited :class:`Answer` out.

Stages, each timed: rewrite a follow-up into a standalone question, retrieve
chunks, score their sentences, refuse when the best evidence is too weak, answer
(extractive, or an LLM whose output is verified), and fall back to the extractive
answer when the model fails or none of its sentences survive verification.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator, Sequence

from rag import followup
from rag.analysis import detect_language
from rag.answering import NOT_IN_SOURCES, ExtractiveAnswerer, GenerativeAnswerer, say
from rag.config import AnswerConfig
from rag.errors import InputError, LLMError
from rag.evidence import EvidenceScorer, missing_anchors
from rag.retriever import Retriever, clean_query
from rag.types import Answer
from rag.verify import CitationVerifier

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]] | Sequence[dict]


def previous_questions(history: History | None) -> list[str]:
    """The user's earlier questions, oldest first, from (question, answer) pairs or chat messages."""
    out = []
    for turn in history or []:
        if isinstance(turn, dict):
            if turn.get("role") == "user" and isinstance(turn.get("content"), str):
                out.append(turn["content"])
        elif isinstance(turn, (tuple, list)) and turn and isinstance(turn[0], str):
            out.append(turn[0])
    return out


def heuristic_standalone(question: str, previous: str) -> str:
    """The old name of :func:`rag.followup.standalone` with one previous question."""
    return followup.standalone(question, [previous])


class Assistant:
    """Answers questions from the indexed articles, citing them.

    Args:
        retriever: a :class:`~rag.retriever.Retriever` over the index.
        answerer: ``None`` or ``"extractive"`` for quotes; an :class:`~rag.llm.base.LLM`
            (or a :class:`GenerativeAnswerer`) for generated, verified answers.
        config: :class:`~rag.config.AnswerConfig`.
    """

    def __init__(self, retriever: Retriever, answerer=None, config: AnswerConfig | None = None):
        self.retriever = retriever
        self.config = config or AnswerConfig()
        self.embedder = retriever.index.embedder
        store = retriever.index.store
        self.scorer = EvidenceScorer(self.embedder, store=store)
        self.verifier = CitationVerifier(self.embedder, self.config.verify_threshold, self.config.verify_threshold_cross,
                                         store=store)
        self.extractive = ExtractiveAnswerer(self.config.max_quote_sentences)
        if answerer is None or answerer == "extractive":
            self.generative = None
        elif isinstance(answerer, GenerativeAnswerer):
            self.generative = answerer
        else:
            self.generative = GenerativeAnswerer(answerer, max_sources=self.config.max_sources)

    @property
    def answerer_name(self) -> str:
        return self.generative.name if self.generative else self.extractive.name

    def standalone(self, question: str, history: History | None) -> str:
        """The question to search for: a follow-up rewritten with what it refers to.

        Only a real follow-up (see :func:`rag.followup.is_follow_up`) is rewritten, by
        the model when there is one, else by carrying the previous question's key
        terms; any other question is searched as asked.
        """
        prev = previous_questions(history)
        if not prev or not followup.is_follow_up(question):
            return question
        if self.generative is not None:
            try:
                return self._llm_rewrite(question, prev)
            except LLMError as exc:
                log.warning("follow-up rewriting by the model failed (%s); using the heuristic", exc)
        return followup.standalone(question, prev)

    def _llm_rewrite(self, question: str, prev: list[str]) -> str:
        from rag.llm.base import Message

        convo = "\n".join(f"- {q}" for q in prev[-3:])
        msgs = [
            Message("system", "Rewrite the user's last question as one standalone question, in the same language as "
                              "that question, resolving pronouns from the earlier questions. Reply with the question only."),
            Message("user", f"Earlier questions:\n{convo}\n\nLast question: {question}"),
        ]
        out = self.generative.llm.complete(msgs, max_tokens=80).strip().strip('"')
        return clean_query(out.splitlines()[0]) if out else question

    def ask(self, question: str, history: History | None = None, *, filters=None, k: int | None = None) -> Answer:
        """Answer ``question`` (see :meth:`stream` for the stages)."""
        answer = None
        for item in self.stream(question, history, filters=filters, k=k):
            if isinstance(item, Answer):
                answer = item
        return answer

    def stream(self, question: str, history: History | None = None, *, filters=None,
               k: int | None = None) -> Iterator[str | Answer]:
        """Yield the answer's text in pieces as it is produced, then the final :class:`Answer`.

        With an LLM, the pieces are the model's raw words; the final Answer holds
        the verified text, which may differ (unsupported sentences removed).

        Raises:
            InputError: empty, over-long or otherwise unusable question, or an empty index.
        """
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        question = clean_query(question)
        lang = detect_language(question)
        if self.retriever.index.store.counts()[1] == 0:
            raise InputError("the index has no articles yet: add some with `rag index add PATH` (or the Library tab)")
        standalone = self.standalone(question, history)
        timings["rewrite"] = _ms(t0)

        t = time.perf_counter()
        qvec = self.embedder.embed_query(standalone)
        hits = self.retriever.retrieve(standalone, k=k or self.config.k, filters=filters, query_vector=qvec)
        timings["retrieve"] = _ms(t)

        t = time.perf_counter()
        evidence = self.scorer.score(standalone, hits, qvec)
        cross = bool(evidence) and detect_language(evidence[0].text) != detect_language(standalone)
        missing = missing_anchors(standalone, hits, with_names=not cross)
        best = (evidence[0].score if evidence else -1.0) - self.config.anchor_penalty * min(len(missing), 2)
        threshold = self.config.refusal_threshold_cross if cross else self.config.refusal_threshold
        confidence = 1.0 / (1.0 + math.exp(-(best - threshold) / 0.03))
        base = dict(question=question, standalone_question=standalone, language=lang, answerer=self.answerer_name,
                    confidence=round(confidence, 4), evidence_score=round(best, 4))
        if best < threshold:
            timings["answer"] = _ms(t)
            timings["verify"] = 0.0
            timings["total"] = _ms(t0)
            text = say("refused", lang)
            yield text
            yield Answer(text=text, refused=True, related=hits[:3], timings_ms=timings, **base)
            return

        notice = None
        if self.generative is None:
            draft = self.extractive.answer(standalone, evidence, lang)
            yield from _pieces(draft.text)
            timings["answer"] = _ms(t)
            timings["verify"] = 0.0
            timings["total"] = _ms(t0)
            yield Answer(text=draft.text, citations=draft.citations, timings_ms=timings, **base)
            return

        sources = self.generative.sources(evidence)
        raw = []
        try:
            for piece in self.generative.stream(question, sources, lang):
                raw.append(piece)
                yield piece
        except LLMError as exc:
            log.warning("the language model failed: %s", exc)
            notice = f"The language model failed ({exc}); this is the extractive answer."
        timings["answer"] = _ms(t)
        t = time.perf_counter()
        text = "".join(raw).strip()
        if notice is None and NOT_IN_SOURCES in text:
            timings["verify"] = _ms(t)
            timings["total"] = _ms(t0)
            refusal = say("refused", lang)
            yield Answer(text=refusal, refused=True, related=hits[:3], timings_ms=timings,
                         notice="The language model found no answer in the sources.", **base)
            return
        verified = self.verifier.verify(text, sources) if notice is None else None
        timings["verify"] = _ms(t)
        if verified is not None and verified.text:
            if verified.dropped:
                notice = (f"{verified.dropped} sentence(s) of the model's answer were removed: "
                          "their cited sources did not support them.")
            timings["total"] = _ms(t0)
            yield Answer(text=verified.text, citations=verified.citations, sentences=verified.checks,
                         timings_ms=timings, notice=notice, **base)
            return
        if verified is not None:
            notice = "No sentence of the model's answer was supported by its sources; this is the extractive answer."
        draft = self.extractive.answer(standalone, evidence, lang)
        timings["total"] = _ms(t0)
        yield Answer(text=draft.text, citations=draft.citations, sentences=verified.checks if verified else [],
                     timings_ms=timings, notice=notice, **{**base, "answerer": self.extractive.name})


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 1)


def _pieces(text: str) -> Iterator[str]:
    for m in re.finditer(r"\S+\s*", text):
        yield m.group()
