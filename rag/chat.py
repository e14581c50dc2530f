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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from rag import followup
from rag.analysis import detect_language, fold, names, terms, words
from rag.answering import NOT_IN_SOURCES, ExtractiveAnswerer, GenerativeAnswerer, say
from rag.config import AnswerConfig
from rag.dates import date_key
from rag.errors import InputError, LLMError, LLMTimeoutError
from rag.evidence import Evidence, SentenceVectors
from rag.intent import classify, topic_of
from rag.focus import question_focus
from rag.persons import asked_role, names_in_role, person_names, wants_person
from rag.reader.candidates import build_candidates
from rag.reader.features import is_question
from rag.refusal import Decision, RefusalPolicy, missing_anchors, states_unknown
from rag.retriever import Retriever, clean_query, validate
from rag.types import Answer, Hit
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


def previous_answer(history: History | None) -> str:
    """The assistant's last answer in ``history`` ("" when there is none)."""
    for turn in reversed(history or []):
        if isinstance(turn, dict):
            if turn.get("role") == "assistant" and isinstance(turn.get("content"), str):
                return turn["content"]
        elif isinstance(turn, (tuple, list)) and len(turn) > 1 and isinstance(turn[1], str):
            return turn[1]
    return ""


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

    def __init__(self, retriever: Retriever, answerer=None, config: AnswerConfig | None = None, *, reader=None):
        self.retriever = retriever
        self.config = config or AnswerConfig()
        self.embedder = retriever.index.embedder
        store = retriever.index  # its sentence vectors (rag.index.base.SentenceStore)
        # The retriever's sentence vectors: what its sentence stage read, the reader reuses.
        self.vectors = getattr(retriever, "sentences", None) or SentenceVectors(self.embedder, store, "title")
        self._reader = reader
        self._reader_lock = threading.Lock()
        self.refusal = RefusalPolicy(self.config.refusal_threshold, self.config.refusal_threshold_cross)
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
    def reader(self):
        """The answer reader (:mod:`rag.reader`), loaded on first use: the feature scorer,
        with the cross-encoder when the index's embedder is the e5 model it was built on."""
        if self._reader is None:
            with self._reader_lock:
                if self._reader is None:
                    from rag.reader.model import AnswerReader

                    self._reader = AnswerReader.for_embedder(self.embedder)
        return self._reader

    def warm_up(self) -> None:
        """Load the reader (and run its cross-encoder once) now rather than at the first question."""
        cross = getattr(self.reader, "cross", None)
        if cross is not None:
            from rag.reader.cross import pair

            cross.logits([pair("warm-up", "", "warm-up")])

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
        return followup.standalone(question, prev, previous_answer=previous_answer(history))

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

        Stages, each timed: rewrite a follow-up, retrieve chunks, read (the reader
        scores every sentence of the chunks), decide (refuse when the best sentence is
        unlikely to answer), answer (quotes shaped by what was asked, or an LLM whose
        output is verified). With an LLM, the pieces are the model's raw words; the
        final Answer holds the verified text, which may differ.

        A story the index holds several copies of (syndicated copies, :mod:`rag.dedup`)
        is read from one copy only, the best-retrieved; its citations name the others
        in ``also_published_by``.

        Raises:
            InputError: empty, over-long or otherwise unusable question, or an empty index.
        """
        for item in self._stream(question, history, filters=filters, k=k):
            yield self._with_copies(item) if isinstance(item, Answer) else item

    def _stream(self, question: str, history: History | None, *, filters, k: int | None) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        question, k, filters = validate(question, self.config.k if k is None else k, filters)
        lang = self.retriever.index.query_language(question)
        if self.retriever.index.counts()[1] == 0:
            raise InputError("the index has no articles yet: add some with `rag index add PATH` (or the Library tab)")
        if not previous_questions(history) and followup.needs_referent(question, lang):
            # "Quand l'a-t-il annoncé ?" with nothing before it: ask, rather than quote a stranger.
            text = followup.clarify_message(lang)
            timings.update(rewrite=_ms(t0), retrieve=0.0, read=0.0, answer=0.0, verify=0.0, total=_ms(t0))
            yield text
            yield Answer(question=question, text=text, refused=True, timings_ms=timings, standalone_question=question,
                         language=lang, answerer=self.answerer_name,
                         notice="The question refers to someone or something it does not name.")
            return
        standalone = self.standalone(question, history)
        intent = classify(standalone)
        timings["rewrite"] = _ms(t0)

        t = time.perf_counter()
        query = topic_of(standalone) if intent.kind in ("articles", "summary") else standalone
        qvec = self.embedder.embed_query(query)
        hits = self._search(query, max(k, 20) if intent.kind == "articles" else k, filters, qvec)
        timings["retrieve"] = _ms(t)

        t = time.perf_counter()
        evidence, cross = self._read(query, lang, hits, qvec)
        base = dict(question=question, standalone_question=standalone, language=lang, answerer=self.answerer_name)
        if intent.kind == "articles" and self.generative is None:
            draft, decision = self._articles(query, lang, evidence, cross)
        elif intent.kind == "summary" and self.generative is None:
            draft, decision = self._summary(query, lang, evidence, cross)
        elif intent.kind == "multi" and self.generative is None:
            draft, decision = self._multi(standalone, intent.parts, lang, hits, qvec, cross)
        else:
            draft, decision = self._fact(standalone, lang, evidence, cross)
        timings["read"] = _ms(t)
        base.update(confidence=decision.confidence, evidence_score=decision.confidence)
        if decision.refuse:
            timings["answer"] = 0.0
            timings["verify"] = 0.0
            timings["total"] = _ms(t0)
            text = say("refused", lang)
            citations = []
            if draft is not None:  # the article says the fact is not known: show where
                text, citations = f"{text} {draft.text}", draft.citations
            yield text
            yield Answer(text=text, refused=True, citations=citations, related=hits[:3], timings_ms=timings, **base)
            return

        t = time.perf_counter()
        notice = None
        if self.generative is None:
            yield from _pieces(draft.text)
            timings["answer"] = _ms(t)
            timings["verify"] = 0.0
            timings["total"] = _ms(t0)
            yield Answer(text=draft.text, citations=draft.citations, timings_ms=timings, **base)
            return

        sources = self.generative.sources(evidence)
        raw = []
        late = None  # the limit was reached: what the model wrote by then is verified as usual
        try:
            for piece in self.generative.stream(question, sources, lang):
                if not raw:
                    timings["first_token"] = _ms(t)
                raw.append(piece)
                yield piece
        except LLMTimeoutError as exc:
            log.warning("the language model was too slow: %s", exc)
            late = (f"The language model was slower than the limit set ({self.config.llm_timeout:g} s, "
                    f"--timeout): {exc}")
        except LLMError as exc:
            log.warning("the language model failed: %s", exc)
            notice = f"The language model failed ({exc}); this is the extractive answer."
        timings["answer"] = _ms(t)
        base["generated_tokens"] = len(raw)
        t = time.perf_counter()
        text = "".join(raw).strip()
        if notice is None and late is None and NOT_IN_SOURCES in text:
            timings["verify"] = _ms(t)
            timings["total"] = _ms(t0)
            refusal = say("refused", lang)
            yield Answer(text=refusal, refused=True, related=hits[:3], timings_ms=timings,
                         notice="The language model found no answer in the sources.", **base)
            return
        verified = self.verifier.verify(text.replace(NOT_IN_SOURCES, ""), sources) if notice is None else None
        timings["verify"] = _ms(t)
        if verified is not None and verified.text:
            notes = [late + "; its answer stops there."] if late else []
            if verified.dropped:
                notes.append(f"{verified.dropped} sentence(s) of the model's answer were removed: "
                             "their cited sources did not support them.")
            timings["total"] = _ms(t0)
            yield Answer(text=verified.text, citations=verified.citations, sentences=verified.checks,
                         timings_ms=timings, notice=" ".join(notes) or None, **base)
            return
        if late:
            notice = late + "; this is the extractive answer."
        elif verified is not None:
            notice = "No sentence of the model's answer was supported by its sources; this is the extractive answer."
        draft = self.extractive.quote(self.extractive.select([ev for ev in evidence if not is_question(ev.text)]), lang)
        timings["total"] = _ms(t0)
        yield Answer(text=draft.text, citations=draft.citations, sentences=verified.checks if verified else [],
                     timings_ms=timings, notice=notice, **{**base, "answerer": self.extractive.name})

    # -- syndicated copies ----------------------------------------------------------------

    def _search(self, query: str, n: int, filters, qvec) -> list[Hit]:
        """The retriever's ``n`` best chunks, with one copy of each story: the copy retrieved
        first. When copies took places, the search goes deeper (``2 n``) for other stories."""
        hits = self.retriever.search(query, n, filters, query_vector=qvec)
        kept = self._one_copy(hits)
        if len(kept) < len(hits):
            kept = self._one_copy(self.retriever.search(query, 2 * n, filters, query_vector=qvec))[:n]
        return kept

    def _one_copy(self, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` without those of an article whose story another article's hit came first for."""
        story = self.retriever.index.stories_of([h.article_id for h in hits])
        chosen: dict[str, str] = {}
        return [h for h in hits if chosen.setdefault(story[h.article_id], h.article_id) == h.article_id]

    def _with_copies(self, answer: Answer) -> Answer:
        """``answer`` with each citation naming the other copies of its story."""
        if not answer.citations:
            return answer
        copies = self.retriever.index.copies([c.article_id for c in answer.citations])
        if copies:
            answer.citations = [replace(c, also_published_by=copies.get(c.article_id, ())) for c in answer.citations]
        return answer

    # -- stages ---------------------------------------------------------------------------

    def _read(self, question: str, lang: str, hits: Sequence[Hit], qvec, requires: str | None = None
              ) -> tuple[list[Evidence], bool]:
        """Every sentence of ``hits`` with the reader's probability that it answers, in the
        reader's order (best first); and whether the question is in another language than
        the passages."""
        cands = build_candidates(hits, qvec, self.vectors, lang=lang)
        if not cands:
            return [], False
        cross = detect_language(" ".join(c.text for c in cands[:3])) != lang
        if hasattr(self.reader, "read_typed"):
            checks = self._requirements(requires or question, cross, cands[0].text)
            also = (lambda text: any(holds(text) for _, holds, _, _ in checks)) if checks else None
            probs, order, typed = self.reader.read_typed(question, lang, cands, cross, also=also)
        else:  # a reader of one's own with the two-value protocol
            (probs, order), typed = self.reader.read(question, lang, cands, cross), np.ones(len(cands))
        ranked = sorted(range(len(cands)), key=lambda i: -order[i])
        return [Evidence(cands[i].hit, cands[i].start, cands[i].end, cands[i].text, float(probs[i]), cands[i].dense, 0.0,
                         bool(typed[i] > 0)) for i in ranked], cross

    def _fact(self, question: str, lang: str, evidence: Sequence[Evidence], cross: bool):
        """The best sentence; a second one only when it adds what the first lacks: the first
        holds no answer of the kind asked (no date for "when", no new number for "how many"…),
        the second does, and the reader finds it nearly as likely (``second_quote_ratio``)."""
        usable = [ev for ev in evidence if not is_question(ev.text)]
        best, unmet = self._named(question, usable, cross)
        decision = self._decide(question, best, cross, unmet)
        if best is not None and not decision.refuse and states_unknown(best.text):
            # "Il n'était pas établi s'il s'agissait de frelons européens ou asiatiques": the
            # article says the fact is not known. Refuse, and quote it.
            decision = Decision(True, decision.confidence, decision.missing + ("the article says it is not known",))
            return self.extractive.quote([best], lang), decision
        if best is None or decision.refuse or self.generative is not None:
            return None, decision
        chosen = [best]
        if best is usable[0] and not best.typed:
            more = self._typed_runner_up(usable, lambda ev: ev.hit.article_id == best.hit.article_id
                                         and ev.start < best.end and best.start < ev.end)
            chosen += [more] if more is not None else []
        return self.extractive.quote(chosen, lang), decision

    def _named(self, question: str, usable: Sequence[Evidence], cross: bool = False,
               taken: Callable[[Evidence], bool] | None = None, requires: str | None = None
               ) -> tuple[Evidence | None, tuple[str, ...]]:
        """The sentence to quote, and what it lacks. A question that sets what its answer
        must hold (a person's name for "quel juge" or "comment s'appelle le chauffeur",
        :mod:`rag.persons`; an age, an amount of money, a share, a time of day or a number
        of the counted thing, :mod:`rag.focus`) is answered by a sentence that holds it: the
        first of the next four that does, at least ``second_quote_ratio`` as likely and from
        the same article or naming a name of the question, replaces a best sentence that does
        not (a sentence ``taken`` already, quoted for an earlier part of the question, does
        not); with none, the answer lacks it, and for a strict focus the refusal policy refuses."""
        best = usable[0] if usable else None
        if best is None:
            return best, ()
        checks = self._requirements(requires or question, cross, best.text)
        if not checks:
            return best, ()
        floor = self.config.second_quote_ratio * best.score
        anchors = {n[:5] for n in names(question)}
        first = best

        def about(ev: Evidence) -> bool:  # the same article, or a sentence naming what the question names
            return ev.hit.article_id == first.hit.article_id or bool(anchors & {n[:5] for n in names(ev.text)})

        for label, holds, strict, rare in checks:
            if holds(best.text):
                continue
            found = next((ev for ev in usable[1:self.REQUIREMENT_WINDOW] if ev.score >= floor and about(ev)
                          and holds(ev.text) and not (taken is not None and taken(ev))), None)
            if found is None and rare:
                # "Quel âge avaient les trois enfants morts dans le naufrage ?": the best sentence
                # tells of the event ("trois enfants sont morts…"), a later one of the same
                # article holds the ages ("les deux sœurs âgées de 13 et 9 ans") but reads as
                # less likely, for it does not repeat the event. The article is about the event
                # and that sentence holds what is asked: it answers, as likely as both together.
                found = next((ev for ev in usable[1:self.REQUIREMENT_WINDOW]
                              if ev.hit.article_id == first.hit.article_id and holds(ev.text)
                              and not (taken is not None and taken(ev))), None)
                if found is not None:
                    found = replace(found, score=vouched(found.score, first.score))
            if found is not None:
                best = found
            elif strict:
                return best, (label,)
        return best, ()

    #: how far down the reader's order a sentence holding what the question requires may replace the best one
    REQUIREMENT_WINDOW = 8

    @staticmethod
    def _requirements(question: str, cross: bool, passage: str
                      ) -> list[tuple[str, Callable[[str], bool], bool, bool]]:
        """What the answer to ``question`` must hold, as ``(label, holds(sentence), strict,
        rare)``: a person's name (:mod:`rag.persons`), and the question's focus (:mod:`rag.focus`;
        ``passage`` tells the text's language when the question is in another). ``rare`` marks
        what few other sentences hold (an age, a time of day, a quantity in a unit of measure:
        on PIAF and XQuAD at most 1 in 10 sentences besides the answer, ``eval/focus_recall.py``);
        names, amounts and shares are everywhere in news."""
        checks = []
        if wants_person(question):
            checks.append(("a person's name", lambda text: bool(person_names(text, question)), True, False))
            role = asked_role(question)
            if role:
                # "Quelle maire d'Albertville a évoqué…": the person named in that role.
                checks.append((f"the {role[0]}'s name", lambda text: names_in_role(text, question, role), False, False))
        focus = question_focus(question, detect_language(passage) if cross else None)
        if focus is not None:
            rare = focus.kind in ("age", "clock") or (focus.kind == "unit" and focus.strict)
            checks.append((focus.label, lambda text: focus.holds(text, question), focus.strict, rare))
        return checks

    def _typed_runner_up(self, usable: Sequence[Evidence], taken) -> Evidence | None:
        """The first of the two sentences after ``usable[0]`` that holds the kind of answer
        asked, is not ``taken``, and is at least ``second_quote_ratio`` as likely as the first."""
        floor = self.config.second_quote_ratio * usable[0].score
        return next((ev for ev in usable[1:3] if ev.typed and ev.score >= floor and not taken(ev)), None)

    def _article_texts(self, article_ids) -> list[str]:
        store = self.retriever.index
        out = []
        for aid in dict.fromkeys(article_ids):
            a = store.get_article(aid)
            if a is not None:
                # News seldom writes the year of what it reports: its date says it. A question
                # naming "2018" about an article of 2018 names nothing the article lacks.
                year = re.match(r"\d{4}", a.date or "")
                out.append(f"{a.title} {a.text}" + (f" {year.group()}" if year else ""))
        return out

    def _decide(self, question: str, best: Evidence | None, cross: bool, unmet: Sequence[str] = ()) -> Decision:
        if best is None:
            return Decision(True, 0.0)
        return self.refusal.decide(question, best.score, self._article_texts([best.hit.article_id]), cross=cross,
                                   unmet=unmet, held=holds_quantity(question, best.text, cross))

    def _multi(self, question: str, parts: Sequence[str], lang: str, hits: Sequence[Hit], qvec, cross: bool):
        """One best sentence per part of the question, in the parts' order (each once)."""
        chosen: list[Evidence] = []
        decisions = []
        vecs = self.embedder.embed_queries(list(parts))
        def quoted(e: Evidence) -> bool:
            return any(c.hit.article_id == e.hit.article_id and c.start == e.start for c in chosen)

        requires = None
        for part, pvec in zip(parts, vecs):
            v = np.asarray(pvec, dtype=np.float32) + np.asarray(qvec, dtype=np.float32)
            v /= np.linalg.norm(v) or 1.0
            # "…, combien de personnes ont été blessées dans le Bas-Rhin, et combien dans le
            # Haut-Rhin ?": a short part that asks with the previous part's question word and sets
            # no requirement of its own shares the previous one's ("et son arme était-elle
            # réelle ?" does not).
            if requires is None or self._requirements(part, cross, part) or not _repeats_question_word(part, requires):
                requires = part
            ev, _ = self._read(part, lang, hits, v, requires=requires)
            usable = [e for e in ev if not is_question(e.text)]
            best, unmet = self._named(part, usable, cross, taken=quoted, requires=requires)
            if best is not None and quoted(best) and not best.typed:
                # The sentence quoted for an earlier part lacks what this part asks for
                # (a date, a number, a name…): the next one that has it, if nearly as likely.
                best = self._typed_runner_up(usable, quoted) or best
            if (best is not None and chosen and not unmet and best.typed and best.score < chosen[0].score
                    and any(c.hit.article_id == best.hit.article_id for c in chosen)):
                # "…, and how deep was the water on the ground floor of her house?": a later part
                # is elliptic ("her house"), so the reader finds its sentence unlikely on its own;
                # the earlier part's answer has shown the article tells of the event.
                best = replace(best, score=vouched(best.score, chosen[0].score))
            d = self._decide(part, best, cross, unmet)
            decisions.append(d)
            if not d.refuse and best is not None and not quoted(best):
                chosen.append(best)
        if not chosen:
            whole = self._read(question, lang, hits, qvec)[0]
            best = next((e for e in whole if not is_question(e.text)), None)
            d = self._decide(question, best, cross)
            return (self.extractive.quote([best], lang) if best and not d.refuse else None), d
        confidence = min(d.confidence for d in decisions)
        return self.extractive.quote(chosen, lang), Decision(False, confidence)

    def _topic_decision(self, topic: str, ev: Evidence | None, cross: bool, article_text: str | None = None) -> Decision:
        """A summary or list request names a topic, not a fact: the passage's own
        cosine with the topic decides (the threshold the chunk-level refusal used)."""
        if ev is None:
            return Decision(True, 0.0)
        threshold = self.config.topic_threshold_cross if cross else self.config.topic_threshold
        texts = [article_text] if article_text is not None else self._article_texts([ev.hit.article_id])
        missing = tuple(missing_anchors(topic, texts, with_names=not cross))
        score = ev.hit.score - 0.05 * min(len(missing), 2)
        confidence = 1.0 / (1.0 + math.exp(-(score - threshold) / 0.03))
        # An article whose title says most of the topic ("rave party illégale de Lozère" over
        # « "Rave party" illégale en Lozère : fin de l'occupation du site ») is about it,
        # whatever the cosine, when nothing the topic names is missing from it.
        topic_terms = set(terms(topic))
        titled = (not cross and not missing and bool(topic_terms) and
                  len(topic_terms & set(terms(ev.hit.title or ""))) >= TITLE_COVERAGE * len(topic_terms))
        return Decision(score < threshold and not titled, round(confidence, 4), missing)

    def _summary(self, topic: str, lang: str, evidence: Sequence[Evidence], cross: bool):
        """The best article's lead and its most central sentences, in the article's order."""
        if not evidence:
            return None, Decision(True, 0.0)
        top = max(evidence, key=lambda ev: ev.hit.score)
        decision = self._topic_decision(topic, top, cross)
        if decision.refuse:
            return None, decision
        chosen = summary_sentences(self.retriever.index, top.hit, self.vectors, self.config.summary_sentences)
        return self.extractive.summary(top.hit.title, chosen, lang), decision

    def _articles(self, topic: str, lang: str, evidence: Sequence[Evidence], cross: bool):
        """Every retrieved article that covers the topic, newest first, with its best sentence."""
        best_of: dict[str, Evidence] = {}
        for ev in evidence:
            if ev.hit.article_id not in best_of and not is_question(ev.text):
                best_of[ev.hit.article_id] = ev
        candidates: list[tuple[Evidence, Decision]] = []
        topic_terms = set(terms(topic))
        # Across languages the topic's words differ from the articles', but a person's full
        # name is written the same ("Éric Drouet", "Agnès Buzyn"): an article naming none of
        # the topic's people is not about them.
        people = {fold(n.split()[-1])[:5] for n in person_names(topic) if " " in n} if cross else set()
        for aid, ev in best_of.items():
            text = " ".join(self._article_texts([aid]))
            if topic_terms and not cross:
                have = set(terms(text))
                if len(topic_terms & have) < max(1, math.ceil(0.6 * len(topic_terms))):
                    continue
            if people and not people & {fold(w)[:5] for w in words(text)}:
                continue
            decision = self._topic_decision(topic, ev, cross, text)
            candidates.append((ev, decision))
        keep = [(ev, d) for ev, d in candidates if not d.refuse]
        if not keep:
            return None, Decision(True, 0.0)
        # The list is asked for all the articles on the topic: once one covers it, another that
        # names everything the topic names and is nearly as close to it covers it too.
        floor = max(ev.hit.score for ev, _ in keep) - LIST_MARGIN
        keep += [(ev, d) for ev, d in candidates if d.refuse and not d.missing and ev.hit.score >= floor]
        keep.sort(key=lambda k: (date_key(k[0].hit.date) or "", k[0].score), reverse=True)
        keep = keep[: self.config.max_articles]
        confidence = max(d.confidence for _, d in keep)
        keep = [ev for ev, _ in keep]
        copies = self.retriever.index.copies([ev.hit.article_id for ev in keep])
        return self.extractive.article_list(topic, keep, lang, copies), Decision(False, confidence)


def summary_sentences(store, hit: Hit, vectors, n: int, lead: int = 3) -> list[Evidence]:
    """An article's lead (its first ``lead`` sentences that are not questions: news puts what
    matters first) and its ``n - lead`` most central other sentences (closest to the mean of
    all its sentences, each less like those already picked: maximal marginal relevance), in
    the article's order. A central sentence must stand on its own: not reported speech
    opening or closing on a quotation mark."""
    from rag.chunking import embedding_text, split_sentences

    article = store.get_article(hit.article_id)
    if article is None:
        return []
    # The sentences the index stored with their vectors (one read); an index built without
    # them is split here and its sentences embedded once.
    rows = store.sentence_rows_within([(article.id, 0, len(article.text))], "title")[0]
    if rows:
        stored = {(s, e): v for s, e, v in rows}
        spans = list(stored)
    else:
        stored = {}
        spans = split_sentences(article.text)
    spans = [(s, e) for s, e in spans if len(article.text[s:e].strip()) >= 20 and not is_question(article.text[s:e])]
    if not spans:
        return []
    if stored:
        vecs = np.stack([stored[sp] for sp in spans]).astype(np.float32)
    else:
        vecs = np.asarray(vectors.get([(article.id, s, e) for s, e in spans],
                                      [embedding_text(article.title, article.text[s:e]) for s, e in spans]),
                          dtype=np.float32)
    centre = vecs.mean(axis=0)
    centrality = vecs @ centre
    picked = list(range(min(lead, n, len(spans))))
    speech = {i for i, (s, e) in enumerate(spans) if _QUOTE_EDGE.search(article.text[s:e].strip()[:1] +
                                                                         article.text[s:e].strip()[-1:])}
    pool = [i for i in range(len(spans)) if i not in picked and i not in speech]
    while len(picked) < n and pool:
        redundancy = np.max(vecs[pool] @ vecs[picked].T, axis=1) if picked else np.zeros(len(pool))
        best = pool[int(np.argmax(centrality[pool] - _MMR_REDUNDANCY * redundancy))]
        picked.append(best)
        pool.remove(best)
    fake = Hit(hit.article_id, article.title, article.date, article.source, article.url, hit.chunk_id, hit.score,
               article.text, 0, len(article.text))
    return [Evidence(fake, spans[i][0], spans[i][1], article.text[spans[i][0]:spans[i][1]], float(centrality[i]),
                     float(centrality[i]), 0.0) for i in sorted(picked)]


#: how much less close to a list request's topic than the closest listed article another may be and be listed
LIST_MARGIN = 0.03

#: the share of a summary or list request's topic terms an article's title must hold to be about it
TITLE_COVERAGE = 0.6

#: how much a summary sentence's likeness to those already picked counts against its centrality
_MMR_REDUNDANCY = 0.5
_QUOTE_EDGE = re.compile(r"[«»\"“”]")


_QUESTION_WORDS = frozenset(fold(w) for w in """
    combien quand où pourquoi comment qui quel quelle quels quelles how when where why who which what
""".split())


def holds_quantity(question: str, sentence: str, cross: bool) -> bool:
    """Whether ``sentence`` holds the quantity ``question`` sets (:mod:`rag.focus`: an age,
    an amount of money, a share, a time of day, a number of the counted thing)."""
    focus = question_focus(question, detect_language(sentence) if cross else None)
    return focus is not None and focus.kind in ("age", "money", "share", "clock", "unit") \
        and focus.holds(sentence, question)


def vouched(score: float, about: float) -> float:
    """The probability that a sentence answers when it holds what is asked (``score``, the
    reader's own) and another sentence of its article shows the article tells of the event
    (``about``): their geometric mean, never below ``score``."""
    return max(score, math.sqrt(max(score, 0.0) * max(about, 0.0)))


def _repeats_question_word(part: str, previous: str) -> bool:
    """Whether ``part`` is short and opens (after "et", "and") with a question word of ``previous``."""
    toks = [fold(w) for w in words(part)]
    if toks and toks[0] in ("et", "and", "mais", "but"):
        toks = toks[1:]
    return 0 < len(toks) <= 5 and toks[0] in _QUESTION_WORDS and toks[0] in {fold(w) for w in words(previous)}


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 1)


def _pieces(text: str) -> Iterator[str]:
    for m in re.finditer(r"\S+\s*", text):
        yield m.group()
