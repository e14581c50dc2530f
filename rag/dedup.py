"""Syndicated copies: near-duplicate articles grouped into stories at ingest.

The same dispatch often reaches an index several times (an agency story taken up by
several papers, a site that republishes with a new headline or a last paragraph of
its own). Every copy stays indexed and searchable; answers and article lists count
the story once and say who else published it.

How two bodies are compared: the body is normalized (NFKC, casefolded, every run of
punctuation and spaces one space), cut into overlapping word 5-grams (shingles), and
two bodies are copies when the Jaccard similarity of their shingle sets is at least
:data:`THRESHOLD`. Finding the candidates uses MinHash (datasketch, fixed seed) cut
into LSH bands: each article stores one hash per band in the index's SQLite store, so
adding an article looks up the few articles that share a band (an indexed lookup),
never every signature. Candidates are then checked on their exact shingle Jaccard,
from the stored texts.

Bodies of fewer than :data:`MIN_WORDS` words are never grouped on shingles: a few
boilerplate lines ("Vidéo. Retrouvez…") share most of their shingles with unrelated
items. Such a short item joins a story only as an exact copy: same normalized title
and same normalized body.

Stories are built greedily in ingest order (``seq``): an article joins the story of the
earlier article it matches best, or starts its own; a story's id is its first
article's id (its representative). Removing or replacing an article re-decides its
story's later members in the same order, so the stories are always what ingesting
the remaining articles in that order would have given (the representative may change).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)

#: words per shingle
SHINGLE = 5
#: MinHash permutations (datasketch, fixed seed and hashing scheme)
NUM_PERM = 128
SEED = 1
SCHEME = "affine32"
#: LSH bands and rows per band: BANDS * ROWS <= NUM_PERM
BANDS, ROWS = 20, 6
#: the exact shingle Jaccard from which two bodies are one story (see README, "Syndicated copies")
THRESHOLD = 0.8
#: bodies shorter than this (in words) are grouped only with an exact copy
MIN_WORDS = 50

#: what decides the stored band hashes and stories; a store built with other settings is regrouped
SETTINGS = {"version": 1, "shingle": SHINGLE, "num_perm": NUM_PERM, "seed": SEED, "scheme": SCHEME,
            "bands": BANDS, "rows": ROWS, "threshold": THRESHOLD, "min_words": MIN_WORDS}

_NON_WORD = re.compile(r"[\W_]+")
#: the band number given to the key of a short body's exact copy
_EXACT_BAND = BANDS


def normalized_words(text: str | None) -> list[str]:
    """``text`` as comparable words: NFKC, casefolded, punctuation and spaces removed."""
    if not text:
        return []
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()


def shingles(words: Sequence[str], k: int = SHINGLE) -> set[str]:
    """The word ``k``-grams of ``words`` (the whole text as one shingle when it is shorter)."""
    if not words:
        return set()
    if len(words) < k:
        return {" ".join(words)}
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


@lru_cache(maxsize=1)
def _template():
    try:
        from datasketch import MinHash
    except ImportError as exc:  # a core dependency; say what to install rather than fail obscurely
        raise ImportError("grouping syndicated copies needs datasketch: pip install 'datasketch>=2.0'") from exc
    return MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)


def signature(shingle_set: Iterable[str]) -> np.ndarray:
    """The MinHash signature (``NUM_PERM`` unsigned 32-bit values) of a set of shingles."""
    m = _template().copy()
    m.update_batch([s.encode("utf-8") for s in shingle_set])
    return np.asarray(m.hashvalues, dtype="<u4")  # little-endian: the band keys are the same everywhere


def _key(band: int, payload: bytes) -> int:
    """A signed 64-bit key (what SQLite stores as an integer) for one band's values."""
    digest = hashlib.blake2b(payload, digest_size=8, person=b"rag-dedup-%d" % band).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass(frozen=True)
class Sketch:
    """What grouping needs of one article: its LSH keys (band hashes, or the exact key of a
    short body) and its shingles (to verify candidates). Computed outside any lock."""

    keys: tuple[int, ...]
    shingles: frozenset[str]
    #: grouped on shingles (long enough), else only with an exact copy
    long: bool

    @classmethod
    def of(cls, title: str | None, text: str | None) -> "Sketch":
        words = normalized_words(text)
        if len(words) < MIN_WORDS:
            if not words:
                return cls((), frozenset(), False)  # an empty body is nobody's copy
            exact = (" ".join(normalized_words(title)) + "\n" + " ".join(words)).encode("utf-8")
            return cls((_key(_EXACT_BAND, exact),), frozenset(), False)
        sh = shingles(words)
        sig = signature(sh)
        keys = tuple(_key(b, sig[b * ROWS : (b + 1) * ROWS].tobytes()) for b in range(BANDS))
        return cls(keys, frozenset(sh), True)


# -- the stories in the index's store ------------------------------------------------------

#: The tables (created by :class:`rag.store.Store` with the rest of its schema).
SCHEMA = """
-- Syndicated copies (rag.dedup): every article in ingest order (seq) with its story,
-- the id of the story's first article; ``matched`` is the earlier article it was found
-- a copy of (NULL for a story's first), with their shingle Jaccard.
CREATE TABLE IF NOT EXISTS stories (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL UNIQUE REFERENCES articles(id) ON DELETE CASCADE,
    story TEXT NOT NULL,
    matched TEXT,
    similarity REAL
);
CREATE INDEX IF NOT EXISTS stories_story ON stories(story);
-- Its LSH band hashes (or a short body's exact key): candidates are looked up here.
CREATE TABLE IF NOT EXISTS story_keys (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL REFERENCES stories(seq) ON DELETE CASCADE,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS story_keys_seq ON story_keys(seq);
"""

#: At most this many candidates (those sharing the most bands) are checked per article:
#: a boilerplate text copied a thousand times costs a bounded lookup, not a thousand.
MAX_CANDIDATES = 50


@dataclass(frozen=True)
class Match:
    """The earlier article an article was found a copy of."""

    story: str
    article_id: str
    similarity: float


def _verify(sketch: Sketch, title: str | None, text: str | None, cand_title: str | None, cand_text: str) -> float:
    """The candidate's similarity to ``sketch``'s article, 0 when it is not a copy."""
    if sketch.long:
        words = normalized_words(cand_text)
        if len(words) < MIN_WORDS:
            return 0.0
        j = jaccard(sketch.shingles, shingles(words))
        return j if j >= THRESHOLD else 0.0
    # A short body: only an exact copy (the key could collide; the text cannot).
    same = (normalized_words(text) == normalized_words(cand_text)
            and normalized_words(title) == normalized_words(cand_title))
    return 1.0 if same else 0.0


def best_match(db: sqlite3.Connection, sketch: Sketch, title: str | None, text: str | None,
               before: int | None = None, exclude: str | None = None) -> Match | None:
    """The earlier article (``seq < before``, all when None) that ``sketch``'s article copies
    best: the highest verified similarity, the earliest on a tie; None when there is none."""
    if not sketch.keys:
        return None
    marks = ",".join("?" * len(sketch.keys))
    q = f"SELECT seq, count(*) AS n FROM story_keys WHERE key IN ({marks})"
    args: list = list(sketch.keys)
    if before is not None:
        q += " AND seq < ?"
        args.append(before)
    q += " GROUP BY seq ORDER BY n DESC, seq LIMIT ?"
    seqs = [r[0] for r in db.execute(q, [*args, MAX_CANDIDATES])]
    if not seqs:
        return None
    rows = db.execute(
        "SELECT s.seq, s.article_id, s.story, a.title, a.text FROM stories s JOIN articles a ON a.id = s.article_id "
        f"WHERE s.seq IN ({','.join('?' * len(seqs))}) ORDER BY s.seq", seqs).fetchall()
    best: Match | None = None
    for _, aid, story, cand_title, cand_text in rows:
        if aid == exclude:
            continue
        sim = _verify(sketch, title, text, cand_title, cand_text)
        if sim and (best is None or sim > best.similarity):
            best = Match(story, aid, round(sim, 4))
    return best


def group(db: sqlite3.Connection, article_id: str, title: str | None, text: str | None,
          sketch: Sketch | None = None) -> Match | None:
    """File a newly written article (its ``articles`` row present, no ``stories`` row) under
    its story: the story of the earlier article it copies best, else a story of its own.
    Call inside the store's write transaction. Returns the match, if any."""
    sketch = sketch or Sketch.of(title, text)
    match = best_match(db, sketch, title, text, exclude=article_id)
    cur = db.execute(
        "INSERT INTO stories(article_id, story, matched, similarity) VALUES (?, ?, ?, ?)",
        (article_id, match.story if match else article_id, match.article_id if match else None,
         match.similarity if match else None))
    db.executemany("INSERT OR IGNORE INTO story_keys(key, seq) VALUES (?, ?)",
                   [(k, cur.lastrowid) for k in sketch.keys])
    return match


def ungroup(db: sqlite3.Connection, article_id: str) -> None:
    """Take an article out of its story before it is removed or replaced (inside the write
    transaction). The story's later articles are filed again in ingest order, so the stories
    stay what ingesting the remaining articles would give; its representative may change."""
    row = db.execute("SELECT seq, story FROM stories WHERE article_id = ?", (article_id,)).fetchone()
    if row is None:
        return
    seq, story = row
    db.execute("DELETE FROM story_keys WHERE seq = ?", (seq,))
    db.execute("DELETE FROM stories WHERE seq = ?", (seq,))
    later = db.execute(
        "SELECT s.seq, s.article_id, a.title, a.text FROM stories s JOIN articles a ON a.id = s.article_id "
        "WHERE s.story = ? AND s.seq > ? ORDER BY s.seq", (story, seq)).fetchall()
    for m_seq, m_id, m_title, m_text in later:
        match = best_match(db, Sketch.of(m_title, m_text), m_title, m_text, before=m_seq)
        db.execute("UPDATE stories SET story = ?, matched = ?, similarity = ? WHERE seq = ?",
                   (match.story if match else m_id, match.article_id if match else None,
                    match.similarity if match else None, m_seq))


def regroup_all(db: sqlite3.Connection) -> int:
    """Group every stored article from scratch, in the order they were added (inside the write
    transaction): for a store written before stories existed, or with other settings.
    Returns how many articles were grouped."""
    db.execute("DELETE FROM story_keys")
    db.execute("DELETE FROM stories")
    ids = [r[0] for r in db.execute("SELECT id FROM articles ORDER BY added_at, rowid")]
    for aid in ids:
        title, text = db.execute("SELECT title, text FROM articles WHERE id = ?", (aid,)).fetchone()
        group(db, aid, title, text)
    return len(ids)


def stories_of(db: sqlite3.Connection, article_ids: Sequence[str]) -> dict[str, str]:
    """The story of each of ``article_ids`` that has one (an article without is its own story)."""
    out: dict[str, str] = {}
    ids = list(dict.fromkeys(article_ids))
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        out.update(db.execute(f"SELECT article_id, story FROM stories WHERE article_id IN ({','.join('?' * len(part))})",
                              part).fetchall())
    return out


def copies(db: sqlite3.Connection, article_ids: Sequence[str]) -> dict[str, list[tuple]]:
    """For each of ``article_ids``, the other articles of its story as ``(id, title, date, source,
    url)`` rows in ingest order (articles without copies are left out)."""
    stories = stories_of(db, article_ids)
    members: dict[str, list[tuple]] = {}
    wanted = sorted(set(stories.values()))
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        for story, *row in db.execute(
                "SELECT s.story, a.id, a.title, a.date, a.source, a.url FROM stories s JOIN articles a ON a.id = s.article_id "
                f"WHERE s.story IN ({','.join('?' * len(part))}) ORDER BY s.seq", part):
            members.setdefault(story, []).append(tuple(row))
    out = {}
    for aid, story in stories.items():
        others = [m for m in members.get(story, ()) if m[0] != aid]
        if others:
            out[aid] = others
    return out


def counts(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(articles grouped, stories, articles that are a copy in a story of two or more)."""
    grouped, stories = db.execute("SELECT count(*), count(DISTINCT story) FROM stories").fetchone()
    return int(grouped), int(stories), int(grouped) - int(stories)
