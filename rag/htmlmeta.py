"""What an HTML page says about its article: JSON-LD, meta tags and bylines.

Only what the page states is taken, as written: a date is passed on as the page
writes it (``2024-01-14T06:42:11+01:00``), to be normalized later like any other
date; a site name comes from ``og:site_name`` or the JSON-LD publisher, never
guessed from the address. JSON-LD is read as data (``json.loads``), never run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# schema.org types of a news or blog article (lower case); a page's WebPage node is not one.
ARTICLE_TYPES = frozenset(
    {
        "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle", "opinionnewsarticle",
        "backgroundnewsarticle", "reviewnewsarticle", "askpublicnewsarticle", "satiricalarticle",
        "blogposting", "liveblogposting", "socialmediaposting", "report",
    }
)
# Meta tags (``property``, ``name`` or ``itemprop``, lower case) holding the publication date,
# most specific first.
DATE_META = (
    "article:published_time", "og:article:published_time", "datepublished", "article.published",
    "publishdate", "publish-date", "pubdate", "parsely-pub-date", "sailthru.date", "dc.date.issued",
    "dcterms.issued", "dc.date", "date",
)
AUTHOR_META = ("author", "article:author", "og:article:author", "dc.creator", "parsely-author",
               "sailthru.author", "byl")

_MAX_NODES = 1_000
_MAX_NAMES = 10
# "Par Claire Dubois", "By Jane Doe", "Words by ...", "Propos recueillis par ..."
_BYLINE_PREFIX = re.compile(
    r"^(?:(?:propos recueillis|texte|textes|photos?|reportage|written|words|story|report(?:ed|ing)?)\s+)?"
    r"(?:par|by|de)\s*:?\s+",
    re.IGNORECASE,
)
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_NAME_SPLIT = re.compile(r"\s*(?:;|,|&|\||·|•|\s[-–—]\s|\s+et\s+|\s+and\s+|\s+avec\s+|\s+with\s+)\s*",
                         re.IGNORECASE)
# What follows a name in a byline: "ELENA RUIZ Associated Press", "Jane Doe Staff Writer".
_AFTER_NAME = re.compile(
    r"\s+(?:the\s+)?(?:associated press|reuters|afp|ap|bloomberg|staff writer|staff reporter|staff"
    r"|senior (?:correspondent|reporter|writer)|correspondent|reporter|journaliste|envoyée? spéciale?|correspondante?)\b.*$"
    r"|\s+(?:in|at|from|for|à|au|aux|en|depuis|pour)\s+.*$",  # "... in Frankfurt", "... pour Le Journal"
    re.IGNORECASE,
)
# A name: capitalized words, with the particles of French, Dutch, German and Spanish names.
_NAME_WORD = re.compile(r"(?:[A-ZÀ-ÖØ-Þ][\w'’.-]*|d[eu]|des|la|le|van|von|der|den|da|di|del|y|l[’'][A-ZÀ-Þ][\w'’-]*)$")


@dataclass(frozen=True)
class JsonLdArticle:
    """The fields of a page's JSON-LD article node (``None`` when not stated)."""

    headline: str | None = None
    date: str | None = None
    author: str | None = None
    site: str | None = None
    url: str | None = None


def _squash(s: str) -> str:
    return " ".join(s.split())


def _types(node: dict) -> set[str]:
    t = node.get("@type")
    values = t if isinstance(t, list) else [t]
    return {v.lower().rsplit("/", 1)[-1] for v in values if isinstance(v, str)}


def _nodes(value: Any, depth: int = 0) -> Iterator[dict]:
    """Every object in a JSON-LD value: top-level lists and ``@graph`` arrays included."""
    if depth > 8:
        return
    if isinstance(value, list):
        for item in value:
            yield from _nodes(item, depth + 1)
    elif isinstance(value, dict):
        yield value
        graph = value.get("@graph")
        if graph is not None:
            yield from _nodes(graph, depth + 1)


def _load(raw: str) -> Any:
    raw = raw.strip()
    # Some CMSs wrap the block in an HTML comment or CDATA for old browsers.
    for start, end in (("<!--", "-->"), ("//<![CDATA[", "//]]>"), ("<![CDATA[", "]]>")):
        if raw.startswith(start) and raw.endswith(end):
            raw = raw[len(start):-len(end)].strip()
    try:
        return json.loads(raw, strict=False)
    except (ValueError, RecursionError):
        logger.debug("ignoring a JSON-LD block that is not valid JSON (%.60r)", raw)
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    if isinstance(value, str) and value.strip():
        return _squash(value)
    return None


def _names(value: Any, by_id: dict[str, dict], depth: int = 0) -> list[str]:
    """Person or organization names in a JSON-LD ``author``/``publisher`` value."""
    if depth > 3 or value is None:
        return []
    if isinstance(value, list):
        return [n for v in value[:_MAX_NAMES] for n in _names(v, by_id, depth + 1)]
    if isinstance(value, str):
        return [] if value.strip().lower().startswith(("http:", "https:", "//")) else [_squash(value)]
    if not isinstance(value, dict):
        return []
    if set(value) <= {"@id", "@type"} and isinstance(value.get("@id"), str) and value["@id"] in by_id:
        return _names(by_id[value["@id"]], by_id, depth + 1)
    name = value.get("name")
    if name is None and ("givenName" in value or "familyName" in value):
        name = " ".join(str(value[k]) for k in ("givenName", "familyName") if isinstance(value.get(k), str))
    return _names(name, by_id, depth + 1)


def _url_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url")
    url = _text(value)
    return url if url and url.lower().startswith(("http:", "https:")) else None


def jsonld_article(blocks: list[str]) -> JsonLdArticle:
    """Read the article node of a page's ``<script type="application/ld+json">`` blocks.

    The first node typed as an article (``NewsArticle``, ``BlogPosting``...) is used;
    ``@id`` references (Yoast's ``@graph``) are followed for its author and publisher.
    Blocks that are not valid JSON are skipped.
    """
    nodes: list[dict] = []
    for raw in blocks:
        data = _load(raw)
        for node in _nodes(data):
            nodes.append(node)
            if len(nodes) >= _MAX_NODES:
                break
    by_id = {n["@id"]: n for n in nodes if isinstance(n.get("@id"), str)}
    article = next((n for n in nodes if _types(n) & ARTICLE_TYPES), None)
    if article is None:
        return JsonLdArticle()
    site = _join(_names(article.get("publisher"), by_id))
    if site is None:
        website = next((n for n in nodes if "website" in _types(n)), None)
        site = _text(website.get("name")) if website else None
    return JsonLdArticle(
        headline=_text(article.get("headline")) or _text(article.get("name")),
        date=_text(article.get("datePublished")) or _text(article.get("dateCreated")),
        author=_join(_names(article.get("author"), by_id)),
        site=site,
        url=_url_of(article.get("url")) or _url_of(article.get("mainEntityOfPage")),
    )


def _join(names: list[str]) -> str | None:
    unique = list(dict.fromkeys(n for n in names if n))
    return "; ".join(unique[:_MAX_NAMES]) or None


def meta_date(meta: dict[str, str]) -> str | None:
    """The publication date a page's meta tags state, as written."""
    return next((meta[k] for k in DATE_META if meta.get(k)), None)


def meta_author(meta: dict[str, str]) -> str | None:
    """The author a page's meta tags name (an address, such as a Facebook page, is not a name)."""
    for key in AUTHOR_META:
        value = meta.get(key, "")
        if value and not value.lower().startswith(("http:", "https:", "//", "www.")) and "@" not in value:
            names = byline_names(value)
            if names:
                return names
    return None


def byline_names(text: str) -> str | None:
    """The names in a byline: ``"Par Claire Dubois (Caen, correspondante)"`` -> ``"Claire Dubois"``.

    Parts that do not look like a name (``"envoyée spéciale à Lyon"``) are left out;
    several names are joined with ``"; "``.
    """
    text = _PARENS.sub(" ", _squash(text))
    text = _BYLINE_PREFIX.sub("", text.strip())
    names = []
    for part in _NAME_SPLIT.split(text):
        part = _AFTER_NAME.sub("", part.strip(" .:-–—"))
        words = part.split()
        if len(words) > 1 and part.isupper():
            part = part.title()  # "ELENA RUIZ", as wire bylines are set; "AFP" stays
        # one word is a name only when it is the whole byline ("Reuters") or an acronym ("AFP")
        one_word_ok = not names or part.isupper()
        if ((len(words) >= 2 or (words and one_word_ok)) and len(words) <= 5 and words[0][:1].isupper()
                and all(_NAME_WORD.match(w) for w in words)):
            names.append(part)
        elif names:
            break  # the name is over: a role or place follows ("..., envoyé spécial à Lyon")
    return _join(names)
