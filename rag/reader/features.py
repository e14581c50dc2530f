"""What the answer reader looks at: the question's kind, each candidate sentence's
content, and how the two fit.

A candidate is one sentence of a retrieved chunk. Cosine similarity alone prefers
sentences *about* the subject; the answer to "when" sits in the sentence holding the
date, the answer to a rhetorical "Pourquoi … ?" in the sentence after it. So besides
the cosines (sentence, chunk, neighbours) the reader sees facts that are true of
language, not of one data set: what the question asks for (a date, a place, a
number, a person, a cause), whether the sentence holds that kind of thing *beyond*
what the question already says, whether it is itself a question, its length, its
place in the article, and the lexical overlap of question and sentence.

Everything here is cheap text analysis over vectors the index already stores: no
model runs at query time besides the question's own embedding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.analysis import fold, terms, words

#: Question kinds, in the order of the one-hot features.
KINDS = ("when", "where", "count", "who", "why", "how", "what")

_KIND_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple((k, re.compile(p, re.IGNORECASE)) for k, p in (
    ("when", r"\b(quand|depuis quand|jusqu'à quand|en quelle année|à quelle (date|époque|heure|période)|quel jour|"
             r"quelle (année|date|heure|époque|période|saison|décennie)|when|what (year|date|time|day|month|century)|"
             r"which (year|date|day|month|century)|in what (year|month)|since when|how long ago|"
             r"cuándo|en qué año|wann|in welchem jahr|seit wann)\b"),
    ("count", r"\b(combien|quel (nombre|montant|âge|pourcentage|taux|prix|coût|budget|chiffre|score|total)|"
              r"quelle (somme|proportion|part|quantité|superficie|distance|taille|durée|hauteur|population)|"
              r"how (many|much|old|long|far|large|big|high|tall|often)|what (percentage|proportion|share|amount|number|"
              r"age|price|score|sum|size|population)|cuántos|cuántas|cuánto|wie (viele|viel|alt|lange|hoch|groß))\b"),
    ("where", r"(\boù\b|\bd'où\b|\bwhere\b|\bdónde\b|\bwo\b|\bwoher\b|\bwohin\b|"
              r"\b(dans|en|à) quel(le)? (ville|pays|région|département|lieu|endroit|continent|quartier|commune|état)\b|"
              r"\bquel(le)? (ville|pays|région|département|lieu|endroit|continent|quartier|commune)\b|"
              r"\b(in|at|from) (which|what) (city|country|region|place|town|state|continent|location)\b|"
              r"\b(which|what) (city|country|region|place|town|state|continent|location)\b|"
              r"\ben qué (ciudad|país)\b|\bin welche[mr]? (stadt|land)\b)"),
    ("who", r"\b(qui|à qui|de qui|par qui|comment s'appel(le|lent|ait|aient)|quel est (le|son|leur) nom|"
            r"quels sont (les|leurs) noms|what (is|was|are|were) the names? of|what (is|was|are|were) (his|her|their) "
            r"names?|quel(le)? (personne|homme|femme|joueur|joueuse|entreprise|société|"
            r"organisation|groupe|parti|équipe|club|ministre|président|présidente|pays)|"
            r"who|whom|whose|which (person|man|woman|player|company|organi[sz]ation|group|party|team|club|minister)|"
            r"quién|quiénes|wer|wem|wen)\b"),
    ("why", r"\b(pourquoi|pour quelle(s)? raison(s)?|dans quel but|why|for what reason|por qué|warum|weshalb|wieso)\b"),
    ("how", r"\b(comment|de quelle (manière|façon)|how|cómo|wie)\b"),
    ("what", r"\b(que|qu'|quoi|quel|quelle|quels|quelles|lequel|laquelle|what|which|qué|cuál|was|welche[rsnm]?)\b"),
))

_MONTHS = (r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|décembre|"
           r"decembre|january|february|march|april|may|june|july|august|september|october|november|december|"
           r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre|"
           r"januar|februar|märz|juni|juli|oktober|dezember")
_DATE = re.compile(
    rf"\b(\d{{1,2}}(er)?\s+({_MONTHS})|({_MONTHS})(\s+\d{{4}}|\s+\d{{1,2}}\b|\s+(dernier|prochain|last|next)\b)|"
    rf"(en|depuis|début|fin|mi-|courant|in|since|early|late)\s+({_MONTHS})\b|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}|"
    r"lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"hier|aujourd'hui|demain|la veille|le lendemain|yesterday|today|tomorrow|"
    r"\d{1,2}\s*h\s*\d{0,2}|\d{1,2}:\d{2}|(siècle|century|décennie|années)\b)", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_NUMBER = re.compile(r"\d|\b(un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|quinze|vingt|trente|"
                     r"quarante|cinquante|soixante|cent|cents|mille|million|millions|milliard|milliards|dizaine|"
                     r"douzaine|centaine|centaines|milliers|one|two|three|four|five|six|seven|eight|nine|ten|twelve|"
                     r"twenty|hundred|thousand|dozen|dozens|hundreds|thousands|billion)\b", re.IGNORECASE)
_CAUSE = re.compile(r"\b(car|parce que|parce qu'|en raison|à cause|afin|pour (que|cause)|grâce à|suite à|"
                    r"dû à|due à|explique|expliqué|raison|motif|because|due to|owing to|in order to|so that|"
                    r"as a result|reason|since|porque|debido|weil|wegen|da)\b", re.IGNORECASE)
_PLACE = re.compile(r"\b(à|au|aux|en|dans|près de|vers|depuis|in|at|near|from|en el|im|in der)\s+(l['’])?[A-ZÉÈÀÂÎÔÛ]\w+")
_QUESTION_END = re.compile(r"\?\s*[»”\"')\]]*\s*$")


def question_kind(question: str) -> str:
    """What ``question`` asks for: one of :data:`KINDS` (``what`` when nothing more specific matches)."""
    q = question.replace("’", "'")
    # "Combien de fois" / "how many" before "quel"; "quelle année" before "quelle".
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(q):
            return kind
    return "what"


def is_question(sentence: str) -> bool:
    """Whether ``sentence`` is itself a question (it then never answers one)."""
    return bool(_QUESTION_END.search(sentence))


def _capitalized(text: str) -> set[str]:
    out = set()
    for i, w in enumerate(words(text)):
        if i > 0 and w[:1].isupper() and len(w) > 1:
            out.add(fold(w)[:6])
    return out


@dataclass(frozen=True)
class SentenceFacts:
    """Text facts of one sentence, independent of the question (cacheable)."""

    has_date: bool
    has_year: bool
    has_number: bool
    has_cause: bool
    has_place: bool
    is_question: bool
    length: int
    names: frozenset
    numbers: frozenset
    terms: frozenset


def sentence_facts(text: str, lang: str | None = None) -> SentenceFacts:
    from rag.analysis import numbers

    return SentenceFacts(
        has_date=bool(_DATE.search(text)), has_year=bool(_YEAR.search(text)), has_number=bool(_NUMBER.search(text)),
        has_cause=bool(_CAUSE.search(text)), has_place=bool(_PLACE.search(text)), is_question=is_question(text),
        length=len(text), names=frozenset(_capitalized(text)), numbers=frozenset(numbers(text)),
        terms=frozenset(terms(text, lang)),
    )


@dataclass
class Candidate:
    """One sentence of a retrieved chunk, as the reader sees it.

    ``dense`` is the cosine of the question with the sentence embedded with its title;
    ``prev``/``next`` index the neighbouring candidates of the same chunk (or -1).
    """

    hit: object  # rag.types.Hit
    hit_rank: int
    start: int
    end: int
    text: str
    dense: float
    prev: int = -1
    next: int = -1
    facts: SentenceFacts | None = None


FEATURES = (
    "dense", "dense_gap", "dense_rank", "chunk", "hit_rank", "dense_prev", "dense_next", "has_prev", "has_next",
    "lex", "lex_title", "lex_prev", "lex_next", "is_question", "prev_is_question", "log_len", "short", "long",
    "lead", "cross", "new_names", "new_numbers", "name_overlap",
    *(f"q_{k}" for k in KINDS),
    *(f"{k}_x_{p}" for k in KINDS for p in ("date", "year", "number", "cause", "place", "names", "numbers")),
)


def featurize(question: str, q_lang: str, candidates: Sequence[Candidate], cross: bool) -> np.ndarray:
    """The feature matrix (one row per candidate, columns :data:`FEATURES`)."""
    n = len(candidates)
    out = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if not n:
        return out
    kind = question_kind(question)
    q_terms = set(terms(question, q_lang))
    q_names = _capitalized(question)
    from rag.analysis import numbers

    q_numbers = numbers(question)
    dense = np.array([c.dense for c in candidates], dtype=np.float32)
    top = float(dense.max())
    order = np.argsort(-dense, kind="stable")
    rank = np.empty(n, dtype=np.float32)
    rank[order] = np.arange(n)
    facts = [c.facts or sentence_facts(c.text) for c in candidates]
    title_terms: dict[str, set] = {}

    def lex(i: int) -> float:
        if i < 0 or not q_terms:
            return 0.0
        return len(q_terms & facts[i].terms) / len(q_terms)

    col = {name: j for j, name in enumerate(FEATURES)}
    k_one = {k: float(kind == k) for k in KINDS}
    for i, c in enumerate(candidates):
        f = facts[i]
        h = c.hit
        tt = title_terms.get(h.article_id)
        if tt is None:
            tt = title_terms[h.article_id] = set(terms(h.title, q_lang)) if h.title else set()
        new_names = len(f.names - q_names)
        new_numbers = len(f.numbers - q_numbers)
        row = out[i]
        row[col["dense"]] = c.dense
        row[col["dense_gap"]] = c.dense - top
        row[col["dense_rank"]] = 1.0 / (1.0 + rank[i])
        row[col["chunk"]] = h.score
        row[col["hit_rank"]] = 1.0 / (1.0 + c.hit_rank)
        row[col["dense_prev"]] = candidates[c.prev].dense - c.dense if c.prev >= 0 else 0.0
        row[col["dense_next"]] = candidates[c.next].dense - c.dense if c.next >= 0 else 0.0
        row[col["has_prev"]] = float(c.prev >= 0)
        row[col["has_next"]] = float(c.next >= 0)
        row[col["lex"]] = lex(i)
        row[col["lex_title"]] = (len(q_terms & (f.terms | tt)) / len(q_terms)) if q_terms else 0.0
        row[col["lex_prev"]] = lex(c.prev)
        row[col["lex_next"]] = lex(c.next)
        row[col["is_question"]] = float(f.is_question)
        row[col["prev_is_question"]] = float(c.prev >= 0 and facts[c.prev].is_question)
        row[col["log_len"]] = math.log1p(f.length) / 6.0
        row[col["short"]] = float(f.length < 40)
        row[col["long"]] = float(f.length > 350)
        row[col["lead"]] = float(c.start < 5)
        row[col["cross"]] = float(cross)
        row[col["new_names"]] = min(new_names, 4) / 4.0
        row[col["new_numbers"]] = min(new_numbers, 4) / 4.0
        row[col["name_overlap"]] = (len(f.names & q_names) / len(q_names)) if q_names else 0.0
        props = {"date": f.has_date, "year": f.has_year, "number": f.has_number and new_numbers > 0,
                 "cause": f.has_cause, "place": f.has_place, "names": new_names > 0, "numbers": new_numbers > 0}
        for k in KINDS:
            row[col[f"q_{k}"]] = k_one[k]
            if k_one[k]:
                for p, v in props.items():
                    row[col[f"{k}_x_{p}"]] = float(v)
    return out


def cosine_score(x: np.ndarray) -> np.ndarray:
    """The previous answer stage's sentence score, from a :func:`featurize` matrix: 0.75 x the
    sentence cosine + 0.25 x its chunk's cosine + 0.15 x the share of question terms in
    sentence and title (the baseline the reader is measured against, and its ordering base)."""
    return (0.75 * x[:, FEATURES.index("dense")] + 0.25 * x[:, FEATURES.index("chunk")]
            + 0.15 * x[:, FEATURES.index("lex_title")])


def answer_type_match(x: np.ndarray) -> np.ndarray:
    """1 where a candidate holds the kind of thing its question asks for, beyond what the
    question already says (from a :func:`featurize` matrix): a date or year for *when*, a
    new number for *how many*, a new name for *who*, a place or a new name for *where*, a
    cause for *why*; 1 everywhere for the other kinds, which ask for no one type."""
    col = {name: j for j, name in enumerate(FEATURES)}
    if not len(x):
        return np.zeros(0, dtype=np.float32)
    needs = {"when": ("date", "year"), "count": ("numbers",), "who": ("names",), "where": ("place", "names"),
             "why": ("cause",)}
    for kind, props in needs.items():
        if x[0, col[f"q_{kind}"]] > 0:
            return np.max(np.stack([x[:, col[f"{kind}_x_{p}"]] for p in props]), axis=0).astype(np.float32)
    return np.ones(len(x), dtype=np.float32)


def combination_logit(combine, cross_logit, cosine, type_match):
    """The reader's combined logit, ``a * cross logit + b * cosine score + d * type match + k``
    for ``combine = (a, b, d, k)``: one definition for training (its fit) and query time."""
    a, b, d, k = combine
    return a * cross_logit + b * cosine + d * type_match + k
