"""The typed values that cross the library's public API."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field


def normalize_text(text: str) -> str:
    """Return ``text`` in Unicode NFC with newlines unified to ``\\n``.

    Every stored article text goes through this once, so that character offsets
    recorded at chunking time stay valid for the text we keep.
    """
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))


def content_id(title: str, text: str) -> str:
    """A stable id for an article that has none of its own: a hash of its normalized text."""
    norm = " ".join(normalize_text(title).split()) + "\n" + " ".join(normalize_text(text).split())
    return hashlib.sha256(norm.casefold().encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Article:
    """One news article, as read from a file and as stored in the index.

    ``text`` is the body in NFC; chunk and citation offsets index into it.
    ``origin`` says where it was read from (``path`` or ``path:line``).
    ``source`` is the publication or site; ``author`` the author names, joined with ``"; "``.
    """

    id: str
    title: str
    text: str
    date: str | None = None
    source: str | None = None
    url: str | None = None
    heading: str | None = None
    origin: str | None = None
    author: str | None = None

    @property
    def checksum(self) -> str:
        """Hash of everything that, when it changes, makes the article need re-indexing."""
        h = hashlib.sha256()
        for part in (self.title, self.text, self.date, self.source, self.url, self.heading):
            h.update((part or "").encode("utf-8"))
            h.update(b"\x00")
        if self.author:  # hashed only when present: an article without one keeps its earlier checksum
            h.update(b"author\x00" + self.author.encode("utf-8"))
        return h.hexdigest()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A span of an article's text that is embedded and retrieved as a unit.

    ``text == article.text[start:end]``; ``position`` is the chunk's rank in its article.
    """

    article_id: str
    position: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, with the article fields a caller needs to cite it."""

    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunk_id: int
    score: float
    text: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RecordProblem:
    """A record that could not be read; ingestion reports it and goes on."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


#: Unreadable dates an :class:`AddReport` quotes.
UNDATED_EXAMPLES = 3
#: Problems an :class:`AddReport` keeps one by one; past it, only counts by reason.
MAX_REPORTED_PROBLEMS = 100
_NUMBER = re.compile(r"\d[\d,.]*")


def problem_kind(reason: str) -> str:
    """A problem's reason with its numbers masked (``invalid JSON at column #: ...``), to count alike ones."""
    return _NUMBER.sub("#", reason)[:200]


@dataclass
class ProblemTally:
    """Problems met while reading, bounded: the first ``keep`` one by one, then counts by kind.

    A file of a million bad records costs a few kilobytes, not a million messages.
    """

    keep: int = MAX_REPORTED_PROBLEMS
    problems: list[RecordProblem] = field(default_factory=list)
    total: int = 0
    #: every problem (kept or not), counted by :func:`problem_kind`
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, problem: RecordProblem) -> bool:
        """Count ``problem``; True when it is one of those kept (worth logging)."""
        self.total += 1
        kind = problem_kind(problem.reason)
        if kind in self.kinds or len(self.kinds) < self.keep:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        else:
            self.kinds["(other problems)"] = self.kinds.get("(other problems)", 0) + 1
        if len(self.problems) < self.keep:
            self.problems.append(problem)
            return True
        return False

    def summary(self, shown: int) -> list[str]:
        """The first ``shown`` problems, then one line per kind of the rest, most frequent first."""
        lines = [str(p) for p in self.problems[:shown]]
        if self.total > len(lines):
            rest = dict(self.kinds)
            for p in self.problems[:shown]:
                k = problem_kind(p.reason)
                rest[k] -= 1
            lines.append(f"... and {self.total - len(lines):,} more: " + "; ".join(
                f"{n:,} x {k}" for k, n in sorted(rest.items(), key=lambda kv: -kv[1])[:10] if n > 0))
        return lines


@dataclass
class AddReport:
    """What an ``Index.add`` call did.

    ``problems`` holds the first :data:`MAX_REPORTED_PROBLEMS` problems;
    ``problem_count`` and ``problem_kinds`` count all of them.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    chunks_added: int = 0
    seconds: float = 0.0
    problem_count: int = 0
    problem_kinds: dict[str, int] = field(default_factory=dict)
    #: articles whose date text could not be read (kept, and found without a date filter)
    undated: int = 0
    #: the first few of those date texts, as written
    undated_examples: list[str] = field(default_factory=list)

    def note_date(self, article: Article) -> None:
        """Count ``article`` when it has a date that :func:`rag.dates.date_key` cannot read."""
        from rag.dates import date_key

        if article.date and article.date.strip() and date_key(article.date) is None:
            self.undated += 1
            if len(self.undated_examples) < UNDATED_EXAMPLES and article.date not in self.undated_examples:
                self.undated_examples.append(article.date)

    def date_summary(self) -> str | None:
        """One line on the dates that could not be read, or None when all could."""
        if not self.undated:
            return None
        some = "1 article has" if self.undated == 1 else f"{self.undated:,} articles have"
        eg = ", ".join(repr(d[:60]) for d in self.undated_examples)
        it = "it is" if self.undated == 1 else "they are"
        return (f"{some} a date we could not read (e.g. {eg}); {it} kept and found without a date filter")

    def add_problem(self, problem: RecordProblem) -> bool:
        """Record a problem (bounded); True when it was kept one by one."""
        tally = ProblemTally(MAX_REPORTED_PROBLEMS, self.problems, self.problem_count, self.problem_kinds)
        kept = tally.add(problem)
        self.problem_count = tally.total
        return kept

    def problem_summary(self, shown: int = MAX_REPORTED_PROBLEMS) -> list[str]:
        """Lines describing the problems: the first ``shown``, then counts by kind."""
        return ProblemTally(MAX_REPORTED_PROBLEMS, self.problems, self.problem_count, self.problem_kinds).summary(shown)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = [str(p) for p in self.problems]
        return d


@dataclass(frozen=True)
class Copy:
    """Another article of the same story (a syndicated copy, :mod:`rag.dedup`): it is not
    cited apart, the citation of its story says it was also published there."""

    article_id: str
    title: str
    date: str | None = None
    source: str | None = None
    url: str | None = None

    @property
    def label(self) -> str:
        """Who published it: its source, else its title."""
        return self.source or f"« {self.title} »"


def published_by(copies: "tuple[Copy, ...] | list[Copy]", limit: int = 5) -> str:
    """The copies as a short list of who published them (each once): ``Le Monde, Libération``."""
    labels = list(dict.fromkeys(c.label for c in copies))
    more = len(labels) - limit
    return ", ".join(labels[:limit]) + (f" (+{more})" if more > 0 else "")


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer: the exact sentence(s) quoted and where they are.

    ``quote == article.text[start:end]``.
    """

    n: int
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    quote: str
    start: int
    end: int
    chunk_id: int | None = None
    #: the other copies of this story in the index (syndicated copies), never cited apart
    also_published_by: tuple[Copy, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SentenceCheck:
    """The verification verdict on one sentence of an answer."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    similarity: float
    reason: str
    #: the cited source's language when the sentence renders it in another one
    #: (an English sentence over a French source): the answer labels it a translation
    translated_from: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    """What the assistant says, with its sources and how sure and fast it was.

    ``text`` carries inline markers ``[1]``, ``[2]`` matching ``citations[i].n``.
    When ``refused`` is true, the articles do not hold the answer and ``related``
    lists the closest passages.
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    confidence: float = 0.0
    #: the score the refusal decision was taken on (best sentence, less missing-anchor penalties)
    evidence_score: float = 0.0
    related: list[Hit] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    sentences: list[SentenceCheck] = field(default_factory=list)
    answerer: str = "extractive"
    standalone_question: str = ""
    language: str = "en"
    notice: str | None = None
    #: pieces a language model streamed for it (about one token each); 0 without a model
    generated_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ChunkRow:
    """One stored chunk with its article's metadata, as an index reads it back."""

    chunk_id: int
    article_id: str
    position: int
    start: int
    end: int
    text: str
    title: str
    date: str | None
    source: str | None
    url: str | None
