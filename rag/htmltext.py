"""Plain text and metadata from an HTML page, with the standard library's parser.

The output is plain text only: tags, attributes (so event handlers), scripts and
styles never reach it, and nothing in the page is ever run. The parser is lenient
by design, because saved news pages are often malformed: unclosed tags, stray
closing tags and unclosed comments all give a best-effort result, never an error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser

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


@dataclass(frozen=True)
class HtmlDoc:
    """What :func:`extract` found in a page; ``text`` has paragraphs separated by blank lines."""

    title: str | None
    text: str
    date: str | None = None
    url: str | None = None
    source: str | None = None


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


def extract(html: str) -> HtmlDoc:
    """Read the title, body text and metadata of an HTML page.

    The title is the page's ``og:title``, else its ``<title>``, else its first ``<h1>``
    (``None`` when it has none of them). Block elements become paragraph breaks and
    whitespace inside a paragraph is collapsed.

    Args:
        html: the page's source, already decoded.

    Returns:
        An :class:`HtmlDoc`; ``text`` is ``""`` for a page with no visible text.
    """
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    meta = parser.meta
    title = _squash(meta.get("og:title", "")) or parser.title_text() or parser.h1_text()
    date = (
        meta.get("article:published_time")
        or meta.get("datepublished")
        or parser.time_datetime
        or None
    )
    return HtmlDoc(
        title=title or None,
        text="\n\n".join(parser.paragraphs()),
        date=date,
        url=parser.canonical or meta.get("og:url") or None,
        source=_squash(meta.get("og:site_name", "")) or None,
    )
