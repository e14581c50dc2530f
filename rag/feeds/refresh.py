"""Reading RSS and Atom feeds into an index: follow a feed, refresh the feeds followed.

A refresh does as little as it can, because it runs on a schedule:

1. the feed is fetched with the ``ETag`` / ``Last-Modified`` of the last read; a 304
   ends it there (nothing fetched, nothing embedded);
2. each entry is told apart by its link; an entry already read whose title, dates and
   summary did not change in the feed is not fetched again;
3. a new or changed entry's page is fetched, conditionally again; a 304, or a body
   with the checksum of the last read, counts as unchanged without being parsed;
4. what is left goes to :meth:`rag.index.Index.add`, which embeds only the articles
   whose content changed (ids are per URL, see :func:`rag.fetch.url_id`, so a changed
   page replaces its article).

One bad feed (unreachable, malformed) is recorded as that feed's error and the
others are still read; one bad entry (404, not HTML, too large) is reported and
retried at the next refreshes, :data:`MAX_ENTRY_FAILURES` times at most until the
entry changes in the feed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from urllib.parse import urljoin

from rag.errors import FeedError, FetchError, InputError, RagError
from rag.fetch import (FEED_TYPES, PAGE_TYPES, Fetched, Fetcher, FetchLimits, check_url, is_private_host, is_url,
                       page_article)
from rag.feeds.store import EntryState, Feed, FeedStore
from rag.fsutil import write_lock
from rag.types import UNDATED_EXAMPLES, AddReport, Article, RecordProblem

log = logging.getLogger(__name__)

#: Entries read from one feed at one refresh (a feed that lists thousands is cut there).
MAX_ENTRIES = 200
#: Times a failing entry is tried again while it stays the same in the feed.
MAX_ENTRY_FAILURES = 3
#: One refresh at a time per index folder.
REFRESH_LOCK = ".feeds-lock"

#: How the articles are added: ``Index.add`` by default; the app passes one that takes its write lock.
AddFn = Callable[[list[Article]], AddReport]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- parsing -------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed: its page, title, date (ISO 8601, UTC) and a fingerprint of how
    the feed describes it (a change means the page may have changed)."""

    link: str
    title: str | None
    date: str | None
    fingerprint: str


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    entries: list[FeedEntry]
    #: entries without a usable link, which cannot be read
    skipped: int = 0


def parse_feed(fetched: Fetched) -> ParsedFeed:
    """The title and entries of a fetched RSS or Atom feed.

    A feed with small XML errors is still read (feedparser is lenient); one that
    yields no feed at all is an error.

    Raises:
        FeedError: the body is not RSS or Atom, or is too broken to read.
    """
    import feedparser

    headers = {"content-location": fetched.final_url}
    if fetched.content_type:
        headers["content-type"] = fetched.content_type + (f"; charset={fetched.charset}" if fetched.charset else "")
    # A stream, never a string: feedparser would take a string for a URL or a file name to open.
    parsed = feedparser.parse(io.BytesIO(fetched.body), response_headers=headers)
    why = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.get("version") and not parsed.entries:
        detail = f" ({_xml_error(why)})" if why else ""
        raise FeedError(fetched.url, f"not an RSS or Atom feed{detail}")
    entries: dict[str, FeedEntry] = {}
    skipped = 0
    for e in parsed.entries:
        link = _entry_link(e, fetched.final_url)
        if link is None:
            skipped += 1
            continue
        if link in entries:
            continue
        date = _iso(e.get("published_parsed") or e.get("updated_parsed"))
        h = hashlib.sha256()
        for part in (e.get("id"), e.get("title"), e.get("published"), e.get("updated"), e.get("summary")):
            h.update(str(part or "").encode("utf-8", "replace") + b"\x00")
        entries[link] = FeedEntry(link, (e.get("title") or "").strip() or None, date, h.hexdigest()[:32])
    if why is not None:
        if not entries:
            raise FeedError(fetched.url, f"malformed feed, no entry could be read ({_xml_error(why)})")
        log.info("%s: the feed has errors, read anyway: %s", fetched.url, _xml_error(why))
    title = (parsed.feed.get("title") or "").strip() or None
    return ParsedFeed(title, list(entries.values()), skipped)


def _xml_error(exc: BaseException) -> str:
    """feedparser's parse error, with its position when it has one ("unclosed token at line 3, column 9")."""
    msg = str(getattr(exc, "getMessage", lambda: exc)()) or type(exc).__name__
    line = getattr(exc, "getLineNumber", lambda: None)()
    col = getattr(exc, "getColumnNumber", lambda: None)()
    return f"{msg} at line {line}, column {col}" if line is not None else msg[:200]


def _entry_link(entry, base: str) -> str | None:
    link = entry.get("link")
    if not link:
        alternates = [lk.get("href") for lk in entry.get("links", []) if lk.get("href")]
        link = alternates[0] if alternates else None
    if not link:
        return None
    link = urljoin(base, link.strip())
    return link if is_url(link) else None


def _iso(st) -> str | None:
    if not st:
        return None
    try:
        return datetime(*st[:6], tzinfo=timezone.utc).isoformat()
    except (TypeError, ValueError):
        return None


class _FeedLinks(HTMLParser):
    """The ``<link rel="alternate" type="application/rss+xml|atom+xml" href>`` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag != "link":
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        if "alternate" in a.get("rel", "").lower().split() and a.get("type", "").lower().strip() in (
                "application/rss+xml", "application/atom+xml") and a.get("href"):
            self.links.append(a["href"].strip())


def discover_feeds(page: Fetched) -> list[str]:
    """The feed URLs a web page announces (``<link rel="alternate">``), absolute."""
    parser = _FeedLinks()
    parser.feed(page.text()[:500_000])
    out = [urljoin(page.final_url, h) for h in parser.links]
    return [u for u in dict.fromkeys(out) if is_url(u)]


# -- following -----------------------------------------------------------------


def follow(index_dir, url: str, *, limits: FetchLimits | None = None) -> tuple[Feed, str | None]:
    """Start following the feed at ``url`` (checked by fetching and parsing it now).

    A web page that announces a feed stands for that feed.

    Returns:
        (the feed as recorded, the page ``url`` was when the feed was found through it, else None).
    Raises:
        FetchError: the URL cannot be fetched. FeedError: it is not a feed and names none.
    """
    url = check_url(url)
    page = None
    with Fetcher(limits) as fetcher:
        fetched = fetcher.get(url, accept=FEED_TYPES | PAGE_TYPES, max_bytes=fetcher.limits.max_feed_bytes)
        if _looks_like_html(fetched):
            found = discover_feeds(fetched)
            if not found:
                raise FeedError(url, "is a web page, not a feed, and it names no feed "
                                     "(no <link rel=\"alternate\" type=\"application/rss+xml\">)")
            page, url = url, found[0]
            fetched = fetcher.get(url, accept=FEED_TYPES, max_bytes=fetcher.limits.max_feed_bytes)
        parsed = parse_feed(fetched)
    with FeedStore(index_dir) as store:
        store.add(url, parsed.title, _now())
        [feed] = store.feeds([url])
    return feed, page


def _looks_like_html(fetched: Fetched) -> bool:
    if fetched.content_type in PAGE_TYPES:
        return True
    head = fetched.body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def unfollow(index, url: str, *, delete_articles: bool = False) -> list[str]:
    """Stop following ``url``; with ``delete_articles``, also remove from the index the
    articles read only from it. Returns the ids of the articles removed.

    Raises:
        FeedError: the feed is not followed.
    """
    with FeedStore(index.path) as store:
        ids = store.remove(url.strip())
    if not delete_articles:
        return []
    return [i for i in ids if index.remove(i)]


# -- refreshing ----------------------------------------------------------------


@dataclass
class FeedResult:
    """What one feed's refresh did. ``status``: ``read``, ``not modified`` or ``failed``."""

    url: str
    title: str | None = None
    status: str = "read"
    error: str | None = None
    entries: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    #: entries fetched again and found the same (304, same page, same article)
    unchanged: int = 0
    #: entries not fetched: read before and the same in the feed
    known: int = 0
    problems: list[RecordProblem] = field(default_factory=list)
    chunks_added: int = 0
    #: articles whose date could not be read (AddReport.undated), and the first few dates
    undated: int = 0
    undated_examples: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.problems)

    def summary(self) -> str:
        name = self.title or self.url
        if self.status == "failed":
            return f"{name}: failed: {self.error}"
        if self.status == "not modified":
            return f"{name}: not modified since the last read"
        return (f"{name}: {len(self.added)} new, {len(self.updated)} updated, {self.unchanged + self.known} "
                f"unchanged, {self.failed} failed ({self.chunks_added} chunks embedded)")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["problems"] = [str(p) for p in self.problems]
        d["failed"] = self.failed
        return d


@dataclass
class RefreshReport:
    feeds: list[FeedResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def added(self) -> int:
        return sum(len(f.added) for f in self.feeds)

    @property
    def updated(self) -> int:
        return sum(len(f.updated) for f in self.feeds)

    @property
    def unchanged(self) -> int:
        return sum(f.unchanged + f.known for f in self.feeds)

    @property
    def failed(self) -> int:
        """Entries that could not be read."""
        return sum(f.failed for f in self.feeds)

    @property
    def failed_feeds(self) -> int:
        return sum(f.status == "failed" for f in self.feeds)

    @property
    def chunks_added(self) -> int:
        return sum(f.chunks_added for f in self.feeds)

    def date_summary(self) -> str | None:
        """One line on the articles of every feed whose date could not be read, or None."""
        total = AddReport(undated=sum(f.undated for f in self.feeds),
                          undated_examples=[d for f in self.feeds for d in f.undated_examples][:UNDATED_EXAMPLES])
        return total.date_summary()

    def summary(self) -> str:
        return (f"{len(self.feeds)} feed(s): {self.added} new, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.failed} failed ({self.chunks_added} chunks embedded)"
                + (f"; {self.failed_feeds} feed(s) could not be read" if self.failed_feeds else "")
                + f" in {self.seconds:.1f}s")

    def to_dict(self) -> dict:
        return {"feeds": [f.to_dict() for f in self.feeds], "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "failed": self.failed, "failed_feeds": self.failed_feeds,
                "chunks_added": self.chunks_added, "undated": sum(f.undated for f in self.feeds),
                "seconds": round(self.seconds, 3)}


def refresh(index, urls: Sequence[str] | None = None, *, limits: FetchLimits | None = None, add: AddFn | None = None,
            on_feed: Callable[[FeedResult], None] | None = None) -> RefreshReport:
    """Read the followed feeds (all, or ``urls``) and index their new and changed articles.

    Args:
        index: the :class:`rag.index.Index` whose folder holds the feed list.
        limits: request bounds for the feeds and their pages.
        add: how articles are indexed (default ``index.add``).
        on_feed: called with each feed's result as soon as it is done.
    Returns:
        A :class:`RefreshReport`; a feed that failed is in it with its error (also recorded
        for ``rag feeds list``), not raised.
    Raises:
        FeedError: one of ``urls`` is not followed.
        IndexLockedError: another refresh of this index is running.
    """
    t0 = time.perf_counter()
    add = add or index.add
    report = RefreshReport()
    busy = "a feed refresh is already running on the index at {folder}; try again when it is done"
    with write_lock(index.path, name=REFRESH_LOCK, busy=busy), FeedStore(index.path) as store, \
            Fetcher(limits) as fetcher:
        for feed in store.feeds([u.strip() for u in urls] if urls else None):
            result = _refresh_one(store, fetcher, feed, add)
            report.feeds.append(result)
            log.info("%s", result.summary())
            if on_feed:
                on_feed(result)
    report.seconds = time.perf_counter() - t0
    return report


def _refresh_one(store: FeedStore, fetcher: Fetcher, feed: Feed, add: AddFn) -> FeedResult:
    result = FeedResult(feed.url, feed.title)
    try:
        fetched = fetcher.get(feed.url, accept=FEED_TYPES, etag=feed.etag, last_modified=feed.last_modified,
                              max_bytes=fetcher.limits.max_feed_bytes)
        if fetched.not_modified:
            store.record_read(feed.url, now=_now(), title=None, etag=None, last_modified=None, entries=(), new=0,
                              not_modified=True)
            result.status = "not modified"
            return result
        parsed = parse_feed(fetched)
        result.title = parsed.title or feed.title
        result.entries = len(parsed.entries)
        # A feed on the open internet may not send us to the machines around us (a feed the
        # user runs on their own network may: its links are theirs).
        public_only = not is_private_host(fetched.final_url)
        states, articles = _read_entries(fetcher, parsed.entries[:MAX_ENTRIES], store.entries(feed.url), result,
                                         public_only=public_only)
        if articles:
            added = add(articles)
            result.added, result.updated = list(added.added), list(added.updated)
            result.unchanged += len(added.unchanged)
            result.chunks_added = added.chunks_added
            result.undated, result.undated_examples = added.undated, list(added.undated_examples)
            result.problems.extend(added.problems)
        store.record_read(feed.url, now=_now(), title=parsed.title, etag=fetched.etag,
                          last_modified=fetched.last_modified, entries=states,
                          new=len(result.added) + len(result.updated))
    except RagError as exc:
        # FetchError and FeedError, and an index that cannot be written (locked, mismatched):
        # this feed's state stays as it was, so the next refresh reads the same entries again.
        reason = getattr(exc, "reason", None) or str(exc)
        store.record_failure(feed.url, reason, _now())
        result.status, result.error = "failed", reason
    return result


def _read_entries(fetcher: Fetcher, entries: Sequence[FeedEntry], known: dict[str, EntryState],
                  result: FeedResult, *, public_only: bool) -> tuple[list[EntryState], list[Article]]:
    """Fetch the entries that are new or changed: their new states, and the articles to index."""
    states: list[EntryState] = []
    articles: dict[str, Article] = {}
    for entry in entries:
        old = known.get(entry.link)
        same_in_feed = old is not None and old.fingerprint == entry.fingerprint
        if same_in_feed and (old.last_error is None or old.failures >= MAX_ENTRY_FAILURES):
            result.known += 1
            continue
        prev = old or EntryState(entry.link)
        try:
            page = fetcher.get(entry.link, accept=PAGE_TYPES, etag=prev.etag, last_modified=prev.last_modified,
                               public_only=public_only)
            if page.not_modified or (prev.checksum is not None and page.checksum == prev.checksum):
                result.unchanged += 1
                states.append(dataclasses.replace(prev, fingerprint=entry.fingerprint, last_error=None, failures=0))
                continue
            article = page_article(page, date=entry.date)
        except (FetchError, InputError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            result.problems.append(RecordProblem(entry.link, None, reason))
            failures = prev.failures + 1 if same_in_feed else 1
            states.append(dataclasses.replace(prev, fingerprint=entry.fingerprint, last_error=reason,
                                              failures=failures))
            continue
        log.info("read %s (%d characters)", entry.link, len(article.text))
        articles[article.id] = article
        states.append(EntryState(entry.link, entry.fingerprint, article.id, page.etag, page.last_modified,
                                 page.checksum))
    return states, list(articles.values())
