"""A cheap count of the records an ingest will read, for a progress bar's total and ETA.

Nothing is parsed that the count does not need: a single-article file is one record; a
JSON Lines file is its lines with text on them, found by scanning bytes for newlines
(decompressing a ``.jsonl.gz`` on the way, which costs a fraction of a second per 100 MB
and nothing next to embedding); a ``.json`` file is parsed only when small, else its
``"title"`` keys are counted (an estimate). A file that cannot be read counts one: the
reader reports it as one problem. The count is what :meth:`rag.index.Index.add` reports
as done at the end (articles and problems together), give or take records that appear
twice and the estimate for large JSON files.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from rag.articles import _LIST_KEYS, _suffix_of, _walk_items

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: A .json file up to this size (decompressed) is parsed for an exact count.
JSON_PARSE_BYTES = 16 * _CHUNK
# A line with text: its newline, optional blanks, then anything else. A match ends at the
# line's first character, so the next line's newline is left for the next match.
_TEXT_LINE = re.compile(rb"\n[ \t\r\f\v]*[^ \t\r\f\v\n]")
_TITLE_KEY = b'"title"'


def count_records(paths: Iterable[str | Path]) -> int:
    """How many records (articles or problems) reading ``paths`` will give, cheaply.

    Files and folders as for :func:`rag.articles.read_articles` (folders walked the same
    way); a path that does not exist counts nothing (reading fails at once on it).
    """
    given = [Path(p) for p in paths]
    total = 0
    for item in _walk_items([p for p in given if p.exists()]):
        total += 1 if not isinstance(item, Path) else count_file(item)
    return total


def count_file(path: Path) -> int:
    """The records of one file: 1 for a single article or an unreadable file, the lines with
    text of a JSON Lines file, the records of a JSON file (estimated when large)."""
    suffix = _suffix_of(path)
    try:
        if suffix in (".jsonl", ".jsonl.gz"):
            with _open(path, suffix) as f:
                return max(1, count_text_lines(_chunks(f)))
        if suffix in (".json", ".json.gz"):
            with _open(path, suffix) as f:
                return max(1, _count_json(f))
    except (OSError, EOFError, zlib.error) as exc:
        # The reader reports the damage; records before it are read, so this undercounts a little.
        log.debug("could not count the records of %s: %s", path, exc)
    return 1


def count_text_lines(chunks: Iterable[bytes]) -> int:
    """The lines holding something besides blanks in a stream of bytes, whether or not the
    last one ends with a newline."""
    n = 0
    carry = b"\n"  # as if a newline came before the first byte
    for chunk in chunks:
        data = carry + chunk
        n += len(_TEXT_LINE.findall(data))
        last = data.rfind(b"\n")
        if last >= 0:
            # A line still blank at the chunk's end may get its text in the next chunk;
            # any other line was counted already.
            carry = b"\n" if not data[last + 1:].strip() else b""
        # else: the chunk continues a line that was already counted (carry stays b"")
    return n


def _open(path: Path, suffix: str) -> IO[bytes]:
    return gzip.open(path, "rb") if suffix.endswith(".gz") else open(path, "rb")


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


def _count_json(f: IO[bytes]) -> int:
    head = f.read(JSON_PARSE_BYTES + 1)
    if len(head) <= JSON_PARSE_BYTES:
        try:
            data = json.loads(head.decode("utf-8-sig"), strict=False)
        except (ValueError, RecursionError):
            return 1  # one problem
        if isinstance(data, dict):
            key = next((k for k in _LIST_KEYS if k in data), None)
            data = data[key] if key is not None and isinstance(data[key], list) else [data]
        return len(data) if isinstance(data, list) else 1
    # Large: every record has a title, so count the key (boundaries handled by an overlap).
    n = head.count(_TITLE_KEY)
    tail = head[-(len(_TITLE_KEY) - 1):]
    for chunk in _chunks(f):
        data = tail + chunk
        n += data.count(_TITLE_KEY)
        tail = data[-(len(_TITLE_KEY) - 1):]
    return n
