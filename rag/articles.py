"""Reading news articles from files: plain text, Markdown, HTML, JSON and JSON Lines.

Everything that comes in as an article goes through here, so that every stored
article is cleaned the same way: Unicode NFC, ``\\n`` newlines, no control
characters, a stable id. A bad file or a bad record never stops a read: it becomes
a :class:`~rag.types.RecordProblem` in the stream and reading goes on.

Formats (by suffix, case-insensitive):

- ``.txt`` / ``.md``: one article; the first non-empty line is the title.
- ``.html`` / ``.htm``: one article; see :mod:`rag.htmltext`.
- ``.json`` (and ``.json.gz``): a list of records, an object holding one under
  ``articles``/``data``/``records``, or a single record. Parsed whole, so size-capped.
- ``.jsonl`` (and ``.jsonl.gz``): one record per line, streamed.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import stat
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from rag.errors import ConfigError, InputError
from rag.htmltext import extract, extract_all
from rag.types import Article, RecordProblem, content_id, normalize_text

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl", ".json.gz", ".jsonl.gz")

MAX_TITLE_CHARS = 1_000
MAX_ID_CHARS = 200
#: Longest date, source or url: they are sent with every library listing.
MAX_FIELD_CHARS = 2_000

NO_TEXT = "record has no text (expected a non-empty 'text' or 'article' field)"
_BODY_FIELDS = ("text", "article", "body", "content")
_LIST_KEYS = ("articles", "data", "records")
_OPTIONAL_FIELDS = ("date", "source", "url", "heading", "author")

_MB = 1024 * 1024
_SNIFF_BYTES = 8192
_BOM = b"\xef\xbb\xbf"
# C0 and C1 controls and DEL, except tab and the newlines that normalize_text unifies.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# A JSON "\ud800" escape decodes to a lone surrogate, which is not a character: it cannot be
# encoded, stored or hashed.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Bytes no text file has in bulk (whitespace, backspace and escape are allowed).
_NON_TEXT = re.compile("[\x00-\x07\x0e-\x1a\x1c-\x1f\x7f]")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[^\S\n]*\n)+")
_ATX_HEADING = re.compile(r"#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*")
_SETEXT_UNDERLINE = re.compile(r"[ \t]*(?:=+|-+)[ \t]*")
_FRONT_MATTER_LINE = re.compile(r"(\w+)[ \t]*:[ \t]*(.*)")
# A link with one of these schemes would run code when a UI renders it.
_UNSAFE_URL = re.compile(r"\s*(?:javascript|vbscript|data|file):", re.IGNORECASE)


@dataclass(frozen=True)
class ReadLimits:
    """Size caps that keep one bad file from exhausting memory.

    Attributes:
        max_file_bytes: largest single-article file (.txt/.md/.html); also the
            longest line accepted in a .jsonl file (one record).
        max_json_bytes: largest .json file (after decompression for .json.gz),
            which is parsed whole.
        max_article_chars: longest article body, in characters.
        max_gzip_bytes: most data a streamed .jsonl.gz file may decompress to.
        max_gzip_ratio: most a .jsonl.gz may expand (decompressed / compressed bytes),
            checked past the first 8 MB: news compresses 3-10x, a gzip bomb 1000x.
        max_bad_in_a_row: consecutive bad records after which a file is abandoned
            (it is most likely not a file of article records at all).
    """

    max_file_bytes: int = 10 * _MB
    max_json_bytes: int = 200 * _MB
    max_article_chars: int = 1_000_000
    max_gzip_bytes: int = 4096 * _MB
    max_gzip_ratio: int = 100
    max_bad_in_a_row: int = 1_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"ReadLimits.{f.name} must be a positive integer, got {value!r}")


_DEFAULT_LIMITS = ReadLimits()


# -- finding files -----------------------------------------------------------


def iter_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The article files under ``paths``.

    Files are yielded as given, whatever their suffix (reading reports an unsupported
    one). Folders are walked recursively in name order, keeping files with a supported
    suffix and skipping hidden files and folders and symlinked folders. A file reached
    twice is yielded once.

    Args:
        paths: files and folders; a single ``str`` or ``Path`` is accepted too.

    Raises:
        InputError: a path does not exist. All paths are checked before anything is
            yielded, so a typo fails at once rather than after a long read.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    given = [Path(p) for p in paths]
    for p in given:
        if not p.exists():
            raise InputError("no such file or folder", path=str(p))
    return _walk_all(given)


def _walk_all(given: list[Path]) -> Iterator[Path]:
    for item in _walk_items(given):
        if isinstance(item, RecordProblem):
            logger.warning("skipped %s", item)
        else:
            yield item


def _walk_items(given: list[Path]) -> Iterator[Path | RecordProblem]:
    """Files to read and, as problems, the symlinked files a folder walk skipped."""
    seen: set[str] = set()
    for top in given:
        root = os.path.realpath(top) if top.is_dir() else None
        for path in _walk(top) if root is not None else (top,):
            key = os.path.realpath(path)
            if root is not None and os.path.commonpath([root, key]) != root:
                # A link in a folder pointing out of it (dir/x.txt -> /etc/shadow) would put
                # that file in front of everyone who can ask. Named on the command line, a
                # link is the user's choice; found by a walk, it is not.
                yield RecordProblem(str(path), None, "skipped: a symbolic link to a file outside the folder "
                                                     "(name it on its own to read it)")
                continue
            if key not in seen:
                seen.add(key)
                yield path


def _walk(folder: Path) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        # Let read_file report why the folder cannot be read, as a problem in the stream.
        yield folder
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif entry.is_dir():
            logger.debug("not following symlinked folder %s", path)
        elif entry.is_file() and _suffix_of(path) is not None:
            yield path


def _suffix_of(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in SUPPORTED_SUFFIXES if name.endswith(s)), None)


# -- reading files -----------------------------------------------------------


def read_articles(
    paths: Iterable[str | Path], limits: ReadLimits = _DEFAULT_LIMITS
) -> Iterator[Article | RecordProblem]:
    """Stream the articles of every file under ``paths``, and a problem for each bad one.

    Args:
        paths: files and folders, as for :func:`iter_paths`.
        limits: size caps.

    Returns:
        An iterator of :class:`Article` and :class:`RecordProblem`, in file order.

    Raises:
        InputError: at once, when a path does not exist.
    """
    given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    iter_paths(given)  # checks that they exist, at once
    return _read_all(_walk_items(given), limits)


def _read_all(files: Iterator[Path | RecordProblem], limits: ReadLimits) -> Iterator[Article | RecordProblem]:
    n_files = n_articles = n_problems = 0
    for path in files:
        if isinstance(path, RecordProblem):
            n_problems += 1
            yield path
            continue
        n_files += 1
        for item in read_file(path, limits):
            if isinstance(item, Article):
                n_articles += 1
            else:
                n_problems += 1
            yield item
    logger.info("read %d articles from %d files (%d problems)", n_articles, n_files, n_problems)


def read_file(path: Path, limits: ReadLimits = _DEFAULT_LIMITS) -> Iterator[Article | RecordProblem]:
    """Stream the articles of one file; never raises for a bad file or record.

    Returns:
        An iterator of :class:`Article` and :class:`RecordProblem`. A file-level problem
        (empty, binary, not UTF-8, too large, unsupported, corrupt gzip) is one problem
        with ``line=None``. A bad record is a problem with its line (JSON Lines) or
        record number (JSON) and the next records are still read; a gzip stream that
        breaks part-way ends the file with a problem after the records before the damage.
    """
    path = Path(path)
    try:
        yield from _read_file(path, limits)
    except InputError as e:
        yield RecordProblem(str(path), e.line, e.reason)
    except OSError as e:
        yield RecordProblem(str(path), None, f"cannot read file: {e.strerror or e}")


def _read_file(path: Path, limits: ReadLimits) -> Iterator[Article | RecordProblem]:
    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        try:
            os.listdir(path)  # iter_paths yields a folder it could not list; say why
        except OSError as e:
            raise InputError(f"cannot list folder: {e.strerror or e}") from e
        raise InputError("is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError("is not a regular file")
    suffix = _suffix_of(path)
    if suffix is None:
        found = f"'{path.suffix.lower()}'" if path.suffix else "(no suffix)"
        raise InputError(f"unsupported file type {found} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    if st.st_size == 0:
        raise InputError("file is empty")
    origin = str(path)
    logger.debug("reading %s", origin)
    if suffix in (".jsonl", ".jsonl.gz"):
        yield from _read_jsonl(path, suffix.endswith(".gz"), limits)
    elif suffix in (".json", ".json.gz"):
        if suffix == ".json":
            _check_size(st.st_size, limits.max_json_bytes, "a .json file (use .jsonl, which is streamed)")
            data = _read_capped(path, limits.max_json_bytes, "a .json file")
        else:
            data = _read_gzip_capped(path, limits.max_json_bytes)
        yield from _records_from_json(_decode(data), path, limits)
    else:
        _check_size(st.st_size, limits.max_file_bytes, "a single article")
        text = _decode(_read_capped(path, limits.max_file_bytes, "a single article"))
        if suffix in (".html", ".htm"):
            yield _html_article(text, origin=origin, max_chars=limits.max_article_chars)
        else:
            yield _text_article(text, markdown=suffix == ".md", origin=origin,
                                max_chars=limits.max_article_chars)


def _fmt_size(n: int) -> str:
    if n >= _MB:
        return f"{n / _MB:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise InputError(f"file is {_fmt_size(size)}, larger than the {_fmt_size(limit)} limit for {what}")


def _read_capped(path: Path, limit: int, what: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew after stat
        raise InputError(f"file is larger than the {_fmt_size(limit)} limit for {what}")
    return data


def _read_gzip_capped(path: Path, limit: int) -> bytes:
    with open(path, "rb") as raw:
        try:
            with gzip.GzipFile(fileobj=raw) as f:
                data = f.read(limit + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(f"gzip file is corrupt or truncated: {e}") from e
    if len(data) > limit:
        raise InputError(
            f"file decompresses to more than the {_fmt_size(limit)} limit for a .json file "
            "(use .jsonl.gz, which is streamed)"
        )
    if not data:
        raise InputError("file is empty after decompression")
    return data


def _check_text(head: bytes) -> None:
    """Raise if the first bytes of a file show it is not UTF-8 text at all."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise InputError("file is UTF-32 text; only UTF-8 is supported (save it as UTF-8)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("file is UTF-16 text; only UTF-8 is supported (save it as UTF-8)")
    if b"\x00" in head:
        raise InputError("file looks binary (it contains NUL bytes), not text")
    sample = head.decode("utf-8", "replace")
    bad = len(_NON_TEXT.findall(sample))
    if sample and bad * 10 > len(sample) * 3:
        raise InputError(
            f"file looks binary ({100 * bad // len(sample)}% of its first "
            f"{_fmt_size(len(head))} are control characters), not text"
        )


def _decode(data: bytes) -> str:
    _check_text(data[:_SNIFF_BYTES])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(_utf8_reason(e.start)) from e
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InputError("file has no text (only whitespace)")
    return text


def _utf8_reason(offset: int) -> str:
    return (
        f"invalid UTF-8 at byte offset {offset} (is it in another encoding, such as "
        "Latin-1 or Windows-1252? save it as UTF-8)"
    )


# -- JSON and JSON Lines -----------------------------------------------------


def _records_from_json(text: str, path: Path, limits: ReadLimits) -> Iterator[Article | RecordProblem]:
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    except (ValueError, RecursionError) as e:
        raise InputError(f"invalid JSON: {e}") from e
    if isinstance(data, dict):
        key = next((k for k in _LIST_KEYS if k in data), None)
        if key is not None and isinstance(data[key], list):
            data = data[key]
        elif key is not None and "title" not in data:
            raise InputError(f"'{key}' must be a list of records, got {_json_type(data[key])}")
        else:
            yield _record(data, path, None, limits)
            return
    if not isinstance(data, list):
        raise InputError(f"expected a list of records or an object, got {_json_type(data)}")
    if not data:
        raise InputError("file has no records (the list is empty)")
    bad = _BadRun(path, limits)
    for number, rec in enumerate(data, 1):
        item = _record(rec, path, number, limits)
        yield item
        if bad.stop(item, number):
            yield bad.problem
            return


class _BadRun:
    """Counts consecutive bad records; a file that is mostly garbage is abandoned early."""

    def __init__(self, path: Path, limits: ReadLimits):
        self.path, self.limit, self.run = path, limits.max_bad_in_a_row, 0
        self.problem: RecordProblem | None = None

    def stop(self, item: Article | RecordProblem, line: int) -> bool:
        self.run = self.run + 1 if isinstance(item, RecordProblem) else 0
        if self.run < self.limit:
            return False
        self.problem = RecordProblem(
            str(self.path), line, f"stopped reading this file after {self.run:,} bad records in a row "
                                  "(is it a file of article records?); the records before were read")
        return True


def _read_jsonl(path: Path, compressed: bool, limits: ReadLimits) -> Iterator[Article | RecordProblem]:
    max_line = limits.max_file_bytes
    line_no = 0
    with open(path, "rb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if compressed else raw

        def read(size: int, *, line: bool = True) -> bytes:
            try:
                return stream.readline(size) if line else stream.read(size)
            except (OSError, EOFError, zlib.error) as e:
                if not compressed:
                    raise
                where = f" after line {line_no}" if line_no else ""
                raise InputError(f"gzip file is corrupt or truncated{where}: {e}",
                                 line=line_no + 1 if line_no else None) from e

        head = read(_SNIFF_BYTES, line=False)
        if not head:
            raise InputError("file is empty after decompression" if compressed else "file is empty")
        _check_text(head)
        stream.seek(0)
        offset = 0  # of the current line's first byte, in the (decompressed) data
        seen_record = False
        bad = _BadRun(path, limits)
        while line := read(max_line + 1):
            line_no += 1
            start = offset
            offset += len(line)
            if compressed:
                _check_gzip_growth(offset, raw.tell(), limits, line_no)
            if len(line) > max_line:
                while not line.endswith(b"\n") and (line := read(_MB)):
                    offset += len(line)
                    if compressed:
                        _check_gzip_growth(offset, raw.tell(), limits, line_no)
                item: Article | RecordProblem = RecordProblem(
                    str(path), line_no, f"line is longer than the {_fmt_size(max_line)} limit for one record")
            else:
                if line_no == 1 and line.startswith(_BOM):
                    line, start = line[len(_BOM):], start + len(_BOM)
                if not line.strip():
                    continue
                seen_record = True
                item = _jsonl_record(line, start, path, line_no, limits)
            yield item
            if bad.stop(item, line_no):
                yield bad.problem
                return
    if not seen_record:
        raise InputError("file has no records (only blank lines)")


def _check_gzip_growth(decompressed: int, compressed: int, limits: ReadLimits, line_no: int) -> None:
    if decompressed > limits.max_gzip_bytes:
        raise InputError(f"stopped reading: the file decompresses to more than the "
                         f"{_fmt_size(limits.max_gzip_bytes)} limit", line=line_no)
    # From the first MiB on: a bomb of blank lines costs one readline per byte until then.
    if decompressed > _MB and decompressed > limits.max_gzip_ratio * max(compressed, 1):
        raise InputError(f"stopped reading: the file expands more than {limits.max_gzip_ratio}x when "
                         "decompressed (a gzip bomb?)", line=line_no)


def _jsonl_record(line: bytes, start: int, path: Path, line_no: int, limits: ReadLimits) -> Article | RecordProblem:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return RecordProblem(str(path), line_no, _utf8_reason(start + e.start))
    try:
        # strict=False takes raw control characters inside strings, which sloppy
        # exports have (tabs above all); they are stripped later like any other.
        rec = json.loads(text, strict=False)
    except json.JSONDecodeError as e:
        return RecordProblem(str(path), line_no, f"invalid JSON at column {e.colno}: {e.msg}")
    except (ValueError, RecursionError) as e:
        return RecordProblem(str(path), line_no, f"invalid JSON: {e}")
    return _record(rec, path, line_no, limits)


def _record(rec: Any, path: Path, line: int | None, limits: ReadLimits) -> Article | RecordProblem:
    origin = f"{path}:{line}" if line is not None else str(path)
    try:
        return _article_from_record(rec, origin=origin, max_chars=limits.max_article_chars)
    except InputError as e:
        return RecordProblem(str(path), line, e.reason)
    except (UnicodeError, RecursionError) as e:  # a record that slipped past the checks never stops a read
        logger.debug("%s: unexpected bad record", origin, exc_info=True)
        return RecordProblem(str(path), line, f"record cannot be read: {type(e).__name__}: {str(e)[:200]}")


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else type(value).__name__


# -- building articles ---------------------------------------------------------


def article_from_record(rec: dict, *, origin: str) -> Article:
    """Build an article from one JSON record.

    The title is ``title``; the body is the first non-empty of ``text``, ``article``,
    ``body``, ``content``. Optional: ``id`` (string or integer; an empty one counts as
    absent, and then the id is a hash of title and text), ``date``, ``source``, ``url``,
    ``heading``, ``author`` (strings or null). Other fields are ignored.

    Raises:
        InputError: the record is not an object, lacks a title or text, or has a field
            of the wrong type, an invalid id, or a body longer than the default limit.
    """
    return _article_from_record(rec, origin=origin, max_chars=_DEFAULT_LIMITS.max_article_chars)


def _article_from_record(rec: Any, *, origin: str, max_chars: int) -> Article:
    if not isinstance(rec, dict):
        raise InputError(f"record is {_json_type(rec)}, expected an object with 'title' and 'text'")
    title = rec.get("title")
    if title is None or (isinstance(title, str) and not title.strip()):
        raise InputError("record has no title (expected a non-empty 'title' string)")
    if not isinstance(title, str):
        raise InputError(f"'title' must be a string, got {_json_type(title)}")
    text = None
    for key in _BODY_FIELDS:
        value = rec.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InputError(f"'{key}' must be a string, got {_json_type(value)}")
        if value.strip():
            text = value
            break
    if text is None:
        raise InputError(NO_TEXT)
    optional = {}
    for key in _OPTIONAL_FIELDS:
        value = rec.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"'{key}' must be a string, got {_json_type(value)}")
        optional[key] = value
    return _make_article(title, text, article_id=_record_id(rec.get("id")), origin=origin,
                         max_chars=max_chars, **optional)


def _record_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"'id' must be a string or an integer, got {_json_type(value)}")
    s = str(value).strip()
    if not s:
        return None
    if len(s) > MAX_ID_CHARS:
        raise InputError(f"'id' is {len(s):,} characters, longer than the {MAX_ID_CHARS} limit")
    if _ANY_CONTROL.search(s):
        raise InputError(f"'id' contains control characters: {s!r}")
    return unicodedata.normalize("NFC", s)


def article_from_text(
    title: str,
    text: str,
    *,
    date: str | None = None,
    source: str | None = None,
    url: str | None = None,
    origin: str | None = None,
) -> Article:
    """Build an article from a title and text typed or pasted by a user.

    The id is a hash of title and text, so pasting the same article twice gives the same id.

    Raises:
        InputError: the title or text is empty after cleaning, or too long
            (``MAX_TITLE_CHARS``, ``ReadLimits().max_article_chars``).
    """
    for name, value in (("title", title), ("text", text), ("date", date), ("source", source),
                        ("url", url)):
        if value is not None and not isinstance(value, str):
            raise InputError(f"{name} must be a string, got {type(value).__name__}")
    return _make_article(title or "", text or "", date=date, source=source, url=url, origin=origin,
                         max_chars=_DEFAULT_LIMITS.max_article_chars)


def html_to_article(html: str, *, origin: str, main_text: bool = True) -> Article:
    """Build an article from an HTML page (see :func:`rag.htmltext.extract`).

    The body is the article's main text (``main_text=False``: all of the page's text,
    clutter included; see :func:`rag.htmltext.extract_all`). Without a title element,
    the first paragraph is the title. A first paragraph that repeats the title (the
    page's ``<h1>``) is left out of the body. The site name is the article's ``source``.

    Raises:
        InputError: the page has no text, or no text besides its title.
    """
    return _html_article(html, origin=origin, max_chars=_DEFAULT_LIMITS.max_article_chars, main_text=main_text)


def _html_article(html: str, *, origin: str, max_chars: int, main_text: bool = True) -> Article:
    doc = extract(html) if main_text else extract_all(html)
    paragraphs = doc.text.split("\n\n") if doc.text else []
    if not paragraphs:
        raise InputError("page has no text (none left after removing scripts, styles and navigation)")
    title = doc.title
    if title is None:
        title = paragraphs.pop(0)
    elif _same_words(paragraphs[0], title):
        paragraphs.pop(0)
    if not paragraphs:
        raise InputError("page has no body text after the title")
    return _make_article(title, "\n\n".join(paragraphs), date=doc.date, source=doc.source,
                         url=doc.url, author=doc.author, origin=origin, max_chars=max_chars)


def _same_words(a: str, b: str) -> bool:
    return " ".join(_clean(a).split()).casefold() == " ".join(_clean(b).split()).casefold()


def _text_article(text: str, *, markdown: bool, origin: str, max_chars: int) -> Article:
    lines = normalize_text(text).split("\n")
    meta: dict[str, str] = {}
    if markdown:
        lines, meta = _split_front_matter(lines)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InputError("file has no text (only whitespace)")
    first_line = _md_title(lines[first]) if markdown else lines[first].strip()
    title = meta.get("title")
    if title is None or _same_words(first_line, title):
        title = first_line
        rest = lines[first + 1:]
        if markdown and rest and _SETEXT_UNDERLINE.fullmatch(rest[0]):
            rest = rest[1:]
    else:
        rest = lines[first:]  # the title is in the front matter; the first line is body text
    body = "\n".join(rest)
    if not body.strip():
        raise InputError("no body text after the title")
    return _make_article(title, body, date=meta.get("date"), source=meta.get("source"),
                         url=meta.get("url"), origin=origin, max_chars=max_chars)


def _md_title(line: str) -> str:
    line = line.strip()
    m = _ATX_HEADING.fullmatch(line)
    return m.group(1) if m else line


def _split_front_matter(lines: list[str]) -> tuple[list[str], dict[str, str]]:
    """Take a YAML-style front matter block (``---`` ... ``---``) off a Markdown file."""
    if not lines or lines[0].strip() != "---":
        return lines, {}
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return lines, {}
    meta = {}
    for line in lines[1:end]:
        m = _FRONT_MATTER_LINE.fullmatch(line.strip())
        if m and m.group(1).lower() in ("title", "date", "source", "url"):
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if value:
                meta[m.group(1).lower()] = value
    return lines[end + 1:], meta


def _clean(s: str) -> str:
    return normalize_text(_CONTROL.sub("", s))


# Markup that scrapers leave in article text (WordPress-style shortcodes and the like).
# It is removed here, before the text is stored, so that it is never chunked or quoted
# as the article's words and every offset is into the cleaned text. Decisions:
# - an embed (video, tweet, post...) is dropped whole, with whatever is between its
#   tags (a URL, an id, or text that is not the article's own), and leaves a paragraph
#   break: it was a block in the page, and the text on both sides is often glued to it
#   ("redémarrer"[EMBED url="..."]Dans la soirée"). If the text goes on in lower case,
#   the embed sat inside a sentence and leaves a space instead;
# - [caption ...]...[/caption] keeps its caption text (HTML tags removed) as a
#   paragraph of its own: it is the article's words, about a picture;
# - a single tag is only taken as markup when it has attributes ([video src="..."]) or
#   is an embed, so that "[Vidéo]", "[sic]", "[1]" or "[...]" stay as written;
# - OrangeSum's [I/TALIC] markers and "=11pt=10.0pt=#333333" style leftovers go too.
_EMBEDS = "embed|video|audio|tweet|twitter|youtube|vimeo|dailymotion|instagram|facebook|gallery|iframe|playlist"
_ATTRS = r"[^\[\]\n]{0,2000}"
_MARKUP = re.compile(
    rf"(?P<pre>[ \t]*)(?:"
    rf"\[caption\b{_ATTRS}\](?P<caption>[^\[]{{0,2000}}?)\[/caption\]"
    rf"|\[(?P<name>{_EMBEDS})\b{_ATTRS}\][^\[]{{0,2000}}?\[/(?P=name)\]"
    rf"|\[(?:{_EMBEDS})\s+[\w-]+\s*={_ATTRS}\]|\[embed\s*/?\]|\[/(?:{_EMBEDS}|caption)\]"
    rf"|(?P<inline>\[(?:I/TALIC|B/OLD|U/NDERLINE)\]|(?:=\d+(?:\.\d+)?pt|=#[0-9a-fA-F]{{6}})+(?=\W|$))"
    rf")(?P<post>[ \t]*)",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^<>]{0,2000}>")


def _strip_markup(text: str) -> str:
    """Remove scraped shortcode markup from an article body (see the comment above ``_EMBEDS``)."""
    if "[" not in text and "pt" not in text:
        return text
    return _MARKUP.sub(lambda m: _markup_replacement(m, text), text)


def _markup_replacement(m: re.Match, text: str) -> str:
    after = text[m.end():m.end() + 1]
    if m.group("inline") is not None:
        if not after or after in ",.;:!?)»\n":
            return ""
        return " " if m.group("pre") or m.group("post") else ""
    caption = m.group("caption")
    if caption is not None:
        caption = " ".join(_TAG.sub(" ", caption).split())
        if caption:
            return f"\n{caption}\n"
    if after.islower():
        return " "
    return "\n"


def _clean_line(s: str | None) -> str | None:
    if s is None:
        return None
    return " ".join(_clean(s).split()) or None


def _make_article(
    title: str,
    text: str,
    *,
    article_id: str | None = None,
    date: str | None = None,
    source: str | None = None,
    url: str | None = None,
    heading: str | None = None,
    author: str | None = None,
    origin: str | None = None,
    max_chars: int,
) -> Article:
    for name, value in (("title", title), ("text", text), ("id", article_id), ("date", date),
                        ("source", source), ("url", url), ("heading", heading), ("author", author)):
        if value is None:
            continue
        if _SURROGATE.search(value):
            raise InputError(f"'{name}' holds a lone surrogate escape (such as \\ud800), which is not a "
                             "character; fix the export that wrote it")
        if name in ("date", "source", "url", "author") and len(value) > MAX_FIELD_CHARS:
            raise InputError(f"'{name}' is {len(value):,} characters, longer than the {MAX_FIELD_CHARS:,} limit")
    title = " ".join(_clean(title).split())
    text = _LEADING_BLANK_LINES.sub("", _strip_markup(_clean(text))).rstrip()
    if not title:
        raise InputError("title is empty")
    if len(title) > MAX_TITLE_CHARS:
        raise InputError(f"title is {len(title):,} characters, longer than the {MAX_TITLE_CHARS:,} limit")
    if not text:
        raise InputError("text is empty")
    if len(text) > max_chars:
        raise InputError(f"article text is {len(text):,} characters, longer than the {max_chars:,} limit")
    url = _clean_line(url)
    if url is not None and _UNSAFE_URL.match(url):
        logger.debug("%s: dropping url with an unsafe scheme: %.40r", origin, url)
        url = None
    if heading is not None:
        heading = _clean(heading).strip() or None
    return Article(
        id=article_id or content_id(title, text),
        title=title,
        text=text,
        date=_clean_line(date),
        source=_clean_line(source),
        url=url,
        heading=heading,
        origin=origin,
        author=_clean_line(author),
    )
