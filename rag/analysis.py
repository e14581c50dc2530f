"""Light text analysis: language guess, accent folding, French-aware terms.

Used for lexical overlap when picking answer sentences, for checking that a cited
sentence holds the names and numbers of a claim, and for lexical retrieval.
"""

from __future__ import annotations

import functools
import re
import unicodedata

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


def detect_language(text: str) -> str:
    """Best guess among fr, en, es, de from stop words and accents; ``en`` when unsure."""
    toks = [w.casefold() for w in words(text)]
    if not toks:
        return "en"
    scores = {lang: sum(t in sw for t in toks) for lang, sw in STOPWORDS.items()}
    if re.search(r"[àâçéèêëîïôûùœ]", text.casefold()):
        scores["fr"] += 1.5
    if re.search(r"[ñ¿¡]", text.casefold()):
        scores["es"] += 1.5
    if re.search(r"[äöüß]", text.casefold()):
        scores["de"] += 1.5
    best = max(scores, key=scores.get)
    return best if scores[best] > 0 else "en"


@functools.lru_cache(maxsize=4)
def _stemmer(lang: str):
    import snowballstemmer

    name = {"fr": "french", "en": "english", "es": "spanish", "de": "german"}.get(lang, "english")
    return snowballstemmer.stemmer(name)


def terms(text: str, lang: str | None = None) -> list[str]:
    """Content terms: elision removed, stop words dropped, accent-folded, stemmed.

    ``l'Ukraine`` -> ``ukrain``; ``coordonne``/``coordination`` share a stem in French.
    """
    lang = lang or detect_language(text)
    stop = STOPWORDS.get(lang, frozenset()) | STOPWORDS["fr"] | STOPWORDS["en"]
    out = []
    stemmer = _stemmer(lang)
    for w in words(text):
        w = _ELISION.sub("", w.casefold())
        for part in re.split(r"[-'’]", w):
            if len(part) < 2 and not part.isdigit():
                continue
            if part in stop:
                continue
            out.append(fold(stemmer.stemWord(part)))
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
