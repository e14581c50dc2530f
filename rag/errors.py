"""The library's exceptions.

The library raises these; the edges (CLI exit codes, ``gr.Error`` in the UI) turn
them into messages. Every message is written for the person who will read it:
it names the bad value and, where there is one, the command that fixes it.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(RagError, ValueError):
    """A setting has a value the library cannot use."""


class InputError(RagError, ValueError):
    """Input the user gave (a file, a record, a question) cannot be used.

    Attributes:
        path: the file the input came from, when there is one.
        line: the 1-based line (JSONL) or record number (JSON), when known.
        reason: what is wrong, without the location.
    """

    def __init__(self, reason: str, path: str | None = None, line: int | None = None):
        self.reason = reason
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{reason}")


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another KeyboardInterrupt) stopped :meth:`rag.index.Index.add`; what was
    committed is kept, and running the same ingest again skips it.

    A KeyboardInterrupt still (code that catches that catches this), not a RagError: the
    user asked for it. Attributes:
        report: the :class:`rag.types.AddReport` of what was committed before the stop.
        total: the records the ingest expected to read, or None when not counted.
        saved: the articles of the ingest now in the index (added, updated, or there already).
    """

    def __init__(self, report, total: int | None):
        self.report = report
        self.total = total
        self.saved = len(report.added) + len(report.updated) + len(report.unchanged)
        super().__init__(f"interrupted after {self.saved:,} articles were saved")


class IndexNotFoundError(RagError):
    """No index exists at the given folder."""


class IndexMismatchError(RagError):
    """The index on disk was built with other settings than the ones asked for."""


class IndexCorruptError(RagError):
    """The index on disk cannot be read."""


class IndexLockedError(RagError):
    """Another process is writing to the index."""


class EmbedderError(RagError):
    """The embedding model cannot be loaded, built or run."""


class LLMError(RagError):
    """A language model backend failed (unreachable, error reply, bad output)."""


class LLMTimeoutError(LLMError):
    """A language model backend did not answer in time."""


class FetchError(RagError):
    """A web page or feed could not be fetched or is not one we read (bad URL, network
    error, timeout, HTTP error status, wrong content type, too large, too many redirects).

    Attributes:
        url: the URL asked for.
        reason: what went wrong, without the URL.
    """

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class FeedError(RagError):
    """A feed cannot be used: not RSS or Atom, malformed, or not followed by the index.

    Attributes:
        url: the feed's URL.
        reason: what is wrong, without the URL.
    """

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")
