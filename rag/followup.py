"""Follow-up questions: tell one that refers back to the conversation, and make it standalone.

A follow-up either continues the previous question ("Et en Allemagne ?", "What about
Spain?", "Y aussi ?") or holds a pronoun whose referent the question itself does not
give ("Qui l'a annoncé ?", "Quand a-t-il pris ses fonctions ?", "What did he say?").
Articles are not pronouns: "la coalition", "les pays", "en mars" are standalone, and
so is "Quand la coalition a-t-elle été créée ?", whose subject is "la coalition".

The rules are patterns over the lower-cased question, written for French and English
with a few for Spanish and German; they are meant to be cheap and predictable, not
a parser. A pronoun counts as resolved when a noun phrase (a determiner and a word,
or a capitalized name) comes before it; an English object pronoun (him, them) when two
do, since it cannot be the subject of its own clause; a possessive (son, sa, ses, leur;
his, their) when anything in the question names an entity.

Used by :meth:`rag.chat.Assistant.standalone`; :func:`needs_referent` and
:func:`clarify_message` let the assistant ask "who is 'il'?" when there is no
conversation to take the referent from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.analysis import STOPWORDS, language_scores, terms, words

__all__ = ["clarify_message", "is_follow_up", "needs_referent", "standalone"]

# Words that open a question continuing the previous one.
_CONTINUATION = {
    "fr": re.compile(r"^(?:et|aussi|puis|ensuite|sinon|idem|pareil)\b|^y aussi\b"),
    "en": re.compile(r"^(?:and|also|then|what about|how about)\b"),
    "es": re.compile(r"^(?:y|e|también|tambien|qué tal|que tal|qué hay de|que hay de)\b"),
    "de": re.compile(r"^(?:und|auch|was ist mit|wie steht es mit)\b"),
}
# A short question that ends on "too"/"aussi" is elliptical: "Et l'Espagne aussi ?".
_TRAILING_TOO = re.compile(r"\b(?:aussi|too|as well|también|tambien|auch)$")

_AUX_FR = (r"(?:a|ai|as|ont|avait|avaient|aura|auront|aurait|est|sont|était|étaient|sera|seront|"
           r"serait|y|en|lui|leur)")
_INVERTED_FR = r"[\w']+-(?:t-)?(?:il|elle|ils|elles|on)\b"
# Impersonal "il": "y a-t-il", "faut-il", "il s'agit", "il est possible".
_IMPERSONAL_FR = re.compile(
    r"\by a-t-il\b|\by avait-il\b|\by aura-t-il\b|\b(?:faut|fallait|faudra|agit|reste|suffit|pleut|importe)-(?:t-)?il\b"
    r"|\bil (?:y|faut|fallait|faudra|pleut|reste|suffit|importe|s'agit|semble)\b"
    r"|\bil (?:est|était|sera) (?:possible|impossible|temps|question|vrai|nécessaire|probable|difficile)\b"
)
_IMPERSONAL_EN = re.compile(
    r"\bit (?:takes?|took|costs?|rains?|rained|snows?|seems?|seemed|matters?)\b"
    r"|\b(?:is|was|isn't|wasn't) it (?:true|possible|likely|legal|safe|worth|necessary|too late|raining)\b"
    r"|\bit(?:'s| is| was) \w+ (?:to|that)\b|\bhow is it going\b"
)

# (pattern, kind): "person" anaphors need a name or a noun phrase before them, "thing"
# ones any noun phrase, "possessive" ones any naming word anywhere in the question.
_ANAPHORS = {
    "fr": [
        # "attendait-on", "sait-on": the indefinite "on" refers to no one in particular.
        (re.compile(r"[\w']+-(?:t-)?(?:il|elle|ils|elles)\b"), "person"),
        (re.compile(r"(?<![\w-])(?:il|elle|ils|elles)\b(?!-)"), "person"),
        (re.compile(r"\b(?:lui|eux)\b"), "person"),
        (re.compile(r"\bleurs? (?=" + _AUX_FR + r"\b|" + _INVERTED_FR + ")"), "person"),
        (re.compile(r"\b(?:celui|celle|ceux|celles)-(?:ci|là)\b|\b(?:cela|ça|ceci)\b"), "thing"),
        # object clitics, only before a verb: "l'a", "les ont", "la dirige-t-elle", "qui la dirige"
        (re.compile(r"(?:\bl'|\b(?:le|la|les) )(?=" + _AUX_FR + r"\b|" + _INVERTED_FR + ")"), "thing"),
        (re.compile(r"\b(?:qui|ne|n'|il|elle|ils|elles|on|nous|vous|pour)\s?(?:l'|(?:le|la|les) )(?=\w)"), "thing"),
        (re.compile(r"\ben (?=(?:a|ai|ont|avait|avaient|aura|sont|était|sera|y)\b|" + _INVERTED_FR + r")|\bqu'en\b"),
         "thing"),
        (re.compile(r"(?<!il )(?<![\w'])y (?!a\b|a-t-|avait|aura|aurait|avoir|aussi\b)(?=\w)"), "thing"),
        (re.compile(r"\b(?:son|sa|ses|leur|leurs)\b(?! (?:" + _AUX_FR + r")\b)"), "possessive"),
    ],
    "en": [
        (re.compile(r"\b(?:he|she|they)\b"), "person"),
        # an object pronoun never refers to the subject of its own clause ("Where did the
        # gendarmes stop them?": not the gendarmes), so it needs a second referent before it
        (re.compile(r"\b(?:him|them)\b"), "object"),
        (re.compile(r"\bit\b"), "thing"),
        (re.compile(r"\b(?:this|that|these|those)\b(?=\s*$|\s+(?:is|was|are|were|happen|happened|mean|means|say|said|"
                    r"do|does|did|have|has|had|will|would|be|been|for|about|to)\b)"), "thing"),
        (re.compile(r"(?:\b(?:did|does|do|is|was|are|were|will|would|has|have|had|about|of|with|for|by) "
                    r"(?:this|that|these|those))\s*$"), "thing"),
        (re.compile(r"\b(?:his|her|its|their|theirs)\b"), "possessive"),
    ],
    "es": [
        (re.compile(r"\b(?:él|ella|ellos|ellas)\b"), "person"),
        (re.compile(r"\b(?:lo|le|les)\b(?= \w)"), "thing"),
        (re.compile(r"\b(?:qué|que|quién|quien|no|cuándo|cuando|dónde|donde|cómo|como) (?:la|los|las) (?=\w)"), "thing"),
        (re.compile(r"\b(?:eso|esto)\b"), "thing"),
        (re.compile(r"\b(?:su|sus)\b"), "possessive"),
    ],
    "de": [
        (re.compile(r"\b(?:er|ihn|ihm|sie|ihnen)\b"), "person"),
        (re.compile(r"\b(?:es|das|dies)\b(?=\s*$| (?:gesagt|getan|passiert|bedeutet|gemacht))"), "thing"),
        (re.compile(r"\b(?:sein|seine|seinen|seinem|seiner|ihr|ihre|ihren|ihrem|ihrer)\b"), "possessive"),
    ],
}

# A noun phrase that can be a pronoun's referent: a determiner then a word.
_NOUN_PHRASE = {
    "fr": re.compile(r"(?:\b(?:le|la|les|un|une|des|du|au|aux|ce|cet|cette|ces) |\bl')[a-zà-ÿœ]{3,}"),
    "en": re.compile(r"\b(?:the|a|an|this|that|these|those|my|your|our) [a-z]{3,}"),
    "es": re.compile(r"\b(?:el|la|los|las|un|una|unos|unas|este|esta|estos|estas|del|al) [a-záéíóúñ]{3,}"),
    "de": re.compile(r"\b(?:der|die|das|den|dem|des|ein|eine|einen|einem|einer) [a-zäöüß]{3,}"),
}

_QUESTION_WORDS = frozenset("""
    qui que quoi quel quelle quels quelles quand où comment combien pourquoi lequel laquelle lesquels est-ce qu
    who whom whose what which when where why how
    quién quien qué que cuál cual cuándo cuando dónde donde cómo como cuánto cuanto cuántos cuantos por porqué
    wer wen wem wessen was welche welcher welches wann wo wie warum wieso weshalb wieviel
""".split())
_PRONOUNS = frozenset("""
    il elle ils elles lui leur leurs eux son sa ses cela ça ceci celui celle ceux celles on y en
    he she him her his they them their theirs it its this that these those i you we
    él ella ellos ellas lo le les su sus eso esto er sie es ihn ihm ihnen sein seine ihr ihre
""".split())
_FUNCTION_WORDS = frozenset().union(*STOPWORDS.values(), _QUESTION_WORDS, _PRONOUNS, """
    a-t-il a-t-elle a-t-ils a-t-elles est-il est-elle sont-ils sont-elles ont-ils ont-elles
    aussi également then also too about and et y und did does do is was were are been
""".split())

_CLARIFY = {
    "fr": ("De qui ou de quoi parlez-vous ? Votre question renvoie à quelqu'un ou à quelque chose "
           "(« il », « elle », « l' »…) sans le nommer : reformulez-la avec le nom, par exemple "
           "« Quand Emmanuel Macron l'a-t-il annoncé ? »."),
    "en": ("Who or what does your question refer to? It points to someone or something (\"he\", \"she\", "
           "\"it\"…) without naming them: please ask again with the name, for example \"When did Emmanuel "
           "Macron announce it?\""),
    "es": ("¿De quién o de qué habla? Su pregunta se refiere a alguien o algo («él», «ella», «lo»…) "
           "sin nombrarlo: vuelva a formularla con el nombre."),
    "de": ("Wen oder was meinen Sie? Ihre Frage verweist auf jemanden oder etwas („er“, „sie“, „es“…), "
           "ohne es zu nennen: bitte stellen Sie sie mit dem Namen erneut."),
}


def is_follow_up(question: str, lang: str | None = None) -> bool:
    """Whether ``question`` refers back to an earlier one and cannot be searched as it stands.

    True for a continuation ("Et pour l'Espagne ?", "What about Spain?"), a bare
    ellipsis ("Pourquoi ?", "And when?"), or a pronoun whose referent the question
    does not give ("Qui l'a annoncé ?", "Combien en a-t-il ?", "What did he say?").

    Args:
        question: the user's question.
        lang: ``fr``, ``en``, ``es`` or ``de``; guessed from the question when None.
    """
    q, lang = _prepare(question, lang)
    if not q:
        return False
    return _continues(q, lang) or _is_ellipsis(q) or bool(_unresolved(q, question, lang, anywhere=False))


def needs_referent(question: str, lang: str | None = None) -> bool:
    """Whether ``question`` cannot be answered without knowing whom or what it refers to.

    For when there is no conversation to take the referent from: a person pronoun
    with no name or noun phrase before it ("Quand l'a-t-il annoncé ?", "What did he
    say about the reform?", "How old is she?"), a thing pronoun with no noun phrase
    anywhere ("Combien ça coûte ?"), or a bare ellipsis ("Et pourquoi ?"). A
    continuation that names its subject ("Et en Allemagne ?") can be searched.
    """
    q, lang = _prepare(question, lang)
    if not q:
        return False
    return _is_ellipsis(q) or bool(_unresolved(q, question, lang, anywhere=True))


def standalone(question: str, previous_questions: Sequence[str], lang: str | None = None,
               previous_answer: str = "") -> str:
    """The question to search for: a follow-up with the previous question's key terms added.

    The key terms are the previous question's content words, names kept as written,
    with the little words between two of them kept so that it reads ("maire de
    Marseille"); a previous question that was itself a follow-up is made standalone
    first. When the follow-up's pronoun stands for a person ("How old is he?") and the
    ``previous_answer`` named people the previous question did not ("Who was the man
    arrested in Glasgow?" answered « Guy Joao, un retraité… »), they are who "he" is:
    their names come first. A question that is no follow-up, or has no previous
    question, is returned unchanged.

    Example: ``standalone("Et quand a-t-il pris ses fonctions ?", ["Qui est le maire de
    Marseille ?"])`` -> ``"Et quand a-t-il pris ses fonctions ? (maire de Marseille)"``.
    """
    if not previous_questions or not is_follow_up(question, lang):
        return question
    previous = standalone(previous_questions[-1], previous_questions[:-1])
    carry = key_phrase(previous, exclude=question)
    people = _answer_people(question, previous, previous_answer, lang) if previous_answer else []
    carry = "; ".join([", ".join(people)] * bool(people) + [carry] * bool(carry))
    if not carry:
        return question
    return f"{question.rstrip()} ({carry})"


def _answer_people(question: str, previous: str, answer: str, lang: str | None) -> list[str]:
    """The people ``answer`` names that ``previous`` does not, when ``question`` refers to a person."""
    from rag.persons import person_names

    q, lang = _prepare(question, lang)
    if not any(kind in ("person", "object", "possessive") for _, kind in
               _unresolved(q, question, lang, anywhere=False, kinds=True)):
        return []
    quoted = " ".join(re.findall(r"«([^»]*)»", answer)) or answer
    out = []
    for name in person_names(quoted, previous + " " + question):
        if not any(name in o or o in name for o in out):
            out.append(name)
    return out[:2]


def key_phrase(text: str, *, exclude: str = "", max_words: int = 8) -> str:
    """The content words of ``text`` that ``exclude`` does not already have, as a short phrase."""
    text = re.sub(r"[()]", " ", text)
    lang = _language(text)
    have = set(terms(exclude, lang)) if exclude else set()
    toks = words(text)
    keep = []
    for i, w in enumerate(toks):
        t = terms(w, lang)
        content = bool(t) and w.casefold() not in _FUNCTION_WORDS and len(w) > 1
        keep.append(content and not set(t) <= have)
    kept = [i for i, k in enumerate(keep) if k]
    if not kept:
        return ""
    out = []
    i = kept[0]
    while i <= kept[-1]:
        if keep[i]:
            out.append(toks[i])
            i += 1
            continue
        # Little words between two kept ones stay: "maire de Marseille", "ministre de la Santé".
        j = i
        while j < kept[-1] and not keep[j] and toks[j].casefold() in _LINKS:
            j += 1
        if keep[j] and j - i <= 2 and keep[i - 1]:
            out.extend(toks[i:j])
        i = j if j > i else i + 1
    return " ".join(out[:max_words])


_LINKS = frozenset("de des du d la le les l of the for del von der den".split())


def clarify_message(lang: str) -> str:
    """What to ask the user when a question's pronoun has no referent (French, English, Spanish, German)."""
    return _CLARIFY.get(lang, _CLARIFY["en"])


# Short French questions can hold no stop word at all ("Qu'en pense-t-il ?"), and then
# the language guess falls back to English.
_FRENCH_CUES = re.compile(r"\b(?:qu|l|d|n|s|j|c)'|-t-(?:il|elle|on)\b|\w-(?:il|elle|ils|elles)\b", re.IGNORECASE)


def _language(question: str) -> str:
    scores = language_scores(question)
    lang = max(scores, key=scores.get) if scores else "en"
    if lang not in _ANAPHORS:
        # The rules below exist for a few languages: a short question the identifier
        # gives to a neighbour ("Qui la dirige ?": Catalan) takes the likeliest of them.
        ours = {k: v for k, v in scores.items() if k in _ANAPHORS}
        lang = max(ours, key=ours.get) if ours else "en"
    if lang == "en" and _FRENCH_CUES.search(question.replace("’", "'")) and not (
            set(w.casefold() for w in words(question)) & STOPWORDS["en"]):
        return "fr"
    return lang


def _prepare(question: str, lang: str | None) -> tuple[str, str]:
    lang = lang or _language(question)
    q = question.replace("’", "'").casefold()
    q = re.sub(r"[¿¡?!.…«»\"“”:;,]", " ", q)
    q = " ".join(q.split())
    return q, lang if lang in _ANAPHORS else "en"


def _continues(q: str, lang: str) -> bool:
    if _CONTINUATION[lang].search(q):
        return True
    return len(q.split()) <= 4 and bool(_TRAILING_TOO.search(q))


def _is_ellipsis(q: str) -> bool:
    """A question of question words and little else: "Pourquoi ?", "And when?", "Et alors ?"."""
    toks = q.split()
    return len(toks) <= 3 and all(t in _FUNCTION_WORDS or t in ("alors", "so", "entonces", "dann") for t in toks)


def _unresolved(q: str, original: str, lang: str, *, anywhere: bool, kinds: bool = False) -> list:
    """The anaphors of ``q`` (lower-cased, see :func:`_prepare`) that nothing in the question
    resolves (with ``kinds``, as ``(text, kind)``: ``person``, ``object``, ``possessive``, ``thing``)."""
    found = []
    spans = []
    for pattern, kind in _ANAPHORS[lang]:
        for m in pattern.finditer(q):
            spans.append((m.start(), m.end(), kind))
    if not spans:
        return []
    impersonal = _IMPERSONAL_FR if lang == "fr" else _IMPERSONAL_EN if lang == "en" else None
    if impersonal is not None:
        skip = [m.span() for m in impersonal.finditer(q)]
        spans = [s for s in spans if not any(a <= s[0] < b for a, b in skip)]
    clitics = {s for s, _, kind in spans if kind == "thing"}
    # noun phrases, minus the clitics that look like determiners ("qui la dirige")
    phrases = [m.start() for m in _NOUN_PHRASE[lang].finditer(q) if not _overlaps(m.start(), m.end(), spans, clitics)]
    named = _name_positions(original, q, lang)
    anchors = sorted(phrases + named)
    for start, _, kind in spans:
        if kind == "possessive":
            unresolved = not anchors
        elif kind == "object":
            unresolved = sum(a < start for a in anchors) < 2
        elif kind == "person" or not anywhere:
            unresolved = not any(a < start for a in anchors)
        else:
            unresolved = not anchors
        if unresolved:
            found.append((q[start:], kind) if kinds else q[start:])
    return found


def _overlaps(start: int, end: int, spans: list[tuple[int, int, str]], clitics: set[int]) -> bool:
    return any(start <= s < end or s <= start < e for s, e, kind in spans if s in clitics)


# Capitalized first words that are no names.
_OPENING_WORDS = frozenset("""
    depuis pendant après malgré durant contre chez selon sauf hormis parmi concernant lorsque puisque
    since according despite besides whether during after before okay ok please
    desde según durante seit nach trotz
""".split())


def _name_positions(original: str, q: str, lang: str) -> list[int]:
    """Where capitalized names are in ``q``: words written with a capital that are not function words.

    In German every noun is capitalized, which is what a referent needs there too.
    """
    out = []
    pos = 0
    for w in words(original.replace("’", "'")):
        bare = re.sub(r"^(?:l|d|qu|s|n|c)'", "", w, flags=re.IGNORECASE)
        low = w.casefold()
        at = q.find(low, pos)
        if at < 0:
            continue
        pos = at + len(low)
        if (bare[:1].isupper() and len(bare) > 1 and bare.casefold() not in _FUNCTION_WORDS
                and bare.casefold() not in _OPENING_WORDS):
            out.append(at)
    return out
