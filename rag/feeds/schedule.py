"""Refreshing feeds on a schedule, in a background thread (``app.py --refresh-feeds 30m``)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from rag.errors import ConfigError, RagError

log = logging.getLogger(__name__)

#: The shortest schedule taken: more often would be rude to the sites read.
MIN_INTERVAL_SECONDS = 60.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def parse_duration(text: str, *, minimum: float = MIN_INTERVAL_SECONDS) -> float:
    """Seconds in a duration such as ``30m``, ``2h``, ``90s``, ``1h30m`` or ``1d``.

    Raises:
        ConfigError: not a duration, or shorter than ``minimum`` seconds.
    """
    s = (text or "").strip().lower().replace(" ", "")
    if not s or _PART.sub("", s):
        raise ConfigError(f"not a duration: {text!r} (write e.g. 30m, 2h, 90s or 1h30m)")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))
    if seconds < minimum:
        raise ConfigError(f"{text!r} is too short: feeds are refreshed at most every {minimum:g} s")
    return seconds


class FeedScheduler:
    """Calls ``run`` at once, then every ``interval`` seconds, in a daemon thread.

    A run that fails is logged and kept as :attr:`last_error`; the next one comes on time.
    """

    def __init__(self, run: Callable[[], object], interval: float, *, name: str = "rag-feeds"):
        if interval <= 0:
            raise ConfigError(f"the refresh interval must be positive, got {interval!r}")
        self._run, self.interval, self._name = run, float(interval), name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.last_run: str | None = None
        self.last_error: str | None = None
        self.next_run: float | None = None  # time.time() of the next run

    def start(self) -> "FeedScheduler":
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._run()
                self.last_error = None
            except RagError as exc:
                self.last_error = str(exc)
                log.warning("feed refresh failed: %s", exc)
            except Exception as exc:  # noqa: BLE001 (a scheduled job must not die; logged with its traceback)
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("feed refresh failed")
            self.runs += 1
            self.last_run = datetime.now(timezone.utc).isoformat(timespec="seconds")
            wait = max(0.0, self.interval - (time.monotonic() - started))
            self.next_run = time.time() + wait
            self._stop.wait(wait)
