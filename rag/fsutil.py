"""Crash-safe file writes and a process lock for an index folder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.errors import IndexLockedError


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary sibling, fsync, then rename over it.

    ``write`` receives the temporary path and must create the file there. A crash
    at any moment leaves either the old file or the new one, never a mix.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def write_lock(folder: Path, *, wait: float = 0.0, name: str = ".lock",
               busy: str = "another process is writing to the index at {folder}; wait for it to finish",
               ) -> Iterator[None]:
    """Hold the index folder's writer lock (one writer process at a time).

    Args:
        wait: seconds to wait for another process to release it (writers hold it
            for one commit at a time, so a short wait lets several take turns).
        name: the lock file; another name is another lock (e.g. one feed refresh at a time).
        busy: the message when it is held, with ``{folder}``.
    Raises:
        IndexLockedError: still held by another process after ``wait`` seconds.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / name, "a+")
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(busy.format(folder=folder)) from None
                time.sleep(0.05)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


@contextlib.contextmanager
def try_write_lock(folder: Path) -> Iterator[bool]:
    """The writer lock if it is free at once (True), else nothing held (False); never waits.

    For optional work, such as a reader saving a repaired file; a folder that cannot
    be locked at all (read-only) counts as busy.
    """
    try:
        cm = write_lock(folder)
        cm.__enter__()
    except (IndexLockedError, OSError):
        yield False
        return
    try:
        yield True
    finally:
        cm.__exit__(None, None, None)


def latest_generation(folder: Path, prefix: str, suffix: str) -> tuple[int, Path] | None:
    """The file ``<prefix><8-digit generation><suffix>`` with the highest generation in ``folder``."""
    best: tuple[int, Path] | None = None
    for p in folder.glob(f"{prefix}*{suffix}"):
        digits = p.name[len(prefix):len(p.name) - len(suffix)]
        if len(digits) == 8 and digits.isdigit() and (best is None or int(digits) > best[0]):
            best = (int(digits), p)
    return best
