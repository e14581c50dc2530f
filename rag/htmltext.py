"""Plain text and metadata from an HTML page.

:func:`extract` keeps the article's main text, found by trafilatura
(:mod:`rag.htmlmain`), and the metadata the page states (:mod:`rag.htmlmeta`).
When trafilatura finds no main text (a fragment, a tiny page), it falls back to
:func:`extract_all`: every visible text of the page, with the standard library's
parser, minus scripts, styles and the elements that are always page chrome.

The output is plain text only: tags, attributes (so event handlers), scripts and
styles never reach it, and nothing in the page is ever run. Both parsers are
lenient by design, because saved news pages are often malformed: unclosed tags,
stray closing tags and unclosed comments all give a best-effort result, never an
error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from rag import htmlmeta
from rag.htmlmain import MainText, main_text

logger = logging.getLogger(__name__)

# Elements whose whole content is dropped: code, page chrome, widgets.
SKIP_TAGS = frozenset(
    {
        "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
        "form", "iframe", "svg", "button",
        # Not in a reader's view of the article either.
        "select", "textarea", "object", "canvas", "audio", "video", "math",
    }
)
# ARIA roles of the same page chrome as nav/header/footer/aside.
SKIP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary"})

# Elements that end one paragraph and start another.
BLOCK_TAGS = frozenset(
    {
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "article", "section", "br",
        "blockquote", "tr", "pre",
        "ul", "ol", "dl", "dt", "dd", "table", "caption", "main", "figure", "figcaption",
        "hr", "address", "details", "summary", "body",
    }
)
# Table cells: keep neighbours apart without starting a paragraph.
_CELL_TAGS = frozenset({"td", "th"})

# Elements that never have content or a closing tag; they are not put on the stack.
_VOID_TAGS = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "param", "source", "track", "wbr",
    }
)


_UNTERMINATED = re.compile(r"<[a-zA-Z/!?]")
# JSON-LD blocks read from one page; news pages have one to three.
_MAX_JSONLD = 20
#: Below this much visible text (the standard-library reading), a page is a fragment and is
#: read whole: any saved news page has more, from its menus and footer alone.
FRAGMENT_CHARS = 500


@dataclass(frozen=True)
class HtmlDoc:
    """What :func:`extract` found in a page; ``text`` has paragraphs separated by blank lines.

    ``source`` is the site's name; ``author`` the author names, joined with ``"; "``;
    ``date`` the publication date as the page writes it; ``main_text`` is False when the
    text is the whole page's (trafilatura found no main text).
    """

    title: str | None
    text: str
    date: str | None = None
    url: str | None = None
    source: str | None = None
    author: str | None = None
    main_text: bool = False


def _squash(s: str) -> str:
    return " ".join(s.split())


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # Open elements, so an unclosed element ends when an ancestor closes and
        # a stray closing tag with no open match is ignored.
        self._stack: list[tuple[str, bool]] = []  # (tag, drops its content)
        self._skipping = 0
        self._in_title = 0
        self._in_h1 = 0
        self._title: list[str] = []
        self._h1: list[str] | None = None
        self._h1_done = False
        self._paragraphs: list[str] = []
        self._current: list[str] = []
        self.meta: dict[str, str] = {}
        self.time_datetime: str | None = None
        self.canonical: str | None = None
        self.jsonld: list[str] = []
        self._jsonld: list[str] | None = None

    # -- structure ---------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        # A title holds only text: a tag inside it means its end tag is missing.
        self._in_title = 0
        if tag == "meta":
            self._meta(a)
            return
        if tag == "link":
            rels = a.get("rel", "").lower().split()
            if "canonical" in rels and a.get("href") and self.canonical is None:
                self.canonical = a["href"].strip()
            return
        if tag in _VOID_TAGS:
            if tag in BLOCK_TAGS and not self._skipping:
                self._break()
            return
        skip = tag in SKIP_TAGS or not SKIP_ROLES.isdisjoint(a.get("role", "").lower().split())
        if tag == "script" and "ld+json" in a.get("type", "").lower() and len(self.jsonld) < _MAX_JSONLD:
            self._jsonld = []  # read as data by rag.htmlmeta, never as text
        self._stack.append((tag, skip))
        if skip:
            self._skipping += 1
            return
        if self._skipping:
            return
        if tag == "time" and self.time_datetime is None and a.get("datetime", "").strip():
            self.time_datetime = a["datetime"].strip()
        if tag == "title":
            self._in_title += 1
        elif tag == "h1" and not self._h1_done:
            self._in_h1 += 1
            if self._h1 is None:
                self._h1 = []
        if tag in BLOCK_TAGS:
            self._break()
        elif tag in _CELL_TAGS:
            self._current.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # ``<div/>`` is an open tag in HTML, but closing it at once is the safer reading here.
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if not any(t == tag for t, _ in self._stack):
            if tag == "br" and not self._skipping:  # ``</br>`` is read as ``<br>`` by browsers
                self._break()
            return
        while self._stack:
            t, skip = self._stack.pop()
            self._close(t, skip)
            if t == tag:
                break

    def _close(self, tag: str, skip: bool) -> None:
        if tag == "script" and self._jsonld is not None:
            self.jsonld.append("".join(self._jsonld))
            self._jsonld = None
        if skip:
            self._skipping -= 1
            return
        if self._skipping:
            return
        if tag == "title" and self._in_title:
            self._in_title -= 1
        elif tag == "h1" and self._in_h1:
            self._in_h1 -= 1
            if not self._in_h1 and self._h1 is not None and _squash("".join(self._h1)):
                self._h1_done = True
        if tag in BLOCK_TAGS:
            self._break()
        elif tag in _CELL_TAGS:
            self._current.append(" ")

    def handle_data(self, data: str) -> None:
        if self._jsonld is not None:
            self._jsonld.append(data)
        if self._skipping:
            return
        if self._in_title:
            self._title.append(data)
            return
        if self._in_h1 and self._h1 is not None:
            self._h1.append(data)
        self._current.append(data)

    def _break(self) -> None:
        if self._in_h1 and self._h1 is not None and _squash("".join(self._h1)):
            # The title is the heading's first line, even when ``</h1>`` is missing.
            self._in_h1 = 0
            self._h1_done = True
        par = _squash("".join(self._current))
        if par:
            self._paragraphs.append(par)
        self._current = []

    def _meta(self, a: dict[str, str]) -> None:
        key = (a.get("property") or a.get("name") or a.get("itemprop") or "").strip().lower()
        value = a.get("content", "").strip()
        if key and value and key not in self.meta:
            self.meta[key] = value

    def close(self) -> None:
        # What is left unparsed at the end is an unterminated tag, comment or quoted
        # attribute, which browsers read to the end of the page and never show;
        # html.parser would emit it as text, handlers and all.
        if _UNTERMINATED.match(self.rawdata):
            self.rawdata = ""
        super().close()

    # -- results -----------------------------------------------------------

    def paragraphs(self) -> list[str]:
        self._break()
        return self._paragraphs

    def title_text(self) -> str | None:
        return _squash("".join(self._title)) or None

    def h1_text(self) -> str | None:
        return _squash("".join(self._h1)) if self._h1 else None


def _parse(html: str) -> _TextParser:
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser


def extract_all(html: str) -> HtmlDoc:
    """Read the title, all the visible text and the metadata of an HTML page, standard library only.

    The title is the page's ``og:title``, else its JSON-LD headline, else its ``<title>``,
    else its first ``<h1>`` (``None`` when it has none of them); the other metadata are
    read as by :func:`extract`. Block elements become paragraph breaks and
    whitespace inside a paragraph is collapsed. Unlike :func:`extract`, this keeps page
    clutter that is not marked up as chrome (cookie banners, "most read" lists, comments).

    Args:
        html: the page's source, already decoded.

    Returns:
        An :class:`HtmlDoc`; ``text`` is ``""`` for a page with no visible text.
    """
    parser = _parse(html)
    return _doc(parser, parser.paragraphs())


def _jsonld(parser: _TextParser) -> htmlmeta.JsonLdArticle:
    return htmlmeta.jsonld_article(parser.jsonld) if parser.jsonld else htmlmeta.JsonLdArticle()


def _doc(parser: _TextParser, paragraphs: list[str], m: MainText | None = None,
         ld: htmlmeta.JsonLdArticle | None = None) -> HtmlDoc:
    meta = parser.meta
    ld = ld or _jsonld(parser)
    site = _squash(meta.get("og:site_name", "")) or ld.site or None
    title = _squash(meta.get("og:title", "")) or ld.headline
    if not title and m is not None:
        # A page's only <h1> is its headline; a <title> often adds the site's name to it.
        page_title = parser.title_text()
        title = m.h1 or (_title_from_tag(page_title, paragraphs[:4], site) if page_title else None)
    title = title or parser.title_text() or parser.h1_text()
    date = htmlmeta.meta_date(meta) or ld.date or parser.time_datetime or (m.date if m else None)
    author = ld.author or htmlmeta.meta_author(meta)
    if author is None and m is not None:
        byline = m.author or next((p for p in paragraphs[:4] if len(p) <= 150 and _BYLINE.match(p)), None)
        author = htmlmeta.byline_names(byline) if byline else None
    return HtmlDoc(
        title=title or None,
        text="\n\n".join(paragraphs),
        date=date,
        url=parser.canonical or meta.get("og:url") or ld.url or None,
        source=site,
        author=author,
        main_text=m is not None,
    )


_TITLE_SEPARATOR = re.compile(r"\s+(?:\||::|–|—|-|·|•|»|/)\s+")
_BYLINE = re.compile(r"(?:par|by)\s+[A-ZÀ-Þ]", re.IGNORECASE)


def _title_from_tag(title: str, first_paragraphs: list[str], site: str | None) -> str:
    """The headline in a ``<title>`` that adds the site's name ("Titre | Le Journal").

    The part the page repeats as a heading wins; else a part equal to the site's name is
    dropped. " : " is not a separator: French headlines use it ("Lyon : le tribunal...").
    """
    parts = [p for p in _TITLE_SEPARATOR.split(title) if p.strip()]
    if len(parts) < 2:
        return title
    seen = {" ".join(p.split()).casefold() for p in first_paragraphs}
    for part in parts:
        if len(part.split()) >= 2 and " ".join(part.split()).casefold() in seen:
            return part
    if site:
        kept = [p for p in parts if p.casefold() != site.casefold()]
        if 0 < len(kept) < len(parts):
            return " - ".join(kept) if len(kept) > 1 else kept[0]
    return title


def extract(html: str) -> HtmlDoc:
    """Read the title, the article's main text and the metadata of an HTML page.

    The main text is trafilatura's (:func:`rag.htmlmain.main_text`): the article's own
    paragraphs, without banners, menus, related-article lists, comments or paywall
    prompts. When it finds none, and for a page with less than ``FRAGMENT_CHARS`` of
    visible text (a fragment, which has no clutter to remove and which trafilatura reads
    less exactly), the text is :func:`extract_all`'s. Metadata, each from the first
    source that states it:

    - title: ``og:title``, the JSON-LD headline, trafilatura's title, ``<title>``, ``<h1>``;
    - date (as written): a publication-date meta tag, JSON-LD ``datePublished``, the first
      ``<time datetime>`` outside the page chrome, the date trafilatura's htmldate finds;
    - author: JSON-LD ``author``, an author meta tag, the page's byline;
    - source (site name): ``og:site_name``, the JSON-LD publisher;
    - url: ``<link rel=canonical>``, ``og:url``, the JSON-LD url.

    Args:
        html: the page's source, already decoded.

    Returns:
        An :class:`HtmlDoc`; ``text`` is ``""`` for a page with no visible text.
    """
    parser = _parse(html)
    everything = parser.paragraphs()
    ld = _jsonld(parser)
    if sum(map(len, everything)) < FRAGMENT_CHARS:
        return _doc(parser, everything, ld=ld)  # a fragment or a tiny page: no clutter to separate from it
    # trafilatura's own search for a date and an author scans the whole page: only when needed
    stated = (htmlmeta.meta_date(parser.meta) or ld.date) and (ld.author or htmlmeta.meta_author(parser.meta))
    main = main_text(html, metadata=not stated)
    if main is None:
        logger.debug("no main text found; keeping all of the page's text")
        return _doc(parser, everything, ld=ld)
    return _doc(parser, main.paragraphs, main, ld)
