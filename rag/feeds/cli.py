"""``rag feeds add | list | remove | refresh``: the RSS and Atom feeds an index follows.

``rag/cli.py`` calls :func:`add_parser` only when the command is ``rag feeds``. Exit
codes as for ``rag``: 0 done, 1 a problem it explains (a feed or page that could not
be read, an unknown feed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``feeds`` and its actions to a ``rag`` sub-command parser."""
    fd = subparsers.add_parser(
        "feeds", help="follow RSS/Atom feeds: add, list, remove, refresh",
        description="Follow RSS and Atom feeds: each refresh fetches the pages of their new or changed entries "
                    "and indexes them (an unchanged feed or page is not fetched again, nor re-embedded).")
    acts = fd.add_subparsers(dest="action", required=True)

    def index_opt(sp):
        sp.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX or ./index)")

    a = acts.add_parser("add", help="follow a feed (or the feed a web page names) and read it now")
    a.add_argument("url", help="the feed's http(s) URL, or a page that links to its feed")
    index_opt(a)
    a.add_argument("--no-refresh", action="store_true", help="only follow it; read it at the next refresh")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a.set_defaults(func=cmd_feeds_add)

    ls = acts.add_parser("list", help="the feeds followed, when each was last read and what failed")
    index_opt(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_feeds_list)

    rm = acts.add_parser("remove", help="stop following a feed (its articles stay unless --delete-articles)")
    rm.add_argument("url")
    index_opt(rm)
    rm.add_argument("--delete-articles", action="store_true",
                    help="also remove from the index the articles read only from this feed")
    rm.set_defaults(func=cmd_feeds_remove)

    rf = acts.add_parser("refresh", help="read the feeds (all, or those named) and index what is new or changed")
    rf.add_argument("urls", nargs="*", metavar="URL", help="feeds to read (default: every feed followed)")
    index_opt(rf)
    rf.add_argument("--json", action="store_true", help="print the report as JSON")
    rf.add_argument("-q", "--quiet", action="store_true", help="only the final summary")
    rf.set_defaults(func=cmd_feeds_refresh)
    return fd


def _index_dir(args) -> Path:
    from rag.cli import _config

    return _config(args).index_dir


def _print_result(result, quiet: bool) -> None:
    if result.status == "failed":
        print(f"failed   {result.url}: {result.error}", file=sys.stderr)
        return
    if not quiet:
        print(result.summary())
    for p in result.problems:
        print(f"skipped {p}", file=sys.stderr)


def _refresh(args, urls) -> int:
    from rag.cli import _open_index
    from rag.feeds.refresh import refresh

    with _open_index(args) as index:
        report = refresh(index, urls, on_feed=None if args.json else lambda r: _print_result(r, args.quiet))
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    elif not report.feeds:
        print(f"no feeds followed in {index.path}: add one with `rag feeds add URL --index {index.path}`")
    else:
        print(report.summary())
        if report.date_summary():
            print(report.date_summary(), file=sys.stderr)
    return 1 if report.failed or report.failed_feeds else 0


def cmd_feeds_add(args) -> int:
    from rag.cli import _open_index
    from rag.feeds.refresh import follow

    index_dir = _index_dir(args)
    # The index is made (or checked) first: a feed list without an index to fill is of no use.
    _open_index(args, create=True).close()
    feed, page = follow(index_dir, args.url)
    if page and not args.json:
        print(f"{page} is a web page; following the feed it names: {feed.url}")
    if not args.json:
        print(f"following {feed.url}" + (f" ({feed.title})" if feed.title else "") + f" in {index_dir}")
    if args.no_refresh:
        if args.json:
            print(json.dumps(feed.to_dict(), ensure_ascii=False, indent=2))
        return 0
    args.quiet = False
    return _refresh(args, [feed.url])


def cmd_feeds_list(args) -> int:
    from rag.feeds.store import FeedStore

    index_dir = _index_dir(args)
    feeds = []
    if FeedStore.exists(index_dir):
        with FeedStore(index_dir) as store:
            feeds = store.feeds()
    if args.json:
        print(json.dumps([f.to_dict() for f in feeds], ensure_ascii=False, indent=2))
        return 0
    if not feeds:
        print(f"no feeds followed in {index_dir}: add one with `rag feeds add URL --index {index_dir}`")
        return 0
    for f in feeds:
        print(f"{f.url}\t{f.title or '-'}")
        state = f"error: {f.last_error}" if f.last_error else "ok"
        print(f"    last read {f.last_checked or 'never'}, last success {f.last_ok or 'never'}, "
              f"{f.articles} article(s) from {f.entries} entries; {state}")
    return 0


def cmd_feeds_remove(args) -> int:
    from rag.cli import _open_index
    from rag.feeds.refresh import unfollow

    with _open_index(args) as index:
        removed = unfollow(index, args.url, delete_articles=args.delete_articles)
    print(f"no longer following {args.url.strip()}"
          + (f"; removed {len(removed)} article(s) from the index" if args.delete_articles else ""))
    return 0


def cmd_feeds_refresh(args) -> int:
    return _refresh(args, args.urls or None)
