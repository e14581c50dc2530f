"""Small SQLite files of their own in an index folder (``feeds.sqlite``, ``chats.sqlite``).

Each is opened once, made in one transaction when new (a reader never sees half of it),
and checked when it exists: its ``meta`` table names its format and version, so a file
of another kind or of a newer version is a clear error, not a crash later. Writes go
through :func:`immediate`: one transaction taken at once, so two writers never deadlock
on an upgrade.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexCorruptError, IndexMismatchError, RagError


def open_side_db(path: Path, schema: str, fmt: str, version: int, what: str, lock: threading.RLock
                 ) -> sqlite3.Connection:
    """The connection to ``path`` (made with ``schema`` when new), shared between threads.

    Raises:
        RagError: it cannot be opened; IndexCorruptError: it is not a ``what`` (or unreadable);
        IndexMismatchError: a newer version of rag wrote it.
    """
    try:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise RagError(f"cannot open {path}: {exc}") from exc
    try:
        db.execute("PRAGMA foreign_keys = ON")
        has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() if has_meta else None
        if row is None:
            with immediate(db, lock):
                for statement in schema.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?), ('format_version', ?)",
                           (fmt, str(version)))
        elif row[0] != fmt:
            raise IndexCorruptError(f"{path} is not a {what} (format {row[0]!r})")
        else:
            found = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
            if found is None or not found[0].isdigit() or int(found[0]) > version:
                raise IndexMismatchError(f"{path} was written by a newer version of rag "
                                         f"({what} format {found and found[0]!r}); upgrade rag to use it")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise IndexCorruptError(f"cannot read {path}: {exc}") from exc
    except RagError:
        db.close()
        raise
    return db


@contextmanager
def immediate(db: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``), rolled back on any error."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
