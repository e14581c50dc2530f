"""The web chat's saved conversations, in ``<index>/chats.sqlite``.

A small SQLite file next to the index's own store (never inside it: saving a
conversation cannot touch the index), so the conversations travel with the folder
and survive a reload of the page or a restart of the server. Each change is one
transaction. Every conversation belongs to one user: the logged-in name when the
app has a login, :data:`ANONYMOUS` otherwise; a user sees, renames, deletes and
exports only their own (another user's id is "unknown", never "forbidden", so ids
reveal nothing).

A turn keeps the question, the answer (text, refusal, citations with their quotes)
and the HTML the page showed (the answer bubble and its source cards), so a reopened
conversation looks as it did, and a Markdown export carries its sources.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rag.errors import InputError, RagError
from rag.sidedb import immediate, open_side_db

CHATS_DB = "chats.sqlite"
FORMAT = "rag-chats"
FORMAT_VERSION = 1
#: the user of the conversations when the app has no login
ANONYMOUS = ""
#: longest title kept (a first question longer than this is shortened for its title)
MAX_TITLE_CHARS = 120
#: turns kept in one conversation (past it, start a new one)
MAX_TURNS = 200
#: conversations listed at most (newest first)
MAX_LISTED = 200
_ID = re.compile(r"[0-9a-f]{32}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chats_by_user ON chats (user, updated);
CREATE TABLE IF NOT EXISTS turns (
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    asked TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    answer_html TEXT NOT NULL,
    sources_html TEXT NOT NULL,
    PRIMARY KEY (chat_id, n)
);
"""


class ChatNotFoundError(InputError):
    """No conversation of this user has the given id."""


@dataclass(frozen=True)
class ChatSummary:
    """A saved conversation as the sidebar lists it (times are ISO 8601, UTC)."""

    id: str
    title: str
    created: str
    updated: str
    turns: int


@dataclass(frozen=True)
class Turn:
    """One question and its answer.

    ``answer`` is JSON-safe: ``text``, ``refused`` and ``citations`` (each with ``n``,
    ``title``, ``date``, ``source``, ``url``, ``quote``...), as ``/ask`` returns them.
    """

    question: str
    answer: dict
    answer_html: str = ""
    sources_html: str = ""
    asked: str = ""


@dataclass(frozen=True)
class Chat:
    id: str
    title: str
    created: str
    updated: str
    turns: tuple[Turn, ...] = field(default=())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def clean_title(title) -> str:
    """``title`` with its whitespace collapsed.

    Raises:
        InputError: not text, blank, or longer than :data:`MAX_TITLE_CHARS`.
    """
    if not isinstance(title, str):
        raise InputError(f"a conversation's title must be text, got {type(title).__name__}")
    title = " ".join(title.split())
    if not title:
        raise InputError("a conversation's title cannot be empty")
    if len(title) > MAX_TITLE_CHARS:
        raise InputError(f"a conversation's title is at most {MAX_TITLE_CHARS} characters, got {len(title):,}")
    return title


def title_from_question(question: str) -> str:
    """The title of a new conversation: its first question, shortened at a word to fit."""
    title = " ".join(str(question or "").split()) or "Conversation"
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title.rfind(" ", 0, MAX_TITLE_CHARS - 1)
    return title[: cut if cut > MAX_TITLE_CHARS // 2 else MAX_TITLE_CHARS - 1].rstrip() + "…"


class ChatStore:
    """The ``chats.sqlite`` of an index folder. Safe to share between threads; several
    processes may use one file (SQLite serializes their transactions).

    Args:
        index_dir: the index folder (it must exist).
        clock: returns the current time as ISO 8601 text (for tests).
    Raises:
        IndexCorruptError: the file is not a conversation store; IndexMismatchError: a newer one.
    """

    def __init__(self, index_dir: str | Path, *, clock: Callable[[], str] | None = None):
        self.path = Path(index_dir) / CHATS_DB
        self._clock = clock or _now
        self._lock = threading.RLock()
        self._db = open_side_db(self.path, _SCHEMA, FORMAT, FORMAT_VERSION, "conversation store", self._lock)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ChatStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tx(self):
        return immediate(self._db, self._lock)

    @staticmethod
    def _user(user: str | None) -> str:
        if user is None:
            return ANONYMOUS
        if not isinstance(user, str):
            raise InputError(f"a user name must be text, got {type(user).__name__}")
        return user

    def _check(self, db: sqlite3.Connection, user: str, chat_id) -> str:
        if isinstance(chat_id, str) and _ID.fullmatch(chat_id):
            if db.execute("SELECT 1 FROM chats WHERE id = ? AND user = ?", (chat_id, user)).fetchone():
                return chat_id
        shown = chat_id if isinstance(chat_id, str) and len(chat_id) <= 40 else type(chat_id).__name__
        raise ChatNotFoundError(f"no saved conversation has the id {shown!r}")

    # -- writing -------------------------------------------------------------
    def create(self, user: str | None, title: str) -> str:
        """A new empty conversation of ``user``; returns its id."""
        user, title = self._user(user), clean_title(title)
        chat_id, now = uuid.uuid4().hex, self._clock()
        with self._tx() as db:
            db.execute("INSERT INTO chats VALUES (?, ?, ?, ?, ?)", (chat_id, user, title, now, now))
        return chat_id

    def append(self, user: str | None, chat_id: str, turn: Turn) -> int:
        """Add ``turn`` at the end of the conversation; returns its number (from 1).

        Raises:
            ChatNotFoundError: no conversation of ``user`` has this id.
            InputError: the turn is not a question with a JSON-safe answer, or the
                conversation has :data:`MAX_TURNS` turns already.
        """
        user = self._user(user)
        if not isinstance(turn.question, str) or not turn.question.strip():
            raise InputError("a saved turn needs its question")
        if not isinstance(turn.answer, dict):
            raise InputError(f"a saved turn's answer must be a dict, got {type(turn.answer).__name__}")
        try:
            answer = json.dumps(turn.answer, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"a saved turn's answer cannot be stored: {exc}") from None
        now = self._clock()
        with self._tx() as db:
            self._check(db, user, chat_id)
            n = db.execute("SELECT count(*) FROM turns WHERE chat_id = ?", (chat_id,)).fetchone()[0] + 1
            if n > MAX_TURNS:
                raise InputError(f"a conversation keeps at most {MAX_TURNS} turns: start a new one")
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (chat_id, n, now, turn.question, answer, str(turn.answer_html or ""),
                        str(turn.sources_html or "")))
            db.execute("UPDATE chats SET updated = ? WHERE id = ?", (now, chat_id))
        return n

    def rename(self, user: str | None, chat_id: str, title: str) -> None:
        """Give the conversation a new title (its place in the list does not change)."""
        user, title = self._user(user), clean_title(title)
        with self._tx() as db:
            self._check(db, user, chat_id)
            db.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))

    def delete(self, user: str | None, chat_id: str) -> None:
        """Delete the conversation and its turns."""
        user = self._user(user)
        with self._tx() as db:
            self._check(db, user, chat_id)
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    # -- reading -------------------------------------------------------------
    def list(self, user: str | None, limit: int = MAX_LISTED) -> list[ChatSummary]:
        """The conversations of ``user``, the last one asked in first."""
        user = self._user(user)
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.title, c.created, c.updated, (SELECT count(*) FROM turns t WHERE t.chat_id = c.id) "
                "FROM chats c WHERE c.user = ? ORDER BY c.updated DESC, c.rowid DESC LIMIT ?",
                (user, int(limit))).fetchall()
        return [ChatSummary(*r) for r in rows]

    def get(self, user: str | None, chat_id: str) -> Chat:
        """The conversation with its turns, in order."""
        user = self._user(user)
        with self._lock:
            self._check(self._db, user, chat_id)
            head = self._db.execute("SELECT id, title, created, updated FROM chats WHERE id = ?",
                                    (chat_id,)).fetchone()
            rows = self._db.execute("SELECT question, answer, answer_html, sources_html, asked FROM turns "
                                    "WHERE chat_id = ? ORDER BY n", (chat_id,)).fetchall()
        turns = tuple(Turn(q, json.loads(a), ah, sh, asked) for q, a, ah, sh, asked in rows)
        return Chat(*head, turns=turns)

    def export_markdown(self, user: str | None, chat_id: str) -> str:
        """The conversation as Markdown: each question, its answer and its sources (title,
        source, date, URL and the quoted sentences)."""
        return chat_markdown(self.get(user, chat_id))


def _md(text: str | None) -> str:
    """Text for a Markdown line: characters that would start markup (links, HTML, emphasis)
    escaped, but for the answer's ``[n]`` markers (kept as they read)."""
    out = re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", " ".join(str(text or "").split()))
    return re.sub(r"\\\[(\d{1,3})\\\](?!\()", r"[\1]", out)


def chat_markdown(chat: Chat) -> str:
    lines = [f"# {_md(chat.title)}", "", f"Saved conversation, started {chat.created[:16].replace('T', ' ')} UTC.", ""]
    for turn in chat.turns:
        answer = turn.answer
        lines += [f"## {_md(turn.question)}", ""]
        text = str(answer.get("text") or "")
        prefix = "**Not in the articles.** " if answer.get("refused") else ""
        lines += [prefix + "\n".join(_md(line) for line in text.splitlines()), ""]
        citations = answer.get("citations") or []
        if citations:
            lines += ["Sources:", ""]
            for c in citations:
                meta = ", ".join(_md(x) for x in (c.get("source"), c.get("date")) if x)
                url = c.get("url") or ""
                head = f"{c.get('n', '?')}. **{_md(c.get('title'))}**" + (f" ({meta})" if meta else "")
                if re.match(r"https?://", url, re.IGNORECASE):
                    head += f" <{url.replace('>', '%3E').replace(' ', '%20')}>"
                lines += [head, f"   > {_md(c.get('quote'))}", ""]
    return "\n".join(lines).rstrip() + "\n"
