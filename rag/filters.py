"""Retrieval filters: what every backend pushes down into its searches.

Apart from the store (where they used to live) so that the index contracts, the
retriever and the backends share them without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rag.dates import since


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to a date range (inclusive, ISO dates) and/or sources.

    An article whose date could not be read (no date key) is left out by any date
    bound, and found when there is none.
    """

    date_from: str | None = None
    date_to: str | None = None
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            v = getattr(self, name)
            if v is not None:
                try:
                    date.fromisoformat(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{name} must be an ISO date like 2025-08-09, got {v!r}") from None
        if isinstance(self.sources, str):
            object.__setattr__(self, "sources", (self.sources,))
        if self.sources is not None:
            if not all(isinstance(x, str) and x.strip() for x in self.sources):
                raise ValueError(f"sources must be non-empty names, got {self.sources!r}")
            object.__setattr__(self, "sources", tuple(self.sources) or None)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"the date range ends ({self.date_to}) before it starts ({self.date_from})")

    @classmethod
    def make(cls, date_from: str | None = None, date_to: str | None = None, sources=None,
             recent: str | None = None, *, today: date | None = None) -> "Filters":
        """Filters from user settings; ``recent`` (``7d``, ``2w``, ``3m``, ``1y``) means from
        that long before ``today``, or from ``date_from`` when that is later.

        Raises:
            ValueError: a date that is not ISO, a bad duration, a range ending before it starts.
        """
        if recent:
            start = since(recent, today).isoformat()
            date_from = max(date_from, start) if date_from else start
        if isinstance(sources, str):
            sources = (sources,)
        return cls(date_from or None, date_to or None, tuple(sources) if sources else None)

    @classmethod
    def coerce(cls, value: "Filters | dict | None") -> "Filters | None":
        if value is None or isinstance(value, Filters):
            return value
        if isinstance(value, dict):
            allowed = {"date_from", "date_to", "sources", "source", "recent"}
            unknown = set(value) - allowed
            if unknown:
                raise ValueError(f"unknown filter(s): {', '.join(sorted(unknown))} (use {', '.join(sorted(allowed))})")
            return cls.make(value.get("date_from"), value.get("date_to"), value.get("sources", value.get("source")),
                            value.get("recent"))
        raise TypeError(f"filters must be a Filters or a dict, got {type(value).__name__}")

    @property
    def empty(self) -> bool:
        return not (self.date_from or self.date_to or self.sources)
