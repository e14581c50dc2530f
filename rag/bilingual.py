"""English names of places, peoples and institutions and how French writes them, for verification.

A generated English sentence over a French source names "Germany" where the source
would say "Allemagne": the verifier cannot look the English name up in the French text,
and sentence similarity alone passes "coordinated by Germany and Poland" over "sous la
coordination conjointe de la France et du Royaume-Uni" (cosine 0.81 with e5-small, over
the cross-lingual threshold). :func:`name_supported` lets a name pass when the source
holds it, or one of its French forms (a folded prefix: ``britanni`` for
britannique/Britanniques), or when it is a title word that English capitalizes.
Names it does not know must appear as they are: a stricter check, never a looser one.
"""

from __future__ import annotations

from rag.analysis import fold

__all__ = ["FRENCH_FORMS", "TITLE_WORDS", "name_supported"]

#: folded English word -> folded French prefixes that render it
FRENCH_FORMS: dict[str, tuple[str, ...]] = {
    # countries and their peoples (the adjective is capitalized in English only)
    "america": ("amerique",), "american": ("americ",), "americans": ("americ",),
    "britain": ("bretagne", "britanni", "royaume"), "british": ("britanni",), "england": ("angleterre",),
    "english": ("anglais",), "united": ("uni", "unis", "unies"), "kingdom": ("royaume",),
    "uk": ("royaume-uni", "royaume", "britanni"), "us": ("etats-unis", "americ"), "usa": ("etats-unis",),
    "states": ("etats",), "germany": ("allema",), "german": ("allema",), "germans": ("allema",),
    "spain": ("espagn",), "spanish": ("espagn",), "italy": ("itali",), "italian": ("itali",),
    "poland": ("pologn", "polonais"), "polish": ("polonais",), "ukraine": ("ukrain",), "ukrainian": ("ukrain",),
    "ukrainians": ("ukrain",), "russia": ("russ",), "russian": ("russ",), "russians": ("russ",),
    "china": ("chine", "chinois"), "chinese": ("chinois",), "japan": ("japon",), "japanese": ("japonais",),
    "india": ("inde",), "indian": ("indien",), "belgium": ("belgi",), "belgian": ("belge",),
    "switzerland": ("suisse",), "swiss": ("suisse",), "netherlands": ("pays-bas", "neerland"),
    "dutch": ("neerland",), "sweden": ("suede",), "swedish": ("suedois",), "norway": ("norveg",),
    "norwegian": ("norveg",), "denmark": ("danemark",), "danish": ("danois",), "finland": ("finland",),
    "finnish": ("finlandais",), "greece": ("grece",), "greek": ("grec",), "turkey": ("turqu",),
    "turkish": ("turc",), "austria": ("autrich",), "austrian": ("autrich",), "hungary": ("hongri",),
    "hungarian": ("hongrois",), "romania": ("roumani",), "romanian": ("roumain",), "portugal": ("portugal",),
    "portuguese": ("portugais",), "ireland": ("irland",), "irish": ("irlandais",), "scotland": ("ecosse",),
    "scottish": ("ecossais",), "wales": ("galles",), "morocco": ("maroc",), "moroccan": ("marocain",),
    "algeria": ("algeri",), "algerian": ("algeri",), "tunisia": ("tunisi",), "tunisian": ("tunisien",),
    "egypt": ("egypt",), "egyptian": ("egypt",), "israel": ("israel",), "israeli": ("israel",),
    "palestinian": ("palestin",), "syria": ("syri",), "syrian": ("syrien",), "iran": ("iran",),
    "iranian": ("iranien",), "iraq": ("irak",), "iraqi": ("irak",), "lebanon": ("liban",),
    "lebanese": ("libanais",), "brazil": ("bresil",), "brazilian": ("bresilien",), "mexico": ("mexiqu",),
    "mexican": ("mexicain",), "canada": ("canada",), "canadian": ("canadien",), "australia": ("australi",),
    "australian": ("australien",), "africa": ("afriqu",), "african": ("africain",), "europe": ("europ",),
    "european": ("europ",), "europeans": ("europ",), "asia": ("asi",), "asian": ("asiati",),
    "baltic": ("balte",), "nordic": ("nordiqu",), "french": ("francais", "france"),
    "france": ("france",), "paris": ("paris",), "parisian": ("parisien",), "breton": ("breton",),
    "brittany": ("bretagne",), "normandy": ("normandi",), "corsica": ("corse",), "corsican": ("corse",),
    "alsace": ("alsac",), "burgundy": ("bourgogn",), "provence": ("provenc",),
    # cities French spells otherwise
    "london": ("londres",), "moscow": ("moscou",), "brussels": ("bruxelles",), "geneva": ("geneve",),
    "vienna": ("vienne",), "warsaw": ("varsovie",), "kyiv": ("kiev", "kyiv"), "kiev": ("kiev", "kyiv"),
    "lisbon": ("lisbonne",), "athens": ("athenes",), "rome": ("rome",), "venice": ("venise",),
    "munich": ("munich",), "cologne": ("cologne",), "beijing": ("pekin",), "marseilles": ("marseille",),
    "lyons": ("lyon",), "dunkirk": ("dunkerque",), "the hague": ("la haye",), "hague": ("haye",),
    "algiers": ("alger",), "cairo": ("caire",), "washington": ("washington",), "edinburgh": ("edimbourg",),
    # institutions
    "eu": ("ue", "union europ"), "union": ("union",), "nato": ("otan",), "un": ("onu", "nations unies"),
    "nations": ("nations",), "commission": ("commission",), "parliament": ("parlement",),
    "senate": ("senat",), "assembly": ("assemblee",), "national": ("national",), "government": ("gouvernement",),
    "council": ("conseil",), "court": ("cour", "tribunal"), "ministry": ("ministere",), "police": ("police",),
    "army": ("armee",), "republic": ("republi",), "republican": ("republicain",), "socialist": ("socialist",),
    "communist": ("communist",), "green": ("vert", "ecolog"), "greens": ("verts", "ecolog"),
    "white": ("blanche",), "house": ("maison",), "kremlin": ("kremlin",), "elysee": ("elysee",),
    "catholic": ("catholiqu",), "church": ("eglise",), "muslim": ("musulman",), "jewish": ("juif", "juive"),
    "christian": ("chretien",), "islamic": ("islami",), "mediterranean": ("mediterran",),
    "atlantic": ("atlantiq",), "pacific": ("pacifiq",), "channel": ("manche",), "alps": ("alpes",),
    "pyrenees": ("pyrenees",), "rhine": ("rhin",), "seine": ("seine",), "loire": ("loire",),
    "north": ("nord",), "south": ("sud",), "east": ("est",), "west": ("ouest",),
    "day": ("jour",), "saint": ("saint",), "christmas": ("noel",), "easter": ("paques",),
    "january": ("janvier",), "february": ("fevrier",), "march": ("mars",), "april": ("avril",), "may": ("mai",),
    "june": ("juin",), "july": ("juillet",), "august": ("aout",), "september": ("septembre",),
    "october": ("octobre",), "november": ("novembre",), "december": ("decembre",), "monday": ("lundi",),
    "tuesday": ("mardi",), "wednesday": ("mercredi",), "thursday": ("jeudi",), "friday": ("vendredi",),
    "saturday": ("samedi",), "sunday": ("dimanche",),
}

#: words English capitalizes in titles and headings that French writes in lower case
TITLE_WORDS = frozenset(
    "prime minister president chancellor secretary general foreign affairs interior defence defense finance "
    "health justice mayor governor king queen prince princess pope chairman chief executive ceo director "
    "minister's president's mr mrs ms dr sir lord lady".split())


def name_supported(name: str, cited_words: set[str], cited_folded: str) -> bool:
    """Whether a (folded) capitalized word of an English sentence is backed by a French source.

    Args:
        name: the word, folded (:func:`rag.analysis.fold`).
        cited_words: the folded words of the cited text.
        cited_folded: the whole cited text, folded.
    """
    name = fold(name)
    if name in cited_words or name in TITLE_WORDS:
        return True
    forms = FRENCH_FORMS.get(name, ())
    return any(any(w.startswith(f) for w in cited_words) or (" " in f or "-" in f) and f in cited_folded
               for f in forms)
