"""RSS and Atom feeds an index follows: their state (:mod:`~rag.feeds.store`), reading them
into the index (:mod:`~rag.feeds.refresh`), refreshing on a schedule
(:mod:`~rag.feeds.schedule`) and the ``rag feeds`` commands (:mod:`~rag.feeds.cli`).

Importing this package is cheap: httpx and feedparser load when a feed is first read.
"""

from rag.feeds.refresh import FeedResult, RefreshReport, follow, parse_feed, refresh, unfollow
from rag.feeds.schedule import FeedScheduler, parse_duration
from rag.feeds.store import FEEDS_DB, Feed, FeedStore

__all__ = [
    "FEEDS_DB", "Feed", "FeedResult", "FeedScheduler", "FeedStore", "RefreshReport", "follow", "parse_duration",
    "parse_feed", "refresh", "unfollow",
]
