"""What kind of answer a question asks for: a fact, several facts, a summary, or a list of articles.

The answer stage shapes its reply by this: one quote for a fact; one quote per part
for "X, and Y?"; an article's lead and central sentences for "summarize …"; the
matching articles, newest first, for "which articles cover …". Rules are about how
people phrase these requests in French and English, not about any one question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SUMMARY = re.compile(
    r"^\s*(peux-tu |pouvez-vous |can you |could you |please )?"
    r"(résume[rz]?|résumé|fais(-moi)? un résumé|faites(-moi)? un résumé|en bref|synthétise[rz]?|"
    r"summari[sz]e|give me a summary|a summary of|summary of|tl;?dr|brief me)\b"
    r"|\b(de quoi parle|que dit|que raconte|what does .{1,60} say|what is .{0,40}article about|"
    r"quel est le (sujet|contenu) de)\b.*\barticle",
    re.IGNORECASE)
_ARTICLES = re.compile(
    r"\b(quels|quelles|which|what|combien d['’]|how many)\s+(articles?|dépêches?|papiers?|reportages?|stories|"
    r"reports?|pieces?|news items?)\b"
    r"|\b(list|liste[rz]?|énumère[rz]?|cite[rz]?)\b.{0,30}\b(articles?|stories|dépêches?)\b"
    r"|\barticles? (qui|that|which) (parlent|parle|mentionnent|mentionne|traitent|traite|évoquent|évoque|"
    r"couvrent|couvre|mention|cover|covers|discuss|talk about|report on)\b",
    re.IGNORECASE)
# "X, et Y ?" / "X and Y?": a second interrogative after a coordination.
_INTERROGATIVE = (r"(?:qui|quand|où|combien|comment|pourquoi|quel|quelle|quels|quelles|que|qu['’]|quoi|lequel|laquelle|"
                  r"who|when|where|how|why|what|which|whom|whose|est-ce|is|are|was|were|did|does|do)")
# The second interrogative may follow a preposition ("et dans quelle prison", "and on what
# date", "et d'où"); after a comma, a yes/no question with an inverted subject is a part too
# (", et son arme était-elle réelle ?").
_PREPOSITION = (r"(?:à|au|aux|dans|de|du|des|en|par|pour|sur|avec|chez|vers|depuis|contre|selon|"
                r"on|in|at|from|for|to|by|with|since|into|under|after|before)")
_SECOND = (rf"(?:{_PREPOSITION}\s+)?{_INTERROGATIVE}\b|d['’]où\b")
_SPLIT = re.compile(rf"(?:,\s*|\s+)(?:et|and|ainsi que|puis|then|also|aussi|,)\s+(?={_SECOND})"
                    rf"|,\s*(?:et|and)\s+(?=[^,?]*\w-(?:t-)?(?:il|elle|ils|elles|on)\b[^,]*\?\s*$)"
                    rf"|\s*[;?]\s*(?={_SECOND})", re.IGNORECASE)


@dataclass(frozen=True)
class Intent:
    """``kind`` is ``fact``, ``multi``, ``summary`` or ``articles``; ``parts`` the sub-questions of ``multi``."""

    kind: str
    parts: tuple[str, ...] = ()


def question_parts(question: str) -> list[str]:
    """The sub-questions of a multi-part question ("how many died, and who were the victims?").

    A part keeps the subject of the first when it lacks one of its own; a question
    with a single interrogative is one part.
    """
    pieces = [p.strip(" ,;") for p in _SPLIT.split(question) if p and p.strip(" ,;?")]
    if len(pieces) < 2:
        return [question]
    # "Quand et où a eu lieu le sommet ?": a bare interrogative borrows the rest of the next part.
    for i in range(len(pieces) - 2, -1, -1):
        if len(pieces[i].split()) == 1:
            rest = re.sub(rf"^\s*{_INTERROGATIVE}\b\s*", "", pieces[i + 1], flags=re.IGNORECASE)
            pieces[i] = f"{pieces[i].rstrip(' ?')} {rest}"
    # "Quand a-t-il été vu pour la dernière fois, et où ?": a bare interrogative at the end
    # borrows the rest of the part before it.
    if len(pieces[-1].rstrip(" ?").split()) == 1 and len(pieces[-2].split()) > 1:
        rest = re.sub(rf"^\s*{_INTERROGATIVE}\b\s*", "", pieces[-2], flags=re.IGNORECASE)
        pieces[-1] = f"{pieces[-1].rstrip(' ?')} {rest}"
    out = []
    for p in pieces:
        p = p.strip()
        if not p.endswith("?"):
            p += " ?" if re.search(r"[àâçéèêëîïôûùœ]| (le|la|les|des|du|de) ", question.casefold()) else "?"
        out.append(p)
    return out


def classify(question: str) -> Intent:
    """The :class:`Intent` of ``question``."""
    if _ARTICLES.search(question):
        return Intent("articles")
    if _SUMMARY.search(question):
        return Intent("summary")
    parts = question_parts(question)
    if len(parts) > 1:
        return Intent("multi", tuple(parts))
    return Intent("fact")


def topic_of(question: str) -> str:
    """The subject of a list or summary request, the request words removed
    ("Quels articles parlent de la grève SNCF ?" -> "la grève SNCF")."""
    q = _ARTICLES.sub(" ", question)
    q = _SUMMARY.sub(" ", q)
    # The verb that follows "which articles" and its preposition: "parlent de", "report",
    # "are about", "racontent", "quote"… (any one or two words before de/sur/about, or a known verb).
    verb = re.compile(r"^\W*(?:(?:qui|that|which)\s+)?(?:(?:[\w'’-]+\s+){0,2}?(?:de|du|des|d['’]|sur|about|on|of)\b|"
                      r"(?:mentionn?e?n?t?|mention|mentions|parlent|parle|cover|covers|covered|report|reports|quote|"
                      r"quotes|discuss|describe|describes|racontent|raconte|évoquent|évoque|traitent|traite|couvrent|"
                      r"couvre|citent|cite|relatent|relate)\b)", re.IGNORECASE)
    q = verb.sub(" ", q.strip(), count=1)
    lead = re.compile(r"^\W*(?:de|du|des|d['’]|sur|about|on|of|the|l['’]article|article|l['’]|le|la|les|a|an|"
                      r"qui|that|which)(?:\b|(?<=['’]))\W*", re.IGNORECASE)
    while (stripped := lead.sub("", q.strip())) != q.strip():
        q = stripped
    q = " ".join(q.replace("?", " ").split()).rstrip(" .!")
    return q or question
