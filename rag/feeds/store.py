"""The feeds an index follows, and what was read of each, in ``<index>/feeds.sqlite``.

One small SQLite file next to the index's own store, so it travels with the folder
(and through ``rag index rebuild``). Each change is one transaction: a refresh
records a feed's new ``ETag`` together with the entries it read, after their
articles are committed to the index, so a crash at any point leaves either the old
state (and the next refresh reads the same entries again, which the index finds
unchanged) or the new one, never a feed marked read whose entries were lost.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.errors import FeedError, RagError
from rag.sidedb import immediate, open_side_db

FEEDS_DB = "feeds.sqlite"
FORMAT = "rag-feeds"
FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    title TEXT,
    added TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_checked TEXT,
    last_ok TEXT,
    last_error TEXT,
    last_new INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries (
    feed_url TEXT NOT NULL REFERENCES feeds(url) ON DELETE CASCADE,
    link TEXT NOT NULL,
    fingerprint TEXT,
    article_id TEXT,
    etag TEXT,
    last_modified TEXT,
    checksum TEXT,
    first_seen TEXT NOT NULL,
    last_fetched TEXT,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (feed_url, link)
);
"""


@dataclass(frozen=True)
class Feed:
    """A followed feed and how its last reads went (times are ISO 8601, UTC).

    ``last_checked`` is the last attempt, ``last_ok`` the last one that worked and
    ``last_error`` why the last attempt failed (None when it worked).
    ``last_new`` counts the articles the last successful read added or updated.
    """

    url: str
    title: str | None
    added: str
    etag: str | None = None
    last_modified: str | None = None
    last_checked: str | None = None
    last_ok: str | None = None
    last_error: str | None = None
    last_new: int = 0
    entries: int = 0
    articles: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EntryState:
    """What was read of one entry's page: to re-fetch it only when it changed, conditionally."""

    link: str
    fingerprint: str | None = None
    article_id: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    checksum: str | None = None
    last_error: str | None = None
    failures: int = 0


class FeedStore:
    """The ``feeds.sqlite`` of an index folder. Safe to share between threads; several
    processes may use one file (SQLite serializes their transactions)."""

    def __init__(self, index_dir: str | Path):
        self.path = Path(index_dir) / FEEDS_DB
        self._lock = threading.RLock()
        self._db = open_side_db(self.path, _SCHEMA, FORMAT, FORMAT_VERSION, "feed list", self._lock)

    @classmethod
    def exists(cls, index_dir: str | Path) -> bool:
        return (Path(index_dir) / FEEDS_DB).is_file()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "FeedStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tx(self):
        """One write transaction (taken at once, so two writers never deadlock on an upgrade)."""
        return immediate(self._db, self._lock)

    # -- feeds -------------------------------------------------------------
    def add(self, url: str, title: str | None, now: str) -> bool:
        """Follow ``url``; False when it was followed already (its title is updated)."""
        with self._tx() as db:
            known = db.execute("SELECT 1 FROM feeds WHERE url = ?", (url,)).fetchone() is not None
            if known:
                db.execute("UPDATE feeds SET title = coalesce(?, title) WHERE url = ?", (title, url))
            else:
                db.execute("INSERT INTO feeds(url, title, added) VALUES (?, ?, ?)", (url, title, now))
        return not known

    def remove(self, url: str) -> list[str]:
        """Stop following ``url``; the ids of the articles read from it that no other followed
        feed links to.

        Raises:
            FeedError: the feed is not followed.
        """
        with self._tx() as db:
            if db.execute("SELECT 1 FROM feeds WHERE url = ?", (url,)).fetchone() is None:
                raise FeedError(url, "not followed by this index (see `rag feeds list`)")
            ids = [r[0] for r in db.execute(
                "SELECT DISTINCT article_id FROM entries WHERE feed_url = ? AND article_id IS NOT NULL "
                "AND article_id NOT IN (SELECT article_id FROM entries WHERE feed_url != ? AND article_id IS NOT NULL)",
                (url, url))]
            db.execute("DELETE FROM entries WHERE feed_url = ?", (url,))
            db.execute("DELETE FROM feeds WHERE url = ?", (url,))
        return ids

    def feeds(self, urls: Sequence[str] | None = None) -> list[Feed]:
        """The followed feeds (all, or those of ``urls``, in that order), with entry and article counts.

        Raises:
            FeedError: one of ``urls`` is not followed.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT f.url, f.title, f.added, f.etag, f.last_modified, f.last_checked, f.last_ok, f.last_error, "
                "f.last_new, count(e.link), count(DISTINCT e.article_id) FROM feeds f "
                "LEFT JOIN entries e ON e.feed_url = f.url GROUP BY f.url ORDER BY f.rowid").fetchall()
        feeds = {r[0]: Feed(*r) for r in rows}
        if urls is None:
            return list(feeds.values())
        missing = [u for u in urls if u not in feeds]
        if missing:
            raise FeedError(missing[0], "not followed by this index: add it first with `rag feeds add URL`")
        return [feeds[u] for u in dict.fromkeys(urls)]

    def entries(self, url: str) -> dict[str, EntryState]:
        with self._lock:
            rows = self._db.execute(
                "SELECT link, fingerprint, article_id, etag, last_modified, checksum, last_error, failures "
                "FROM entries WHERE feed_url = ?", (url,)).fetchall()
        return {r[0]: EntryState(*r) for r in rows}

    # -- recording a read --------------------------------------------------
    def record_failure(self, url: str, error: str, now: str) -> None:
        """The feed could not be read: its state stays, with the error and the time of the attempt."""
        with self._tx() as db:
            db.execute("UPDATE feeds SET last_checked = ?, last_error = ? WHERE url = ?", (now, error, url))

    def record_read(self, url: str, *, now: str, title: str | None, etag: str | None, last_modified: str | None,
                    entries: Sequence[EntryState], new: int, not_modified: bool = False) -> None:
        """A successful read: the feed's validators and the entries read, in one transaction."""
        with self._tx() as db:
            if not_modified:
                db.execute("UPDATE feeds SET last_checked = ?, last_ok = ?, last_error = NULL, last_new = 0 "
                           "WHERE url = ?", (now, now, url))
                return
            db.execute("UPDATE feeds SET title = coalesce(?, title), etag = ?, last_modified = ?, last_checked = ?, "
                       "last_ok = ?, last_error = NULL, last_new = ? WHERE url = ?",
                       (title, etag, last_modified, now, now, new, url))
            for e in entries:
                db.execute(
                    "INSERT INTO entries(feed_url, link, fingerprint, article_id, etag, last_modified, checksum, "
                    "first_seen, last_fetched, last_error, failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(feed_url, link) DO UPDATE SET fingerprint = excluded.fingerprint, "
                    "article_id = coalesce(excluded.article_id, article_id), etag = excluded.etag, "
                    "last_modified = excluded.last_modified, checksum = excluded.checksum, "
                    "last_fetched = excluded.last_fetched, last_error = excluded.last_error, "
                    "failures = excluded.failures",
                    (url, e.link, e.fingerprint, e.article_id, e.etag, e.last_modified, e.checksum, now, now,
                     e.last_error, e.failures))
