"""When to say "the articles do not contain the answer".

The reader's probability that the sentence it would quote answers the question is
the evidence; it is calibrated on held-out questions, so it means what it says
(``rag eval`` prints its reliability curve). Two checks that are true of language
lower it: what the question asks for that the sentence lacks (a person's name for "comment
s'appelle le chauffeur ?", :mod:`rag.persons`), a number the question names (a year, an amount) that the cited article
never mentions, and, when question and article share a language, a proper name of
the question the article never mentions. A question about "the 2018 World Cup" over
an article that never says 2018 is about something else, however close the topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.analysis import fold, names, numbers, strip_elision, words


# News says so when a fact is not known yet: "son identité n'a pas été communiquée", "il
# n'était pas établi s'il s'agissait de…", "the cause remains unknown". Such a sentence is
# the article's answer: the fact is missing.
_UNKNOWN = re.compile(
    r"\b(?:n['’](?:a|ont|avait|avaient|est|était|étaient|sont|ai)\s+pas\s+(?:encore\s+|immédiatement\s+|)"
    r"(?:été\s+)?(?:établi|précisé|communiqué|dévoilé|révélé|connu|identifié|déterminé|divulgué|rendu public|"
    r"confirmé)\w*"
    r"|n['’](?:est|était|étaient|sont)\s+pas\s+(?:encore\s+)?(?:connu|établi|déterminé|clair)\w*"
    r"|(?:reste|restent|restait|restaient|demeure|demeurent|demeurait)\s+(?:encore\s+)?(?:inconnu|indéterminé|"
    r"flou|mystérieu|incertain)\w*"
    r"|on\s+(?:ignore|ne\s+sait\s+pas|ne\s+connaît\s+pas)|(?:nul|personne)\s+ne\s+sait|sans\s+plus\s+de\s+précisions?"
    r"|(?:has|have|had|was|were|is|are)\s+not\s+(?:yet\s+|immediately\s+)?(?:been\s+)?(?:released|disclosed|"
    r"established|confirmed|identified|made public|revealed|known|determined|clear)"
    r"|(?:remains?|remained)\s+(?:unknown|unclear|undetermined|a mystery)|it\s+is\s+(?:not|un)\s*(?:yet\s+)?"
    r"(?:known|clear)|no\s+one\s+knows"
    # "les enquêteurs cherchent à identifier l'auteur", "leurs investigations pour trouver les
    # auteurs", "police are trying to identify him": still looked for, so not known.
    r"|(?:cherchent|cherche|tentent|tente|essaient|essaie|essayent|s['’]efforcent|s['’]efforce)\s+"
    r"(?:toujours\s+|encore\s+)?(?:à|a|de|d['’])\s*(?:identifier|déterminer|établir|"
    r"retrouver|trouver|élucider|localiser)"
    r"|(?:enquêtes?|investigations?|recherches?)\s+pour\s+(?:identifier|déterminer|établir|retrouver|trouver|"
    r"élucider|localiser)"
    r"|(?:(?:is|are|were|was)\s+(?:still\s+)?(?:trying|seeking|working|attempting))\s+to\s+(?:identify|determine|establish|find|locate|trace))\b",
    re.IGNORECASE)


def states_unknown(sentence: str) -> bool:
    """Whether ``sentence`` says that something is not known ("l'identité n'a pas été communiquée")."""
    return bool(_UNKNOWN.search(sentence))


@dataclass(frozen=True)
class Decision:
    """``refuse`` or not, the calibrated ``confidence`` after the checks, and the anchors missing."""

    refuse: bool
    confidence: float
    missing: tuple[str, ...] = ()


def missing_anchors(question: str, texts: Sequence[str], *, with_names: bool = True) -> list[str]:
    """Numbers (and names) of ``question`` that occur in none of ``texts``.

    Names match on a folded 5-letter prefix ("Russia" finds "Russie"); they are only
    checked when question and text share a language ("Putin" is "Poutine").
    """
    text = " ".join(texts)
    have_numbers = numbers(text)
    # "l'Aisne", "d'Emmanuel": the name without its elided article, as names() gives it.
    have_prefixes = {fold(strip_elision(w))[:5] for w in words(text)}
    missing = sorted(numbers(question) - have_numbers)
    if with_names:
        missing += sorted(n for n in names(question) if n[:5] not in have_prefixes)
    return missing


class RefusalPolicy:
    """Refuses when the calibrated probability falls below ``threshold``.

    Args:
        threshold: for a question in the articles' language.
        threshold_cross: for a question in another language (the reader's cosines run lower).
        anchor_factor: the probability is multiplied by this for each missing anchor (at most two).
    """

    def __init__(self, threshold: float, threshold_cross: float, anchor_factor: float = 0.35):
        self.threshold = threshold
        self.threshold_cross = threshold_cross
        self.anchor_factor = anchor_factor

    def decide(self, question: str, probability: float, article_texts: Sequence[str], *, cross: bool,
               unmet: Sequence[str] = (), held: bool = False) -> Decision:
        """Decide from the best sentence's ``probability`` and the texts of the article(s) it comes from.

        ``unmet`` names what the question asks for that the quoted sentence lacks (``"a
        person's name"``, see :mod:`rag.persons`): the sentence does not answer, whatever
        its probability, so the decision is to refuse. ``held`` says the sentence holds the
        quantity the question sets (an age, an amount, a share, a time of day, a number of
        the counted thing: :mod:`rag.focus`): that counts for it as much as a missing anchor
        counts against (the probability is divided by ``anchor_factor``), when no anchor is
        missing."""
        missing = tuple(missing_anchors(question, article_texts, with_names=not cross))
        p = probability * self.anchor_factor ** min(len(missing) + 2 * len(unmet), 2)
        if held and not missing and not unmet:
            p = min(1.0, p / self.anchor_factor)
        threshold = self.threshold_cross if cross else self.threshold
        return Decision(bool(unmet) or p < threshold, round(float(p), 4), missing + tuple(unmet))
