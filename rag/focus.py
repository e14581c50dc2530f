"""What the answer to a question must hold, beyond being about its subject.

"Quel âge a l'homme interpellé ?" is answered by "l'homme de 57 ans", not by the sentence
that tells of the arrest; "Combien a coûté le déplacement ?" by an amount of money; "À
quelle heure l'incendie s'est-il déclaré ?" by a time of day; "Combien de tonnes ont
brûlé ?" by a number of tonnes. A sentence without it does not answer, however close it is
to the subject, and when no candidate has it the articles do not hold the fact. How news
(and any prose) writes an age, an amount, a share, a time of day or a quantity is regular,
in French as in English:

========  =====================================================  =================================
focus     asked by                                               held by
========  =====================================================  =================================
age       quel âge, à quel âge, how old, at what age             "57 ans", "âgé de 57", "a 57-year-old"
money     combien a coûté / payé, quel montant, how much … cost  a number with a currency ("9 000 euros")
share     quel pourcentage, quelle part, what percentage         "43 %", "pour cent", "la moitié"
clock     à quelle heure, at what time                           "vers 2h30", "22 heures", "dans la soirée"
unit      combien de tonnes, how many households                 a number of that unit ("50 000 foyers")
          combien de personnes ont été interpellées              a number with that participle
since     depuis quand, since when, how long has                 "depuis 1954", "since 2008", "depuis dix ans"
named     sur quelle île, quel article, in which commune         the noun and a name or number after it
                                                                 ("l'île d'Innarsuit", "l'article 6")
========  =====================================================  =================================

The first four are *strict*: a sentence lacking them does not answer, and refusal refuses.
``unit`` is strict for units of measure ("combien de tonnes", "how many kilometres": a
quantity is always written with its unit) and otherwise only chooses between candidates:
"combien d'habitants" is also answered by "une population de 300 000 personnes"; so is
``named``, for the few nouns news writes before a place's or a text's own name, and
``since``, for a start is written in more ways than "depuis" and a date. Units
are compared by their first five folded letters within the question's language; an English
unit over French text goes through the short table of news count nouns below, and is not
checked when it is not there. A day ("à quelle date") is no focus: on PIAF half the
sentences answering "à quelle date" give only a year or a month. How often the sentence
holding a gold answer holds its question's focus is measured on PIAF and XQuAD by
``eval/focus_recall.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.analysis import fold

_NUM_WORDS = (r"un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|"
              r"vingt|trente|quarante|cinquante|soixante|septante|octante|nonante|cent|cents|mille|million|"
              r"millions|milliard|milliards|dizaine|dizaines|douzaine|centaine|centaines|millier|milliers|"
              r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fifteen|twenty|thirty|"
              r"forty|fifty|sixty|seventy|eighty|ninety|hundred|hundreds|thousand|thousands|million|millions|"
              r"billion|billions|dozen|dozens|uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|cien|mil|"
              r"ein|eine|zwei|drei|vier|funf|sechs|sieben|acht|neun|zehn|hundert|tausend")
# A number as written (folded text): digits with their separators, or number words.
_NUM = rf"(?:\d+(?:[.,\s]\d+)*|\b(?:{_NUM_WORDS})\b(?:[\s-]+(?:et[\s-]+)?\b(?:{_NUM_WORDS})\b)*)"

_AGE_Q = re.compile(r"\b(?:quel age|a quel age|age de combien|how old|(?:at|of) what age|what (?:is|was|were|are) "
                    r"(?:the |his |her |their )?ages?|what age|que edad|cuantos anos|wie alt|in welchem alter)\b")
_AGE_S = re.compile(rf"(?:{_NUM}\s*(?:(?:millions?|milliards?|millones|millionen|milliarden|billion|million)\s+(?:de\s+|d')?)?"
                    r"(?:ans\b|-?years?[\s-]old|-year-old|years ago|anos\b|jahren?\b|-?jahrig)|\b\w+iemes? annee\b|"
                    rf"\bages?\s+(?:de\s+)?{_NUM}|\baged\s+{_NUM}|\bedad de\s+{_NUM}|\balter von\s+{_NUM}|"
                    r"\b(?:trent|quarant|quinquag|sexag|septuag|octog|nonag|cent)en\w*|\bdecede\w* a \d|"
                    r"\bin (?:his|her) (?:twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b)")

_MONEY_NOUNS = (r"montant|cout|somme|amende|budget|salaire|rancon|indemnite|indemnisation|tarif|loyer|"
                r"facture|dette|cagnotte|recompense|enchere|caution|cheque|pension|bourse|subvention")
_MONEY_Q = re.compile(
    rf"\b(?:(?:quel|quelle|quels|quelles) (?:est |etait |sont |a ete |sera )?(?:le |la |l'|les )?(?:{_MONEY_NOUNS})\b|"
    r"combien (?:(?:a|ont|avait|avaient|aura|auront|va|vont|doit|doivent|a-t-il|a-t-elle|ont-ils|ont-elles)\s+)?"
    r"(?:(?:du|pu|dû)\s+)?(?:\w+\s+){0,4}?(?:coute\w*|cout\w*|pay\w*|verse\w*|gagn\w*|touch\w*|depens\w*|rapport\w*|"
    r"factur\w*|vaut|valent|valai\w*|rembours\w*|percu\w*|recu|investi\w*|leve\w*|debours\w*|economis\w*)|"
    r"how much (?:money|\w+ (?:cost|costs|pay|paid|spend|spent|earn|earned|charge|charged|raise|raised|receive|"
    r"received|owe|owed|invest|invested|sell|sold|buy|bought|worth)|(?:did|does|do|will|would|was|is|were|has|have|had) "
    r"(?:\w+\s+){0,6}?(?:cost|pay|spend|earn|charge|raise|receive|owe|invest|fetch|sell for|worth))|"
    r"(?:est|etait) le prix|a quel prix|what (?:was |is |were |are )?(?:the |his |her |their )?(?:price|cost|fine|"
    r"budget|salary|ransom|compensation|bill|fee|fees|reward)\b|what (?:was |is )?the (?:amount|sum) (?:paid|of money|of the)|"
    r"cuanto (?:cuesta|costo|costaba|pago|gano)|"
    r"wie viel (?:kostet|kostete|zahlte|verdiente))")
_MONEY_S = re.compile(
    rf"(?:{_NUM}\s*(?:(?:millions?|milliards?|billions?|millones|millionen|mille|k)\s+(?:de |d')?)?"
    r"(?:€|euros?\b|eur\b|\$|dollars?\b|£|livres? sterling|pounds?\b|francs?\b|yuans?\b|yens?\b|dinars?\b|"
    r"dirhams?\b|roubles?\b|pesos?\b|centimes?\b|cents?\b|dolares\b|pesetas\b|mark\b|reais\b|roupies\b|livres?\b|"
    r"usd\b|eur\b|chf\b|gbp\b|cad\b|dm\b|"
    r"francs cfa|couronnes\b|zlotys?\b|bitcoins?\b)|[€$£]\s*\d|\bgratuit\w*|\bfree of charge\b|\bpour rien\b|"
    rf"(?:{_NUM}|quelques|plusieurs|des)\s+(?:millions?|milliards?|billions?)\b)")

_SHARE_Q = re.compile(r"\b(?:quel (?:pourcentage|taux)|quelle (?:part|proportion)|(?:what|which) (?:percentage|share|"
                      r"proportion|percent|rate)|what (?:is|was|were) the (?:percentage|share|proportion|rate)|"
                      r"approval rating|combien de (?:%|pour cent|pourcent)|how many (?:percent|per cent)|"
                      r"que porcentaje|wie viel prozent|wie hoch (?:ist|war) der anteil)\b")
_SHARE_S = re.compile(rf"(?:%|\bpour ?cent\b|\bpourcent\w*|\bper ?cent\b|\bpoints?\b|\bmoitie\b|\btiers\b|\bquarts?\b|"
                      r"\bmajorite\b|\bunanimite\b|\bhalf\b|\bthirds?\b|\bquarters?\b|\bmajority\b|\bporciento\b|"
                      r"\bprozent\b|\bmitad\b|\bhalfte\b|\d+ sur \d+|\d+ out of \d+|\d+ (?:in|on) \d+|"
                      rf"\b(?:un|une|one|a) (?:sur|in|out of) {_NUM})")

_CLOCK_Q = re.compile(r"\b(?:a quelle heure|vers quelle heure|(?:a partir|aux alentours) de quelle heure|at what time|"
                      r"what time(?! (?:frame|period|span|range|scale|of (?:the )?year))|(?:at )?which time of (?:the )?day|a que hora|"
                      r"um wie viel uhr)\b")
_CLOCK_S = re.compile(r"(?:\b\d{1,2}\s?h\s?\d{0,2}\b|\b\d{1,2}[:.]\d{2}\b|\bheures?\b|\bmidi\b|\bminuit\b|\bmatin\w*|"
                      r"\bsoir\w*|\bnuit\b|\baube\b|\bapres-midi\b|\bo'clock\b|\b\d{1,2}\s?[ap]\.?m\b|\bnoon\b|"
                      r"\bmidnight\b|\bmorning\b|\bevening\b|\bnight\b|\bafternoon\b|\bdawn\b|\buhr\b|\bhoras?\b|"
                      r"\bmanana\b|\btarde\b|\bnoche\b|\bmorgens\b|\babends\b|\bnachts\b)")

# "Combien de tonnes", "how many households", "quel nombre de vols": the counted noun.
_UNIT_Q = re.compile(r"\b(?:(?:combien|quel nombre|quelle quantite)\s+(?:de\s+|d'|des\s+)|(?:how many|"
                     r"what number of|cuant[oa]s|wie viele)\s+)(?:(?:nouveaux?|nouvelles?|autres?|other|new|more|"
                     r"de plus)\s+)?"
                     r"(?P<head>[a-z][\w-]*)(?:\s+(?P<head2>[a-z][\w-]*))?")
# Counted nouns that mean people: answered by any number of any people ("263 blessés",
# "51 fidèles", "5 personnes"), so not checked.
_PEOPLE = frozenset("""
    personne personnes gens people persons habitant habitants victime victimes mort morts blesse blesses deces
    participant participants manifestant manifestants enfant enfants adulte adultes eleve eleves etudiant
    etudiants salarie salaries employe employes agent agents policier policiers gendarme gendarmes militaire
    militaires soldat soldats pompier pompiers touriste touristes passager passagers spectateur spectateurs
    fidele fideles membre membres joueur joueurs candidat candidats electeur electeurs patient patients malade
    malades migrant migrants refugie refugies detenu detenus otage otages suspect suspects homme hommes femme
    femmes individu individus visiteur visiteurs supporter supporters supporteur supporteurs
    inhabitants residents victims dead deaths injured wounded participants protesters demonstrators children
    adults pupils students employees workers officers police policemen soldiers firefighters tourists passengers
    spectators members players candidates voters patients migrants refugees prisoners inmates hostages suspects
    men women individuals visitors fans casualties fatalities survivors
""".split())
# Counted nouns that ask for no count of a thing: "combien de fois", "how many times".
_TIMES = frozenset("fois times veces mal reprises temps".split())
# Units of measure: a quantity of them is always written with the unit ("5.000 tonnes", "3.700
# km"), so a sentence without it does not answer "combien de tonnes" (a strict focus).
_MEASURES = frozenset("""
    tonnes tonne tons ton kilos kilo kilogrammes kilogramme kilograms kg grammes gramme grams km kilometres
    kilometre kilometers kilometer metres metre meters meter centimetres centimetre centimeters cm millimetres
    millimeters mm hectares hectare ha litres litre liters liter degres degre degrees watts kilowatts megawatts
    gigawatts miles
""".split())
# How units of measure are abbreviated (folded).
_ABBREVIATIONS = {
    "centimetres": ("cm",), "centimetre": ("cm",), "centimeters": ("cm",), "kilometres": ("km",), "kilometre": ("km",),
    "kilometers": ("km",), "metres": ("m",), "metre": ("m",), "meters": ("m",), "millimetres": ("mm",),
    "millimeters": ("mm",), "kilogrammes": ("kg",), "kilos": ("kg",), "kilograms": ("kg",), "grammes": ("g",),
    "hectares": ("ha",), "litres": ("l",), "liters": ("l",), "tonnes": ("t",), "degres": ("°",), "degrees": ("°",),
}
# Words after "how many" that are no noun: "how many more", "how many of".
_STOP_AFTER = frozenset("of did do does were was are is have has had will would could can more in at on".split())
# The participle after a number of people: "combien de personnes ont été interpellées", "how
# many people were (reportedly) injured" (an event's count; "combien de personnes vivent…"
# is answered in too many ways to check).
_PEOPLE_VERB = re.compile(r"\s+(?:ont ete|avaient ete|auraient ete|seront|sont|etaient|were|have been|had been|"
                          r"are|got)\s+(?:\w+(?:ly|ment)\s+)?(?P<verb>[a-z]{4,}(?:e|es|s|ed|en|t)\b)")
# English verbs of news counts of people, and their French stems (folded, first five letters).
_EN_FR_VERBS = {
    "injured": ("bless",), "wounded": ("bless",), "hurt": ("bless",), "killed": ("tues", "tue", "morts", "abatt", "decede"),
    "died": ("morts", "mort", "decede", "peri", "victi"), "dead": ("morts", "mort"), "arrested": ("inter", "arret", "garde"),
    "detained": ("deten", "garde", "inter"), "evacuated": ("evacu",), "rescued": ("secou", "sauve"),
    "hospitalised": ("hospi",), "hospitalized": ("hospi",), "infected": ("infec", "conta", "posit"),
    "displaced": ("depla", "evacu"), "missing": ("dispa",), "affected": ("touch", "conce"),
    "employed": ("emplo", "salar"), "expected": ("atten",), "vaccinated": ("vacci",),
}
# English count nouns of news, and how French writes them (folded).
_EN_FR_UNITS = {
    "households": ("foyer", "menag", "abonn"), "homes": ("foyer", "logem", "maiso", "habit"),
    "houses": ("maiso", "logem", "habit"), "flights": ("vols", "vol"), "trains": ("train",),
    "cars": ("voitu", "vehic"), "vehicles": ("vehic", "voitu"), "tonnes": ("tonne",), "tons": ("tonne",),
    "kilometres": ("km", "kilom"), "kilometers": ("km", "kilom"), "km": ("km", "kilom"), "miles": ("mille", "miles"),
    "metres": ("metre", "m"), "meters": ("metre", "m"), "hectares": ("hecta", "ha"), "years": ("ans", "annee"),
    "months": ("mois",), "days": ("jours", "jour"), "hours": ("heure", "h"), "minutes": ("minut", "min"),
    "weeks": ("semai",), "countries": ("pays", "etats"), "cities": ("ville",), "towns": ("commu", "ville"),
    "departements": ("depar",), "departments": ("depar",), "regions": ("regio",), "schools": ("ecole", "colle", "lycee"),
    "votes": ("voix", "vote", "suffr"), "seats": ("siege",), "goals": ("buts", "but"), "medals": ("medai",),
    "convictions": ("conda",), "arrests": ("inter", "arres", "garde"), "complaints": ("plain",),
    "stab": ("coups", "coup"), "shots": ("coups", "tirs", "balle"), "bullets": ("balle",), "jobs": ("emplo", "poste"),
    "beds": ("lits", "lit"), "doses": ("doses", "dose"), "tests": ("tests", "test", "depis"), "cases": ("cas",),
    "animals": ("anima",), "cats": ("chats", "chat"), "dogs": ("chien",), "trees": ("arbre",), "fires": ("feux", "incen"),
    "copies": ("exemp", "copie"), "books": ("livre", "ouvra"), "films": ("films", "film"), "episodes": ("episo",),
    "litres": ("litre", "l"), "liters": ("litre", "l"), "kilos": ("kilo", "kg"), "kilograms": ("kilo", "kg"),
    "euros": ("euro", "€"), "dollars": ("dolla", "$"), "points": ("point",), "stages": ("etape",), "laps": ("tours",),
    "centimetres": ("cm", "centi"), "centimeters": ("cm", "centi"), "degrees": ("degre", "°"), "storeys": ("etage",),
    "floors": ("etage",), "buildings": ("batim", "immeu"), "shops": ("comme", "magas", "bouti"), "lines": ("ligne",),
    "stations": ("stati", "gares"), "ships": ("navir", "bater", "bate"), "boats": ("batea", "embar"),
    "planes": ("avion", "appar"), "aircraft": ("avion", "appar"), "weapons": ("armes", "arme"), "guns": ("armes", "fusil"),
}


def _stem(word: str) -> str:
    return word[:5]


@dataclass(frozen=True)
class Focus:
    """What a question's answer must hold: :attr:`kind` (``age``, ``money``, ``share``,
    ``clock`` or ``unit``), a :attr:`label` for the user when no sentence has it,
    whether lacking it means the sentence does not answer (:attr:`strict`), and for
    ``unit`` the counted noun's stems."""

    kind: str
    label: str
    strict: bool
    units: tuple[str, ...] = ()
    #: how many words after the number a unit may come ("six personnes ont été légèrement blessées": 5)
    reach: int = 4

    def holds(self, sentence: str, question: str = "") -> bool:
        """Whether ``sentence`` holds what the question asks for (beyond what ``question`` says)."""
        s = fold(sentence).replace("’", "'")
        if self.kind == "unit":
            return _holds_unit(s, self.units, self.reach)
        if self.kind == "named":
            return _holds_named(sentence, self.units, question)
        pattern = {"age": _AGE_S, "money": _MONEY_S, "share": _SHARE_S, "clock": _CLOCK_S, "since": _SINCE_S}[self.kind]
        if self.kind != "age":
            return bool(pattern.search(s))
        q_numbers = set(re.findall(r"\d+", fold(question)))
        # "l'homme de 37 ans" in the question: the sentence must give another age.
        return any(not (set(re.findall(r"\d+", m.group())) <= q_numbers and re.search(r"\d", m.group()))
                   for m in pattern.finditer(s))


# "Sur quelle île", "quel article du règlement", "in which commune": a noun the answer names.
_WHICH_NOUN = re.compile(r"\b(?:quel|quelle|quels|quelles|which|what)\s+(?P<noun>[a-z][\w-]{2,})")
# Nouns whose answer is their own name written after them ("l'île d'Innarsuit", "la commune de
# Hures-la-Parade", "l'article 6", "la prison de Fresnes"): places, institutions, texts. Other
# nouns ("quel roi", "quelle œuvre") are as often answered without the noun.
# English nouns a French answer names, and their French stems.
_EN_FR_NAMED = {
    "town": ("commune",), "commune": ("commune",), "municipality": ("commune",), "island": ("ile",),
    "prison": ("prison",), "jail": ("prison",), "hospital": ("hopital",), "cemetery": ("cimetiere",),
    "school": ("ecole", "college", "lycee"), "street": ("rue", "avenue", "boulevard"), "station": ("station", "gare"),
    "airport": ("aeroport",), "article": ("article",), "law": ("loi",), "court": ("tribunal",), "lake": ("lac",),
    "resort": ("station",),
}

_NAMED_STEMS = frozenset("ile commune article prison hopital cimetiere aeroport gare lac station rue avenue boulevard "
                         "ecole college lycee tribunal loi".split())

# "Depuis quand l'usine est-elle en activité ?", "since when", "how long has it been": a
# starting point or a duration ("en activité depuis 1954", "since 2008", "depuis dix ans").
_SINCE_Q = re.compile(r"\b(?:depuis quand|depuis quelle (?:annee|date|epoque)|depuis combien (?:de temps|d'annees)|"
                      r"since when|since what (?:year|date|time)|how long (?:has|have|had)|desde cuando|seit wann)\b")
_SINCE_S = re.compile(rf"\b(?:depuis|since|desde|seit)\b[^.;]{{0,30}}?(?:\b\d{{2,4}}\b|\b(?:{_NUM_WORDS})\b|\bans\b|"
                      r"\bannees\b|\bmois\b|\byears\b|\bmonths\b|\bdecennies?\b|\bdecades?\b|\bsiecles?\b|"
                      r"\bcenturies\b|\banos\b|\bjahren\b)|\bfor (?:\w+ )?(?:years|months|decades)\b|"
                      rf"\b(?:fonde|cree|ouvert|construit|inaugure|founded|opened|built)e?s?\s+en\s+\d{{4}}")

_FOCUSES = (
    (_SINCE_Q, Focus("since", "since when", False)),
    (_AGE_Q, Focus("age", "an age", True)),
    (_CLOCK_Q, Focus("clock", "a time of day", True)),
    (_SHARE_Q, Focus("share", "a percentage or share", True)),
)


def question_focus(question: str, passage_lang: str | None = None) -> Focus | None:
    """What the answer to ``question`` must hold, or None when the question sets nothing
    beyond its kind (see the module docstring). ``passage_lang`` is the language of the
    text read (the counted noun of an English question is looked up for French text)."""
    q = fold(question).replace("’", "'")
    for pattern, focus in _FOCUSES:
        if pattern.search(q):
            return focus
    m = _UNIT_Q.search(q)
    if m:
        head, head2 = m.group("head"), m.group("head2") or ""
        english = bool(re.match(r"(?:how many|what number)", m.group()))
        if head in _PEOPLE:
            # "combien de personnes ont été interpellées", "how many people were injured": a
            # number of people with that verb after it ("148 personnes ont été interpellées").
            verb = _PEOPLE_VERB.match(q, m.end("head"))
            if verb is None:
                return None
            v = verb.group("verb")
            if english:
                stems = _EN_FR_VERBS.get(v) if passage_lang == "fr" else (_stem(v),) if passage_lang in (None, "en") \
                    else None
            else:
                stems = (_stem(v),)
            return Focus("unit", f"a number of people {v}", False, stems, reach=6) if stems else None
        if head in _TIMES:
            return None
        if head in ("argent", "money", "euros", "dollars", "eur"):
            return Focus("money", "an amount of money", True)
        # "how many criminal convictions", "how many stab wounds": the noun may come second.
        nouns = [head] + ([head2] if english and head2 and head2 not in _STOP_AFTER else [])
        strict = head in _MEASURES
        if english and passage_lang not in (None, "en"):
            table = _EN_FR_UNITS if passage_lang == "fr" else {}
            units = next((table[n] for n in nouns if n in table), None)
            if units is None:
                return None
            return Focus("unit", f"a number of {' '.join(nouns)}", strict, units + _ABBREVIATIONS.get(head, ()))
        stems = tuple(_stem(n.rstrip("s")) if len(n) > 5 else n for n in nouns)
        return Focus("unit", f"a number of {' '.join(nouns)}", strict, stems + _ABBREVIATIONS.get(head, ()))
    if _MONEY_Q.search(q):
        return Focus("money", "an amount of money", True)
    m = _WHICH_NOUN.search(q)
    if m:
        noun = m.group("noun")
        english = fold(m.group().split()[0]) in ("which", "what")
        if english and passage_lang not in (None, "en"):
            nouns = tuple(n for n in _EN_FR_NAMED.get(noun, ()) if n in _NAMED_STEMS) if passage_lang == "fr" else None
        else:
            noun = noun[:-1] if noun.endswith("s") and noun[:-1] in _NAMED_STEMS else noun
            nouns = (noun,) if noun in _NAMED_STEMS else None
        if nouns:
            return Focus("named", f"the name of the {noun}", False, nouns)
    return None


def _holds_named(sentence: str, nouns: tuple[str, ...], question: str) -> bool:
    """The asked noun, then (after "de", "du", "d'", "la", "le") a name or a number the question
    does not hold: "l'île d'Innarsuit", "l'article 6 du règlement", "la commune de Hures-la-Parade"."""
    known = {fold(w)[:5] for w in re.findall(r"[^\W\d_][\w'-]*", question)}
    toks = re.findall(r"[^\W\d_][\w'’-]*|\d+", sentence)
    for i, t in enumerate(toks):
        f = fold(re.sub(r"^[lLdD]['’]", "", t))
        if not any(f.startswith(n) for n in nouns):
            continue
        for nxt in toks[i + 1:i + 4]:
            bare = re.sub(r"^[dDlL]['’]", "", nxt)
            if fold(bare) in ("de", "du", "des", "la", "le", "les", "of", "the"):
                continue
            if bare[:1].isdigit() or (bare[:1].isupper() and fold(bare)[:5] not in known):
                return True
            break
    return False


def _holds_unit(s: str, units: tuple[str, ...], reach: int = 4) -> bool:
    """A number, then within ``reach`` words (adjectives, "de"), a word starting with one of ``units``."""
    for m in re.finditer(_NUM, s):
        after = re.findall(r"[^\W\d_][\w'-]*|[€$%°]", s[m.end():m.end() + 15 * reach])[:reach]
        for w in after:
            w = re.sub(r"^[dl]'", "", w)
            if any(w.startswith(u) if len(u) > 2 else w == u for u in units):
                return True
    return False
