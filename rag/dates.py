"""Publication dates as news writes them, read into ISO ``YYYY-MM-DD`` keys for filtering.

The common forms are read by hand, fast: ISO 8601 (``2025-06-25``, with or without a
time and offset: the date as written is kept, not moved to UTC), numeric dates day
first as French news writes them (``25/06/2025``, ``25.06.2025``, ``25-06-2025``; a
second number over 12 means month first, ``06/25/2025``), ``20250625`` and RFC 822
(feeds: ``Wed, 25 Jun 2025 10:00:00 +0200``). Anything else goes to ``dateparser``
(month names in French and English first, then any language it knows; ``1er``,
weekdays, times such as ``18h30``, and relative forms like ``il y a 2 jours`` or
``yesterday``, counted from ``base``: when the page was fetched, else when the
article was indexed). ``dateparser`` is imported only when a date needs it.

A date that cannot be read, or reads as implausible (before 1800, or a parsed text
more than a day after ``base``), has no key: the article keeps its date text and is
found by every search without a date filter (:class:`rag.types.AddReport` counts them).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import re
from datetime import date, datetime, timedelta, timezone

log = logging.getLogger(__name__)

#: Raised whenever date_key reads more forms: a store's articles that had no key are read again.
PARSER_VERSION = 2
EARLIEST = date(1800, 1, 1)
#: How far after ``base`` a date read by dateparser may be (time zones, a page dated "tomorrow" at 23:00).
FUTURE_SLACK = timedelta(days=1)

_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[T\s_])")
_YMD = re.compile(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:$|\D)")
_DMY = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:$|\D)")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(?:$|T)")
_RFC822 = re.compile(r"(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}")
# What pages write before the date itself ("Publié le 25 juin 2025 à 10h00").
_LEAD = re.compile(r"^\s*(?:publi[ée]+|mis\s+[àa]\s+jour|modifi[ée]+|actualis[ée]+|cr[ée]+|"
                   r"published|updated|last\s+updated|posted|modified|created)\s*(?:le|on|at|:)?\s*[:,-]?\s*",
                   re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d{1,4})\s*([dwmy])\s*$", re.IGNORECASE)
_SETTINGS = {
    "DATE_ORDER": "DMY",
    "PREFER_DAY_OF_MONTH": "first",
    "PREFER_DATES_FROM": "past",
    "RETURN_AS_TIMEZONE_AWARE": False,
    # A month and year alone ("juin 2025"), or a day without its year, is not a day to filter on.
    "REQUIRE_PARTS": ["day", "month", "year"],
}


def _utc_naive(base: datetime | str | float | None) -> datetime:
    if base is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    if isinstance(base, (int, float)):
        return datetime.fromtimestamp(base, timezone.utc).replace(tzinfo=None)
    if isinstance(base, str):
        base = datetime.fromisoformat(base.replace("Z", "+00:00"))
    if base.tzinfo is not None:
        base = base.astimezone(timezone.utc).replace(tzinfo=None)
    return base


def _ymd(y: str, m: str, d: str) -> date | None:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def _fast(v: str) -> date | None:
    """The written date of the numeric and feed forms, else None (dateparser's turn)."""
    m = _ISO.match(v) or _YMD.match(v)
    if m:
        return _ymd(*m.groups())
    m = _DMY.match(v)
    if m:
        d, mo, y = m.groups()
        if int(mo) > 12 >= int(d):  # 06/25/2025 can only be month first
            d, mo = mo, d
        return _ymd(y, mo, d)
    m = _COMPACT.match(v)
    if m:
        return _ymd(*m.groups())
    if _RFC822.match(v):
        parts = email.utils.parsedate_tz(v)
        if parts:
            return _ymd(*map(str, parts[:3]))
    return None


@functools.lru_cache(maxsize=1)
def _parser():
    import dateparser  # about 0.1 s to import; its language data loads on first use

    return dateparser


@functools.lru_cache(maxsize=8192)
def _slow(v: str, base: datetime) -> date | None:
    """dateparser's reading of ``v`` (French and English first, then any language), or None."""
    dp = _parser()
    settings = dict(_SETTINGS, RELATIVE_BASE=base)
    try:
        found = dp.parse(v, languages=["fr", "en"], settings=settings) or dp.parse(v, settings=settings)
    except (ValueError, OverflowError, TypeError) as exc:  # dateparser's own errors on odd input
        log.debug("dateparser failed on %r: %s", v, exc)
        return None
    if found is None:
        return None
    day = found.date()
    if day > (base + FUTURE_SLACK).date():
        log.debug("date %r read as %s, after %s: ignored", v, day, base)
        return None
    return day


def parse_date(value: str | None, base: datetime | str | float | None = None) -> date | None:
    """The day ``value`` names, or None when it names none that can be trusted.

    Args:
        value: the date as written.
        base: when the article was fetched or indexed (a datetime, an ISO string or a
            POSIX time; default now): what relative dates count from.
    """
    if not value or not value.strip():
        return None
    v = " ".join(value.split())[:200]
    v = _LEAD.sub("", v, count=1) or v
    day = _fast(v)
    if day is None:
        # The base to the hour: a batch of articles indexed together shares cached readings.
        day = _slow(v, _utc_naive(base).replace(minute=0, second=0, microsecond=0))
    if day is None or day < EARLIEST:
        return None
    return day


def date_key(value: str | None, base: datetime | str | float | None = None) -> str | None:
    """An ISO ``YYYY-MM-DD`` for filtering (see :func:`parse_date`), or None."""
    day = parse_date(value, base)
    return day.isoformat() if day else None


def is_relative(value: str | None, base: datetime | str | float | None = None) -> bool:
    """Whether ``value`` names a day only relative to when it was read (``il y a 2 jours``)."""
    if not value or _fast(_LEAD.sub("", " ".join(value.split())) or value) is not None:
        return False
    b = _utc_naive(base)
    # A later base, not an earlier one: an absolute date never reads as "in the future" of it.
    return parse_date(value, b) != parse_date(value, b + timedelta(days=400))


def pin_relative(value: str | None, base: datetime | str | float | None) -> str | None:
    """``value`` with the day it names first when it is relative (``2025-06-24 (il y a 2 jours)``),
    so the day stays right when read again later; any other value as it is."""
    if value and is_relative(value, base):
        day = date_key(value, base)
        if day:
            return f"{day} ({value.strip()})"
    return value


def since(duration: str, today: date | None = None) -> date:
    """The first day of the last ``duration``: ``7d`` (days), ``2w`` (weeks), ``3m`` (months),
    ``1y`` (years), counted back from ``today`` (default: today).

    Raises:
        ValueError: a duration of another form, or zero.
    """
    m = _DURATION.match(duration or "") if isinstance(duration, str) else None
    n = int(m.group(1)) if m else 0
    if not m or n == 0:
        raise ValueError(f"recent must look like 7d, 2w, 3m or 1y (days, weeks, months, years), got {duration!r}")
    today = today or date.today()
    unit = m.group(2).lower()
    if unit in "dw":
        try:
            return today - timedelta(days=n * (7 if unit == "w" else 1))
        except OverflowError:
            raise ValueError(f"recent {duration!r} reaches back before year 1") from None
    months = n * (12 if unit == "y" else 1)
    y, mo = divmod(today.year * 12 + today.month - 1 - months, 12)
    if y < 1:
        raise ValueError(f"recent {duration!r} reaches back before year 1")
    mo += 1
    # The same day of that month, or its last day (31 March - 1m = 28/29 February).
    last = (date(y + (mo == 12), mo % 12 + 1, 1) - timedelta(days=1)).day
    return date(y, mo, min(today.day, last))
