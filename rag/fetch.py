"""Web pages and feeds over HTTP, bounded, and a fetched page as an :class:`Article`.

Every request is bounded so that one bad server never hangs or floods an ingest:

- only ``http`` and ``https`` URLs;
- a connect timeout, a read timeout (between bytes) and a total deadline for the
  whole body, so a server dripping one byte a second is cut off too;
- a byte cap on the (decompressed) body: a declared ``Content-Length`` over it is
  refused before anything is read, and a body that grows past it is dropped as soon
  as it does, never read whole;
- the content type checked from the headers before the body is read (HTML pages;
  RSS/Atom/XML feeds);
- redirects followed by hand, at most :attr:`FetchLimits.max_redirects`, each target
  checked again, a loop named as such;
- a User-Agent that names the tool and where to learn about it (set
  ``$RAG_USER_AGENT`` to put your own contact in it).

Conditional requests: give the ``ETag`` and ``Last-Modified`` of the previous fetch
and an unchanged resource comes back as a 304 with no body (:attr:`Fetched.not_modified`).

Failures raise :class:`~rag.errors.FetchError` with the URL and the reason. httpx is
imported when the first :class:`Fetcher` is made, not with this module.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import logging
import os
import re
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, fields
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from rag.errors import ConfigError, FetchError, InputError
from rag.types import Article, RecordProblem

log = logging.getLogger(__name__)

_MB = 1024 * 1024

#: The tool and a page about it; ``$RAG_USER_AGENT`` replaces it (put your contact there).
DEFAULT_USER_AGENT = "rag-news/0.1 (+https://example.org/rag-news; news QA, fetches only the pages its user asks for)"

#: What a page may be served as.
PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: What a feed may be served as (many servers use the generic XML types, some text/plain).
FEED_TYPES = frozenset({
    "application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml",
    "application/x-rss+xml", "text/rss+xml",
})
#: Served with these (or no type at all), a body is taken only if it starts like markup.
_SNIFFED_TYPES = frozenset({"", "text/plain", "application/octet-stream"})

_REDIRECTS = (301, 302, 303, 307, 308)
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""\A\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_.:-]{1,40})["']""")
#: Query parameters that only track who clicked; two URLs differing by them are one page.
_TRACKING = re.compile(r"^(?:utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|xtor|at_medium|at_campaign|_ga)$",
                       re.IGNORECASE)


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much one request may take.

    Attributes:
        connect_timeout: seconds to connect.
        read_timeout: seconds to wait for each piece of the answer.
        total_timeout: seconds for the whole exchange, body included (redirects each start anew).
        max_bytes: largest page body, decompressed.
        max_feed_bytes: largest feed body, decompressed.
        max_redirects: redirects followed before giving up.
        user_agent: the ``User-Agent`` header (default ``$RAG_USER_AGENT`` or :data:`DEFAULT_USER_AGENT`).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 5 * _MB
    max_feed_bytes: int = 10 * _MB
    max_redirects: int = 5
    user_agent: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "user_agent":
                if not isinstance(value, str):
                    raise ConfigError(f"FetchLimits.user_agent must be a string, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                    value == 0 and f.name != "max_redirects"):
                raise ConfigError(f"FetchLimits.{f.name} must be a positive number, got {value!r}")
        if not self.user_agent:
            object.__setattr__(self, "user_agent", os.environ.get("RAG_USER_AGENT", "").strip() or DEFAULT_USER_AGENT)


@dataclass(frozen=True)
class Fetched:
    """One HTTP answer that passed the checks.

    ``status`` is 200-class, or 304 (``not_modified``: ``body`` is empty; the caller's
    copy is current). ``url`` is the URL asked for, ``final_url`` the one answering
    after redirects.
    """

    url: str
    final_url: str
    status: int
    content_type: str = ""
    charset: str | None = None
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    #: when the answer came (POSIX time): what a page's relative date ("il y a 2 heures") counts from
    fetched_at: float = dataclasses.field(default_factory=time.time)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def checksum(self) -> str:
        """Hash of the body, to tell an unchanged page from a changed one without parsing it."""
        return hashlib.sha256(self.body).hexdigest()

    def text(self) -> str:
        """The body decoded: a byte-order mark, else the header's charset, else the page's own
        ``<meta charset>`` or XML declaration, else UTF-8; Windows-1252 when that fails."""
        body = self.body
        for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                         (codecs.BOM_UTF16_BE, "utf-16-be")):
            if body.startswith(bom):
                return body[len(bom):].decode(enc, "replace")
        declared = self.charset or _sniff_charset(body[:4096])
        for enc in (_codec(declared), "utf-8"):
            if enc is None:
                continue
            try:
                return body.decode(enc)
            except (UnicodeDecodeError, LookupError):
                continue
        return body.decode("cp1252", "replace")


def _sniff_charset(head: bytes) -> str | None:
    m = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii") if m else None


def _codec(name: str | None) -> str | None:
    """A Python codec for a declared charset (None when unknown); Latin-1 and ASCII read as
    Windows-1252, as browsers do (pages that say so mostly are)."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    return "cp1252" if codec in ("latin-1", "iso8859-1", "ascii") else codec


def is_url(value: object) -> bool:
    """Whether ``value`` is a string naming an ``http``/``https`` URL (rather than a file path)."""
    return isinstance(value, str) and re.match(r"(?i)https?://", value.strip()) is not None


def check_url(url: str) -> str:
    """``url`` stripped, if it is an absolute http(s) URL with a host.

    Raises:
        FetchError: another scheme, no host, or spaces or control characters in it.
    """
    if not isinstance(url, str):
        raise FetchError(repr(url), "a URL must be a string")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(url, f"only http and https URLs can be fetched, not {parts.scheme or 'a bare path'!r}")
    if not parts.hostname:
        raise FetchError(url, "the URL has no host name")
    if re.search(r"[\x00-\x20\x7f]", url):
        raise FetchError(url, "the URL contains spaces or control characters (percent-encode them)")
    return url


def normalize_url(url: str) -> str:
    """The form of ``url`` two links to one page share: lower-case scheme and host, no
    default port, no fragment, no tracking parameters (``utm_*``, ``fbclid``...), ``/`` for
    an empty path."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port and (scheme, parts.port) not in (("http", 80), ("https", 443)) else None
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def url_id(url: str) -> str:
    """The article id of a web page: stable for its (normalized) URL, so fetching a page
    again replaces its article instead of adding a second one."""
    return "url-" + hashlib.sha256(normalize_url(url).encode("utf-8")).hexdigest()[:16]


def is_private_host(url: str) -> bool:
    """Whether ``url``'s host is, or resolves to, a loopback, private, link-local or otherwise
    non-public address. A name that does not resolve is not (its request fails on its own)."""
    import ipaddress
    import socket

    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    for a in addresses:
        ip = ipaddress.ip_address(a.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return True
    return False


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


class Fetcher:
    """An HTTP client with the bounds of :class:`FetchLimits`; reuse one for many requests
    (connections are kept open). Use as a context manager, or call :meth:`close`."""

    def __init__(self, limits: FetchLimits | None = None, *, transport=None):
        import httpx

        self.limits = limits or FetchLimits()
        lim = self.limits
        self._httpx = httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(lim.read_timeout, connect=lim.connect_timeout),
            headers={"User-Agent": lim.user_agent},
            follow_redirects=False,
            transport=transport,
        )

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, *, accept: Collection[str] = PAGE_TYPES, etag: str | None = None,
            last_modified: str | None = None, max_bytes: int | None = None, public_only: bool = False) -> Fetched:
        """GET ``url`` within the limits.

        Args:
            accept: the content types taken (e.g. :data:`PAGE_TYPES`, :data:`FEED_TYPES`).
            etag, last_modified: from the previous fetch, to ask only for a changed resource.
            max_bytes: the body cap (default ``limits.max_bytes``).
            public_only: refuse hosts (also after a redirect) on a loopback, private or
                link-local address: for links a third party wrote (a feed's entries), which
                should not reach the machines around the one fetching.
        Returns:
            A :class:`Fetched`, status 2xx or 304.
        Raises:
            FetchError: the URL, the connection, the status, the type or the size is not right.
        """
        url = check_url(url)
        cap = self.limits.max_bytes if max_bytes is None else max_bytes
        headers = {"Accept": _accept_header(accept)}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, chain = url, [normalize_url(url)]
        for _ in range(self.limits.max_redirects + 1):
            if public_only and is_private_host(current):
                raise FetchError(url, f"{urlsplit(current).hostname} is a local or private network address, "
                                      "which a feed's links may not reach")
            fetched, location = self._get_once(url, current, headers, accept, cap)
            if location is None:
                return fetched
            nxt = urljoin(current, location)
            try:
                check_url(nxt)
            except FetchError as exc:
                raise FetchError(url, f"redirected to {nxt[:200]}, which cannot be fetched ({exc.reason})") from None
            if normalize_url(nxt) in chain:
                raise FetchError(url, f"redirect loop ({' -> '.join([*chain, normalize_url(nxt)][-4:])})")
            chain.append(normalize_url(nxt))
            current = nxt
        raise FetchError(url, f"more than {self.limits.max_redirects} redirects (last to {current[:200]})")

    def _get_once(self, url: str, current: str, headers: dict, accept: Collection[str],
                  cap: int) -> tuple[Fetched | None, str | None]:
        """One request: (the answer, None), or (None, the redirect's Location)."""
        httpx = self._httpx
        deadline = time.monotonic() + self.limits.total_timeout
        try:
            with self._client.stream("GET", current, headers=headers) as resp:
                if resp.status_code in _REDIRECTS and resp.headers.get("location"):
                    return None, resp.headers["location"]
                if resp.status_code == 304:
                    return Fetched(url, str(resp.url), 304, etag=resp.headers.get("etag"),
                                   last_modified=resp.headers.get("last-modified")), None
                if not 200 <= resp.status_code < 300:
                    raise FetchError(url, f"HTTP {resp.status_code} {resp.reason_phrase or ''}".rstrip()
                                     + (f" (after redirects, at {current})" if current != url else ""))
                ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype not in accept and ctype not in _SNIFFED_TYPES:
                    kinds = ", ".join(sorted(accept))
                    hint = " (it is a feed: follow it with `rag feeds add URL`)" if ctype in FEED_TYPES else ""
                    raise FetchError(url, f"served as {ctype!r}, not a type read here ({kinds}){hint}")
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise FetchError(url, f"the page is {_fmt_size(int(declared))}, larger than the "
                                          f"{_fmt_size(cap)} limit (not downloaded)")
                body = bytearray()
                for piece in resp.iter_bytes():
                    body += piece
                    if len(body) > cap:
                        raise FetchError(url, f"the page is larger than the {_fmt_size(cap)} limit "
                                              "(download stopped)")
                    if time.monotonic() > deadline:
                        raise FetchError(url, f"the download took longer than {self.limits.total_timeout:g} s")
                if ctype in _SNIFFED_TYPES and not bytes(body[:512]).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
                    raise FetchError(url, f"served as {ctype or 'no content type'!r} and does not look like "
                                          "HTML or XML")
                return Fetched(url, str(resp.url), resp.status_code, ctype, resp.charset_encoding, bytes(body),
                               resp.headers.get("etag"), resp.headers.get("last-modified")), None
        except httpx.TimeoutException as exc:
            what = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for the server"
            limit = self.limits.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self.limits.read_timeout
            raise FetchError(url, f"timed out {what} (after {limit:g} s)") from None
        except httpx.ConnectError as exc:
            raise FetchError(url, f"cannot connect: {_short(exc)}") from None
        except httpx.DecodingError as exc:
            raise FetchError(url, f"the server sent a body that cannot be decompressed: {_short(exc)}") from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise FetchError(url, f"{type(exc).__name__}: {_short(exc)}") from None


def _accept_header(accept: Collection[str]) -> str:
    return ", ".join(sorted(accept)) + ", */*;q=0.1"


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:300]


def _fmt_size(n: int) -> str:
    return f"{n / _MB:.1f} MB" if n >= _MB else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


# -- pages as articles ---------------------------------------------------------


def page_article(fetched: Fetched, *, date: str | None = None) -> Article:
    """The article of a fetched HTML page (read by :func:`rag.articles.html_to_article`).

    Its url is the page's canonical URL when it declares one on its own site (a
    canonical pointing elsewhere is ignored: a page cannot take another site's place),
    else the URL it was fetched from, after redirects; its id is :func:`url_id` of that
    url. ``date`` (a feed entry's) fills in when the page has no date of its own; a
    relative one ("il y a 2 heures") gets the day it names at fetch time put first
    (:func:`rag.dates.pin_relative`). The source is the page's site name, else its host.

    Raises:
        InputError: the page holds no article text.
    """
    from rag.articles import html_to_article

    article = html_to_article(fetched.text(), origin=fetched.url)
    url = fetched.final_url
    canonical = urljoin(fetched.final_url, article.url) if article.url else None
    if canonical and is_url(canonical) and _host(canonical) == _host(fetched.final_url):
        url = canonical
    from rag.dates import pin_relative

    return dataclasses.replace(article, id=url_id(url), url=url,
                               date=pin_relative(article.date or date, fetched.fetched_at),
                               source=article.source or _host(url) or None)


def fetch_articles(urls: Iterable[str], *, limits: FetchLimits | None = None) -> Iterator[Article | RecordProblem]:
    """Fetch each page and yield its article, or a :class:`RecordProblem` naming the URL and
    why it was not read (the others are still fetched). A URL given twice is fetched once."""
    seen: set[str] = set()
    fetcher = None
    try:
        for url in urls:
            key = normalize_url(url) if is_url(url) else url
            if key in seen:
                continue
            seen.add(key)
            if fetcher is None:
                fetcher = Fetcher(limits)
            try:
                article = page_article(fetcher.get(url))
            except (FetchError, InputError) as exc:
                yield RecordProblem(url.strip(), None, getattr(exc, "reason", str(exc)))
                continue
            log.info("fetched %s (%d characters)", url, len(article.text))
            yield article
    finally:
        if fetcher is not None:
            fetcher.close()
