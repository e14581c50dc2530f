"""Questions that ask for a person, and sentences that name one.

"Comment s'appelle le chauffeur de taxi ?", "Which police officer leaked it?", "Quel
procureur a appelé à la prudence ?" are answered by a person's name: a sentence that
names no one ("un homme de 37 ans a été interpellé à Marseille") does not answer them,
however close it is to the subject, and the sentence that does ("le procureur de Nantes,
Pierre Sennès, a appelé…") is the one to quote. Both checks are about how news writes
people, not about one data set:

- a question asks for a person when it asks for a *name* ("comment s'appelle", "what is
  the name of", "nom de famille") of someone described by a person noun ("le skieur",
  "the woman"), or asks *which* person ("quel juge", "which officer", "who is the
  prefect");
- a sentence names a person with a first name and a surname ("Guy Joao", "Martine
  Berthet"), a title or role before a surname ("M. Chouviat", "le juge Mander", "la
  préfète Hatsch"), or a name followed by an age ("Céline, 42 ans"). A capitalized word
  alone is not enough: it is as often a place ("à Drancy"), a month, a body ("l'Institut")
  or a newspaper.

Names the question already holds are not an answer to it.
"""

from __future__ import annotations

import re

from rag.analysis import fold

# Nouns (folded, singular) that describe a person, French and English.
_PERSON_NOUNS = frozenset(fold(w) for w in """
    homme femme enfant garçon fille fils père mère frère sœur soeur mari épouse veuve veuf bébé
    adolescent adolescente lycéen lycéenne étudiant étudiante élève professeur professeure
    skieur skieuse chauffeur conducteur conductrice policier policière gendarme pompier militaire
    soldat médecin chirurgien chirurgienne infirmier infirmière juge procureur procureure avocat
    avocate préfet préfète maire ministre président présidente député députée sénateur sénatrice
    directeur directrice patron patronne joueur joueuse entraîneur sélectionneur chanteur chanteuse
    acteur actrice comédien comédienne auteur autrice écrivain écrivaine journaliste victime suspect
    suspecte tueur tueuse assaillant assaillante agresseur meurtrier meurtrière otage retraité
    retraitée habitant habitante agriculteur agricultrice éleveur kayakiste alpiniste randonneur
    randonneuse passager passagère pilote témoin lauréat lauréate gagnant gagnante fondateur
    fondatrice porte-parole dirigeant dirigeante candidat candidate élu élue livreur guitariste
    musicien musicienne commissaire capitaine général colonel secrétaire conseiller conseillère
    braqueur braqueuse détenu détenue prisonnier prisonnière évadé personne ressortissant
    man woman child boy girl daughter father mother brother sister husband wife widow widower
    baby teenager student pupil teacher skier driver officer policeman policewoman firefighter
    fireman soldier doctor surgeon nurse judge prosecutor lawyer attorney prefect mayor minister
    president deputy senator director ceo boss player coach manager singer actor actress author
    writer journalist reporter victim suspect killer gunman attacker assailant murderer hostage
    hostage-taker pensioner retiree resident farmer kayaker climber hiker passenger pilot witness
    winner founder spokesman spokeswoman spokesperson leader candidate councillor commissioner
    captain general secretary robber inmate prisoner person children people men women persons
""".split())
# Multi-word person nouns (folded).
_PERSON_PHRASES = ("preneur d'otages", "jeune homme", "jeune femme", "chef de l'etat", "police officer",
                   "chef du gouvernement", "premier ministre", "prime minister")

# Asking for a name, or asking which person.
_NAME_ASK = re.compile(
    r"\b(comment s'appel\w*|quels? (?:est|sont|etait|etaient) (?:le|les|son|sa|leur|leurs) (?:nom|noms|prenom|prenoms)\b"
    r"|nom de famille|prenoms?\b|(?:what|which) (?:is|was|are|were) (?:the |his |her |their )?(?:full |first |last )?names?\b"
    r"|surnames?|first names?|last names?|full names?)")
_WHICH_PERSON = re.compile(r"\b(?:quel|quelle|quels|quelles|which|what)\s+([\w'-]+)(?:\s+([\w'-]+))?")
# Words that may come between "quel"/"which" and the person noun: "quel jeune homme", "which French writer".
_PRE_NOUN = frozenset(fold(w) for w in """
    jeune dernier dernière premier première ancien ancienne nouveau nouvelle autre seul seule
    young last first former new other only french british american local socialist
""".split())
# "Qui est le préfet…", "who is the prefect…": a definite description asks who; "qui était une
# femme d'âge mûr ?" asks for a description.
_WHO_IS = re.compile(r"\b(?:who|qui)\s+(?:is|was|are|were|est|etait|sont|etaient)\s+((?:(?:le|la|les|the|this|that|ce|cette)\b|\s).{0,60})")
# Words that only name a person (a first name, a surname) being asked: "nom de famille", "prénom".
_NAME_PARTS = re.compile(r"\b(nom de famille|prenoms?|surnames?|first names?|last names?)\b")


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word[-1] in "sx" else word


def _is_person_noun(word: str) -> bool:
    return word in _PERSON_NOUNS or _singular(word) in _PERSON_NOUNS


def _has_person_noun(text: str) -> bool:
    if any(p in text for p in _PERSON_PHRASES):
        return True
    return any(_is_person_noun(w) for w in re.findall(r"[\w'-]+", text) if not w.endswith("'"))


def wants_person(question: str) -> bool:
    """Whether ``question`` is answered by a person's name (see the module docstring)."""
    q = fold(question).replace("’", "'")
    q = re.sub(r"\b(?:l|d|qu)'", " ", q)  # "l'homme" -> "homme"
    m = _NAME_ASK.search(q)
    if m:
        return bool(_NAME_PARTS.search(q)) or _has_person_noun(q[m.end():m.end() + 80])
    # "Quels acteurs…", "Who are the victims?": a plural is as often answered by a group
    # ("les loyalistes", "gardiens SS") as by names, so only an explicit "names" asks for them.
    for m in _WHICH_PERSON.finditer(q):
        head, after = m.group(1), m.group(2) or ""
        if m.group().split()[0] in ("quels", "quelles") or (head not in _PERSON_NOUNS and _singular(head) != head):
            continue
        if _is_person_noun(head) or f"{head} {after}" in _PERSON_PHRASES \
                or (head in _PRE_NOUN and _is_person_noun(after)):
            return True
    m = _WHO_IS.search(q)
    if m and m.group().split()[1] in ("are", "were", "sont", "etaient"):
        return False
    return bool(m and _has_person_noun(" ".join(m.group(1).split()[:5])))


_TOKEN = re.compile(r"[^\W\d_][\w'’.-]*")
# Capitalized words that start sentences or clauses, and other capitalized non-names.
_NOT_NAMES = frozenset(fold(w) for w in """
    le la les l un une des du de d au aux il ils elle elles on nous vous je ce cet cette ces ça cela
    son sa ses leur leurs mais et or donc car puis pour par dans en sur selon après avant depuis
    pendant lors alors ainsi enfin si quand lorsque comme qui que quel quelle où tout tous toute toutes
    the a an it its he she they we you this that these those there here in on at but and his her their
    our as after before when while if according some many most other however meanwhile mr mrs ms m mme
    lundi mardi mercredi jeudi vendredi samedi dimanche monday tuesday wednesday thursday friday
    saturday sunday janvier février mars avril mai juin juillet août septembre octobre novembre
    décembre january february march april may june july august september october november december
    afp reuters ap bfmtv rtl france
""".split())
_TITLES = frozenset(fold(w) for w in """
    m. mme mlle mr mr. mrs mrs. ms ms. dr dr. me pr sir lord madame monsieur mademoiselle maître
    saint sainte lady dame don certain certaine
""".split())
# Particles inside a name: "Miguel de Cervantes", "Bruno Le Maire", "Ludwig van Beethoven".
_ARTICLES = frozenset(fold(w) for w in "le la les l' du des au aux the".split())
_PARTICLES = frozenset("de du d' des la le van von der den da di del della dos das ibn bin ben al el".split())
# Hyphenated place names: "Seine-et-Marne", "Palavas-les-Flots", "Mont-Saint-Aignan".
_PLACE_LIKE = re.compile(r"-(?:et|les|la|le|sur|sous|du|de|des|en|aux|saint|sainte|st|ste)-|-(?:Saint|Sainte)\b", re.I)
_ROMAN = re.compile(r"^[IVXLCDM]+(?:e|er|ème)?$")
_AGE_AFTER = re.compile(r"^\s*(?:,\s*|\(\s*)(?:\d{1,3}\s*ans|aged?\s+\d{1,3}|\d{1,3}\s*,)")


def _single_name(toks, i: int, sentence: str) -> bool:
    """Whether the capitalized ``toks[i]`` alone is a person: followed by an age ("Céline, 42
    ans") or a description ("Dhritarashtra, le roi aveugle"), or the agent of a passive
    ("écrasée par Murat", "founded by Jobs")."""
    tok, s, e = toks[i]
    if _AGE_AFTER.match(sentence[e:e + 14]) or _described(toks, i, sentence):
        return True
    return i > 0 and fold(toks[i - 1][0]) in ("par", "by") and toks[i - 1][2] == s - 1


def _described(toks, i: int, sentence: str) -> bool:
    """Whether the capitalized ``toks[i]`` is followed by ", le/la/un/une/son/sa … <person noun>"
    (not after "selon", "d'après", "according to": "Selon Franceinfo, le chauffeur…" names a
    source, then begins the sentence)."""
    e = toks[i][2]
    if not sentence[e:e + 2].startswith(","):
        return False
    if i > 0 and fold(toks[i - 1][0]) in _SOURCE_BEFORE:
        return False
    nearby = [fold(t) for t, _, _ in toks[i + 1:i + 5]]
    return bool(nearby) and nearby[0] in {"le", "la", "l'", "un", "une", "son", "sa", "the", "a", "an", "his", "her"} \
        and any(_is_person_noun(w) for w in nearby[1:])


# Words before a source ("Selon Franceinfo, …", "according to Reuters, …", "…, poursuit Franceinfo, le
# chauffeur…"): the name that follows is who reports, and the comma after it ends the aside.
_SOURCE_BEFORE = frozenset(fold(w) for w in """
    selon d'après d’après to rapporte indique écrit poursuit ajoute explique précise raconte affirme
    souligne note relate révèle assure confie says said reports reported adds added writes wrote
""".split())
# Capitalized words that begin a place's name, not a person's: "Cap Croisette", "Mont Blanc",
# "Port Louis", "Lac Léman", "Rue Royale", "Saint Louis" is left alone (a saint is a person).
_PLACE_HEADS = frozenset(fold(w) for w in """
    cap mont monts lac île ile pointe port val pic col golfe baie bois forêt rue avenue boulevard place pont
    gare parc château musée hôpital stade aéroport quai route plage plateau vallée côte cathédrale église
    abbaye collège lycée université institut centre palais mer océan cité camp fort canal île-de
    mount cape lake river bay island park street road square bridge hospital airport station university
    college church cathedral palace stadium castle fort port
""".split())

# A surname's particle glued to it: "al-Turabi", "el-Sissi", "d'Estaing", "ben-Gourion".
_GLUED_PARTICLE = re.compile(r"^(?:al|el|ad|as|ibn|bin|ben|abu|d['’])-?(?=[A-ZÀ-Þ])")


def _is_cap(tok: str) -> bool:
    tok = _GLUED_PARTICLE.sub("", tok)
    return len(tok) > 1 and tok[0].isupper() and not _ROMAN.match(tok) and fold(tok.rstrip(".")) not in _NOT_NAMES


# A question that asks who said something is answered by the source: "Selon M. Gosselin, …".
_ASKS_SPEAKER = re.compile(r"\b(?:dit|dire|declar\w*|affirm\w*|annonc\w*|expliqu\w*|estim\w*|assur\w*|"
                           r"confi\w*|rapport\w*|said|say|says|told|stated?|announced?|claim\w*|according)\b")


def _source_asides(toks, sentence: str) -> set[int]:
    """The token positions of the sources of asides, "Selon M. Gosselin, …", "D'après Pierre
    Sennès, …", "according to Mr Smith, …": the (at most four) words after "selon", "d'après"
    or "according to", up to the comma that ends them. Who reports is not who is reported on."""
    out: set[int] = set()
    for i in range(1, len(toks)):
        before = fold(toks[i - 1][0])
        if before not in ("selon", "d'apres", "d’apres") and not (
                before == "to" and i >= 2 and fold(toks[i - 2][0]) == "according"):
            continue
        for j in range(i, min(i + 4, len(toks))):
            if sentence[toks[j][2]:toks[j][2] + 1] == ",":
                out.update(range(i, j + 1))
                break
    return out


def person_names(sentence: str, question: str = "") -> list[str]:
    """The people ``sentence`` names (as written) that ``question`` does not already name."""
    known = {fold(w)[:5] for w in re.findall(r"[^\W\d_][\w'-]*", question)}
    toks = [(m.group().rstrip(".,;:"), m.start(), m.end()) for m in _TOKEN.finditer(sentence)]
    found: list[str] = []

    def new(*words: str) -> bool:
        return any(fold(re.sub(r"^[ldjsnmc]['’]", "", w, flags=re.I))[:5] not in known for w in words)

    # Short asides in brackets hold places and sources, "(Haute-Savoie)", "(AFP)"; longer
    # ones are sentences of their own: "(le dernier cas étant celui du ministre Abraham Berge)".
    aside = [(m.start(), m.end()) for m in re.finditer(r"\([^()]{0,40}\)", sentence) if len(m.group().split()) <= 3]
    sources = set() if _ASKS_SPEAKER.search(fold(question)) else _source_asides(toks, sentence)
    for i, (tok, s, e) in enumerate(toks):
        if any(a < s < b for a, b in aside) or i in sources:
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        gap = sentence[e:nxt[1]] if nxt is not None else ""
        low = fold(tok)
        # A title or a role, then a capitalized word: "M. Chouviat", "le juge Mander",
        # "son frère, Drogon".
        if nxt is not None and gap.strip() in ("", ",") and len(gap) <= 2 and _is_cap(nxt[0]) \
                and (low in _TITLES or fold(tok + ".") in _TITLES or _is_person_noun(low)):
            if new(nxt[0]):
                found.append(f"{tok} {nxt[0]}")
            continue
        if not _is_cap(tok):
            continue
        if nxt is None:
            if _single_name(toks, i, sentence) and new(tok):
                found.append(tok)
            continue
        # First name and surname: two capitalized words in a row ("Guy Joao", "Pierre Sennès"),
        # or with a particle between ("Miguel de Cervantes", "Bruno Le Maire").
        second = nxt
        before = fold(toks[i - 1][0]) if i > 0 and toks[i - 1][2] >= s - 2 else ""
        if before in _ARTICLES:
            continue  # "la Nouvelle Calédonie", "the White House": no person
        # A particle only after a word that may precede a name: not "du marché de Noël de
        # Strasbourg", "la République de Nantes".
        if (fold(nxt[0]) in _PARTICLES or nxt[0] in ("Le", "La")) and i + 2 < len(toks) and before not in ("de", "d'") \
                and sentence[nxt[2]:toks[i + 2][1]].strip() == "" and _is_cap(toks[i + 2][0]):
            second = toks[i + 2]
            gap = sentence[e:nxt[1]]
        if gap.strip() == "" and len(gap) <= 2 and _is_cap(second[0]) and low not in _PLACE_HEADS \
                and not _PLACE_LIKE.search(tok + " " + second[0]) and new(tok, second[0]):
            found.append(f"{tok} {second[0]}")
        elif _single_name(toks, i, sentence) and new(tok):
            found.append(tok)
    return found


# Roles a question may ask for by name ("quel juge", "quelle maire", "which prosecutor", "who
# is the prefect"), folded; and how French writes the English ones (folded 5-letter stems).
# The generic nouns ("homme", "woman", "victime") describe no role and are not here.
_ROLE_STEMS = {
    "juge": ("juge",), "procureur": ("procu",), "procureure": ("procu",), "prefet": ("prefe",), "prefete": ("prefe",),
    "maire": ("maire",), "ministre": ("minis",), "president": ("presi",), "presidente": ("presi",),
    "depute": ("deput",), "deputee": ("deput",), "senateur": ("senat",), "senatrice": ("senat",),
    "directeur": ("direc",), "directrice": ("direc",), "chirurgien": ("chiru",), "chirurgienne": ("chiru",),
    "medecin": ("medec",), "avocat": ("avoca",), "avocate": ("avoca",), "commissaire": ("commi",),
    "capitaine": ("capit",), "colonel": ("colon",), "secretaire": ("secre",), "conseiller": ("conse",),
    "conseillere": ("conse",), "porte-parole": ("porte",), "entraineur": ("entra",), "selectionneur": ("selec",),
    "ecrivain": ("ecriv",), "journaliste": ("journ",), "patron": ("patro",), "patronne": ("patro",),
    "judge": ("juge", "judge"), "prosecutor": ("procu", "prose"), "prefect": ("prefe",), "mayor": ("maire", "mayor"),
    "minister": ("minis",), "deputy": ("deput",), "senator": ("senat",), "director": ("direc",),
    "surgeon": ("chiru", "surge"), "doctor": ("medec", "docte", "docto"), "lawyer": ("avoca", "lawye"),
    "attorney": ("avoca", "attor"), "commissioner": ("commi",), "captain": ("capit",), "secretary": ("secre",),
    "councillor": ("conse", "counc"), "spokesman": ("porte", "spoke"), "spokeswoman": ("porte", "spoke"),
    "spokesperson": ("porte", "spoke"), "coach": ("entra", "selec", "coach"), "writer": ("ecriv", "auteu", "write"),
    "journalist": ("journ",), "ceo": ("pdg", "direc", "ceo"), "boss": ("patro", "direc", "boss"),
}


def asked_role(question: str) -> tuple[str, ...]:
    """The stems of the role ``question`` asks a person's name for ("quel juge…", "quelle
    maire…", "which prosecutor…", "who is the prefect…"), or ``()``. The sentence that names
    the person in that role ("Martine Berthet, maire…", "le juge Mander") answers it; another
    person of the same article does not."""
    q = fold(question).replace("’", "'")
    q = re.sub(r"\b(?:l|d|qu)'", " ", q)
    heads = [m.group(1) if m.group(1) not in _PRE_NOUN else (m.group(2) or "") for m in _WHICH_PERSON.finditer(q)]
    m = _WHO_IS.search(q)
    if m:
        heads += [w for w in m.group(1).split()[:4]]
    for h in heads:
        stems = _ROLE_STEMS.get(h) or _ROLE_STEMS.get(_singular(h))
        if stems:
            return stems
    return ()


def names_in_role(sentence: str, question: str, stems: tuple[str, ...]) -> bool:
    """Whether ``sentence`` names a person (:func:`person_names`) and holds the role asked."""
    if not any(any(w.startswith(s) for s in stems) for w in re.findall(r"[\w'-]+", fold(sentence))):
        return False
    return bool(person_names(sentence, question))
