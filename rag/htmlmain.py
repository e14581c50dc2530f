"""The main text of a news page, with trafilatura: the article, not the page around it.

A saved news page is mostly not the article: cookie banners, menus, "Les plus lus"
and "Read next" lists, newsletter boxes, comments, paywall prompts, footers. Indexed,
they get quoted and cited as the article's words. trafilatura finds the article's
own paragraphs, in its precision mode: its default mode, when its first reading is
short, falls back to the whole text of the page's ``<article>`` in one paragraph,
``<noscript>`` and buttons included. What it still lets through on real pages is
removed here:

- before extraction: elements that never hold readable text (``<template>``,
  ``<noscript>``, ``<button>``...); comment sections and sidebars named in ways it
  does not recognise (``reactions``, ``news-comments``, ``pied-de-page``,
  ``o-aside``); "Lire aussi" / "Read more" link blocks inside the body;
- after extraction: short paragraphs that are page furniture by their words alone,
  such as a "Lire aussi :" line, a paywall prompt ("Il vous reste 58 % de cet
  article à lire") or a copyright line.

The page is parsed by lxml into a tree that is only read and pruned: no script is
run and no resource is fetched. :func:`main_text` returns ``None`` when trafilatura
finds no main text (a fragment, a page of navigation), and the caller falls back to
reading all of the page's text (:mod:`rag.htmltext`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

_REGEXP_NS = {"re": "http://exslt.org/regular-expressions"}

# Elements whose whole content is page furniture, by a class or id token. trafilatura knows
# "comment", "footer", "sidebar", "related", "newsletter", "cookie" and many more; these are
# the common names it misses (it reads "news-comments" or "reactions" as article text).
_CHROME_TOKENS = (
    r"comments?|commentaires?|reactions?|reagir|discussion|disqus|coral-talk"
    r"|pied-?de-?page|pied_de_page|piedpage|bas-de-page"
    r"|aside|most-?read|plus-?lus|les-?plus|mostpopular|trending|populaires?"
    r"|outbrain|taboola|ob-widget|read-?next|lire-?aussi|voir-?aussi"
)
_CHROME_XPATH = (
    ".//*[self::div or self::section or self::aside or self::ul or self::ol or self::li or self::p"
    " or self::span or self::form or self::footer or self::header or self::nav][re:test(@class, '{0}', 'i')"
    " or re:test(@id, '{0}', 'i')]"
).format(rf"(^|[\s_-])({_CHROME_TOKENS})([\s_-]|$)")

# "Lire aussi", "À lire également", "Voir aussi", "Read more", "Related:", "Sur le même sujet"...
# at the start of a paragraph, then (nearly) nothing but a link.
_READ_ALSO = re.compile(
    r"^[\W_]{0,3}\s*(?:(?:à|a)\s+)?(?:lire|voir|découvrir|écouter|regarder)\s+(?:aussi|également|egalement|encore|la suite)\b"
    r"|^[\W_]{0,3}\s*(?:read|see|watch|listen)\s+(?:more|also|next|too)\b"
    r"|^[\W_]{0,3}\s*(?:also read|related(?:\s+(?:articles?|stories|content|coverage))?|more on this(?: story)?)\s*[:\-–—]"
    r"|^[\W_]{0,3}\s*(?:sur le même sujet|dans la même rubrique|nos articles sur|notre dossier|à découvrir)\b",
    re.IGNORECASE,
)
# Sentences addressed to a reader who has not paid, or legal lines: never the article's own words.
_FURNITURE = re.compile(
    r"\bil vous reste \d+\s*% de (?:cet|l['’])article"
    r"|\b(?:cet article|cette vidéo|ce contenu|la suite(?: de cet article)?|le reste de (?:cet|l['’])article)\b"
    r"[^.]{0,80}\b(?:réservée?s? aux abonnés|abonnés? uniquement|non-abonnés)"
    r"|\bdéjà abonnée?\s*\?"
    r"|\b(?:subscribe|sign in|log in|register)\s+(?:now\s+)?to (?:continue|keep) reading\b"
    r"|\bthis (?:article|story|content) is (?:only )?(?:for|available to) (?:subscribers|members)\b"
    r"|\balready a (?:subscriber|member)\s*\?"
    r"|^\s*(?:©|\(c\)|copyright\b)"
    r"|\btous droits réservés\b|\ball rights reserved\b"
    r"|\breproduction interdite\b",
    re.IGNORECASE,
)
_FURNITURE_MAX_CHARS = 300
_FURNITURE_WORDS = ("abonn", "subscri", "member", "©", "(c)", "copyright", "droits", "rights", "reproduction",
                    "reading", "reste")
# Elements whose content is never text a reader sees as the article (as in rag.htmltext).
_NEVER_TEXT = ("noscript", "template", "button", "select", "textarea", "svg", "object", "canvas",
               "iframe", "math", "audio", "video")

# Bylines trafilatura does not look for: French class names ("Par Sophie Lenoir").
_BYLINE_XPATH = (
    ".//*[self::div or self::p or self::span or self::address or self::a or self::strong]"
    "[re:test(@class, '(^|[\\s_-])(signatures?|auteurs?|journalistes?|redacteurs?|rédacteurs?)([\\s_-]|$)', 'i')]"
)

# trafilatura's output elements that hold a paragraph of their own.
_BLOCKS = frozenset({"p", "head", "item", "quote", "row", "code", "list", "table", "div", "section",
                     "article", "body", "doc", "main", "main_text", "blockquote"})

_trafilatura: Any = None


@dataclass(frozen=True)
class MainText:
    """The article's paragraphs as trafilatura found them, with what it read of the page."""

    paragraphs: list[str]
    #: the page's only ``<h1>``, its headline (``None`` when it has none or several)
    h1: str | None
    author: str | None
    #: the date trafilatura's htmldate found, as ``YYYY-MM-DD``: only a last resort,
    #: since the page's own date string (meta tags, JSON-LD) is kept as written
    date: str | None


def _load() -> Any:
    """Import trafilatura on first use (it takes ~0.2 s and pulls in lxml)."""
    global _trafilatura
    if _trafilatura is None:
        import trafilatura

        # trafilatura logs a warning for every page it finds no text in ("discarding data");
        # here that is an expected case with a fallback, logged by us at debug level.
        for name in ("trafilatura", "htmldate", "courlan"):
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.CRITICAL)
        _trafilatura = trafilatura
    return _trafilatura


def _squash(s: str) -> str:
    return " ".join(s.split())


def _holds_the_article(el: Any, page_chars: int) -> bool:
    if el.xpath(".//h1 | .//*[@itemprop='articleBody'] | self::body | self::html"):
        return True
    return len(_squash(el.text_content())) > page_chars / 2


def _own_text_chars(td: Any) -> int:
    """Characters of ``td``'s text outside the tables nested in it."""
    inner = sum(len(_squash(t.text_content())) for t in td.findall(".//table") if t.getparent() is not None)
    return len(_squash(td.text_content())) - inner


def _unwrap_layout_table(tree: Any) -> None:
    """On a page laid out with tables (menus, sidebars and the article in cells, paragraphs
    split by ``<br><br>``, no ``<p>`` or ``<article>``), keep only the cell that holds most of
    the page's own text, without the boxes nested in it (comments, polls). trafilatura would
    read the layout as one data table and keep all of it."""
    body = tree.find(".//body")
    if body is None or tree.find(".//article") is not None:
        return
    page_chars = len(_squash(body.text_content()))
    para_chars = sum(len(_squash(p.text_content())) for p in tree.iter("p"))
    if not page_chars or para_chars > 0.2 * page_chars or not body.findall(".//td//table"):
        return
    cells = [(td, _own_text_chars(td)) for td in body.iter("td")]
    best, chars = max(cells, key=lambda c: c[1], default=(None, 0))
    if best is None or chars < 300 or chars < 0.35 * page_chars:
        return
    for nested in best.findall(".//table"):
        if nested.getparent() is not None:
            nested.drop_tree()
    for child in list(body):
        body.remove(child)
    body.text = None
    best.tag = "div"
    body.append(best)


def _prune(tree: Any) -> None:
    """Remove the furniture trafilatura lets through (see the module docstring)."""
    from lxml import etree

    _unwrap_layout_table(tree)

    # Never readable text, whatever the page's layout (trafilatura keeps a <template>'s).
    for el in list(tree.iter(*_NEVER_TEXT)):
        if el.getparent() is not None:
            el.drop_tree()  # its tail text stays
    page_chars = len(_squash(tree.text_content()))
    for el in etree.XPath(_CHROME_XPATH, namespaces=_REGEXP_NS)(tree):
        # a wrapper named after its comments ("with-comments") may hold the article too
        if el.getparent() is not None and not _holds_the_article(el, page_chars):
            el.drop_tree()  # its tail text stays
    for el in list(tree.iter("p", "div", "li", "aside", "section", "span")):
        if el.getparent() is None:
            continue  # inside a block dropped already
        text = _squash(el.text_content())
        if not text or len(text) > 400 or not _READ_ALSO.match(text):
            continue
        linked = sum(len(_squash(a.text_content())) for a in el.iter("a"))
        label = _READ_ALSO.match(text).end()
        if linked >= 0.6 * max(len(text) - label, 1) or len(text) - label < 5:
            el.drop_tree()  # its tail text stays


def _byline(tree: Any) -> str | None:
    """The text of the first short element named as a byline the way French sites do."""
    from lxml import etree

    for el in etree.XPath(_BYLINE_XPATH, namespaces=_REGEXP_NS)(tree):
        text = _squash(el.text_content())
        if 0 < len(text) <= 120:
            return text
    return None


def _paragraphs(body: Any) -> list[str]:
    """The text of trafilatura's output tree, one paragraph per block, line breaks included."""
    from lxml import etree

    out: list[str] = []
    current: list[str] = []

    def flush() -> None:
        par = _squash("".join(current))
        if par:
            out.append(par)
        current.clear()

    # iterwalk, not recursion: a deeply nested page cannot exhaust the stack
    for event, el in etree.iterwalk(body, events=("start", "end")):
        if not isinstance(el.tag, str):
            continue
        block = el.tag in _BLOCKS
        if event == "start":
            if block or el.tag == "lb":
                flush()
            elif el.tag == "cell":
                current.append(" ")
            if el.text and el.tag != "lb":
                current.append(el.text)
        else:
            if block:
                flush()
            elif el.tag == "cell":
                current.append(" ")
            if el.tail and el is not body:
                current.append(el.tail)
    flush()
    return out


# The links under an article: "Envoyer cet article à un ami | Version imprimable", "Print | Email".
_TOOL_LINK = re.compile(
    r"^\s*(?:envoyer(?: cet article| à un ami| par e-?mail)*|version imprimable|imprimer(?: cet article| la page)?|"
    r"partager(?: sur \w+)?|réagir|commenter|signaler|print(?: this (?:article|story|page))?|printer[- ]friendly(?: version)?|"
    r"e-?mail(?: this (?:article|story))?|share(?: this (?:article|story))?|send to a friend|"
    r"(?:envoyer )?cet article à un ami|haut de page|back to top|retour en haut)\s*$", re.IGNORECASE)


def is_furniture(paragraph: str) -> bool:
    """True for a short paragraph that is page furniture by its words (see the module docstring)."""
    if len(paragraph) > _FURNITURE_MAX_CHARS:
        return False
    if _READ_ALSO.match(paragraph):
        return True
    if len(paragraph) <= 120 and all(_TOOL_LINK.match(part) for part in re.split(r"[|•·/]", paragraph)):
        return True
    low = paragraph.lower()  # a cheap test first: most paragraphs hold none of these words
    return any(w in low for w in _FURNITURE_WORDS) and bool(_FURNITURE.search(paragraph))


def main_text(html: str, *, metadata: bool = True) -> MainText | None:
    """The article's paragraphs in ``html``, or ``None`` when trafilatura finds no main text.

    Comments are never included. A page trafilatura cannot parse at all gives ``None``
    too (logged at debug level), so that the caller falls back to the whole page's text.
    ``metadata=False`` skips trafilatura's search for an author and a date (a scan of the
    whole page, a third of its time), for a page that states both in its markup.
    """
    traf = _load()
    from lxml import etree

    try:
        tree = traf.load_html(html)
        if tree is None:
            logger.debug("trafilatura could not parse the page")
            return None
        h1s = tree.findall(".//h1")
        h1 = _squash(h1s[0].text_content()) or None if len(h1s) == 1 else None
        _prune(tree)
        byline = _byline(tree)
        doc = traf.bare_extraction(
            tree, include_comments=False, with_metadata=metadata, include_tables=True, include_images=False,
            include_links=False, deduplicate=False, favor_precision=True,
        )
    except (ValueError, TypeError, RecursionError, etree.LxmlError) as e:
        # A page lxml or trafilatura trips on is still read, by the standard-library parser.
        logger.debug("trafilatura failed on the page (%s: %s)", type(e).__name__, e)
        return None
    if doc is None or doc.body is None:
        return None
    paragraphs = [p for p in _paragraphs(doc.body) if not is_furniture(p)]
    if not paragraphs:
        return None
    return MainText(paragraphs=paragraphs, h1=h1, author=doc.author or byline,
                    date=doc.date or None)
