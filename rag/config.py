"""Settings, built once at the edge (CLI flags, environment) and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from rag.errors import ConfigError

FAISS_KINDS = ("flat", "hnsw")
RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
RUNTIMES = ("onnx", "torch")


def default_cache_dir() -> Path:
    """Where derived model files live: ``$RAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rag``, else ``~/.cache/rag``."""
    if os.environ.get("RAG_CACHE_DIR"):
        return Path(os.environ["RAG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag"


@dataclass(frozen=True)
class Config:
    """Everything that decides how articles are indexed and searched.

    The chunking and embedder settings are recorded in an index's manifest when it
    is created; opening it later with different ones is an error, not a silent mix.
    """

    index_dir: Path = Path("index")
    embedder: str = "e5-small"
    chunk_size: int = 256
    chunk_overlap: int = 32
    faiss_index: str = "flat"
    hnsw_m: int = 32
    hnsw_ef_search: int = 64
    batch_size: int = 32
    threads: int = 0
    cache_dir: Path = field(default_factory=default_cache_dir)
    #: most articles embedded and committed together during ingestion
    commit_every: int = 64
    #: seconds of work after which an ingest commits what it has, whatever the count: batches
    #: are sized from the measured embedding speed so each commit comes about this often (the
    #: first after a few articles), and an interruption loses at most about this much work
    commit_seconds: float = 30.0
    #: how chunks are found: dense vectors, BM25, or both fused (query time only)
    retrieval: str = "hybrid"
    #: re-score the candidates by their best sentence (query time only)
    rerank: bool = True
    #: embed every sentence at ingestion (about twice the embedding work), so the
    #: sentence stage costs no embedding at query time; off, they are embedded on first use
    embed_sentences: bool = True
    #: what runs the bundled e5 model: "onnx" (ONNX Runtime, no torch; the default) or
    #: "torch" (sentence-transformers, the reference). Both give the same vectors.
    runtime: str = "onnx"
    #: with ``embed_sentences``, take each sentence's vector from its chunk's forward pass
    #: (token states mean-pooled over the sentence) instead of embedding it again: ingestion
    #: about as fast as without sentence vectors, but retrieval and answers lose up to 6
    #: points (README, "Sentence vectors"), so off; recorded in the index (a build setting)
    pool_sentences: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if not self.embedder or not self.embedder.strip():
            raise ConfigError("embedder must be a model name, got an empty string")
        if self.chunk_size < 16:
            raise ConfigError(f"chunk_size must be at least 16 tokens, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2:
            raise ConfigError(
                f"chunk_overlap must be between 0 and half the chunk size ({self.chunk_size // 2}), got {self.chunk_overlap}"
            )
        if self.retrieval not in RETRIEVAL_MODES:
            raise ConfigError(f"retrieval must be one of {', '.join(RETRIEVAL_MODES)}, got {self.retrieval!r}")
        if self.faiss_index not in FAISS_KINDS:
            raise ConfigError(f"faiss_index must be one of {', '.join(FAISS_KINDS)}, got {self.faiss_index!r}")
        for name in ("hnsw_m", "hnsw_ef_search", "batch_size", "commit_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not self.commit_seconds > 0:
            raise ConfigError(f"commit_seconds must be a positive number of seconds, got {self.commit_seconds}")
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (one per core) or positive, got {self.threads}")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")

    @classmethod
    def from_env(cls, **overrides) -> "Config":
        """Defaults, then ``RAG_*`` environment variables, then explicit ``overrides`` (None = not given)."""
        values: dict = {}
        env = {
            "index_dir": "RAG_INDEX",
            "embedder": "RAG_EMBEDDER",
            "chunk_size": "RAG_CHUNK_SIZE",
            "chunk_overlap": "RAG_CHUNK_OVERLAP",
            "faiss_index": "RAG_FAISS_INDEX",
            "threads": "RAG_THREADS",
            "batch_size": "RAG_BATCH_SIZE",
            "retrieval": "RAG_RETRIEVAL",
            "rerank": "RAG_RERANK",
            "embed_sentences": "RAG_EMBED_SENTENCES",
            "runtime": "RAG_RUNTIME",
            "pool_sentences": "RAG_POOL_SENTENCES",
            "commit_seconds": "RAG_COMMIT_SECONDS",
        }
        types = {f.name: f.type for f in fields(cls)}
        for name, var in env.items():
            raw = os.environ.get(var)
            if raw:
                values[name] = _parse(name, raw, types[name], var)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(types)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def with_(self, **changes) -> "Config":
        return replace(self, **changes)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse(name: str, raw: str, typ, var: str):
    if typ in (bool, "bool"):
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{var} must be one of {', '.join(_TRUE + _FALSE)} for {name}, got {raw!r}")
    if typ in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{var} must be an integer for {name}, got {raw!r}") from None
    if typ in (float, "float"):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{var} must be a number for {name}, got {raw!r}") from None
    return raw


@dataclass(frozen=True)
class AnswerConfig:
    """How the assistant answers.

    ``refusal_threshold`` and ``verify_threshold`` come from measured data (see the
    README, "Calibration"): below the first the articles are taken not to hold the
    answer; below the second an answer sentence is not backed by its cited sentence.
    """

    k: int = 6
    # The reader's calibrated probability that the sentence it would quote answers the
    # question: the thresholds that best separate (balanced accuracy) answerable questions from
    # near misses (answer passage left out, the rest of the page kept), fitted by `rag reader
    # train` (rag/reader/cross-v2.json): same language on 409 held-out PIAF train-page questions
    # (89 % kept, 77 % refused), across languages on XQuAD en->es (81 % kept, 85 % refused).
    refusal_threshold: float = 0.107
    #: the same, when the question and the best sentence are in different languages
    refusal_threshold_cross: float = 0.1407
    #: summary and "which articles" requests name a topic, not a fact: the best passage's
    #: cosine with the topic decides (calibrated on PIAF/XQuAD with whole pages left out)
    topic_threshold: float = 0.8995
    topic_threshold_cross: float = 0.7964
    # Calibrated on the seed gold set's full-sentence answers against their support
    # (plain sentence embeddings; `rag eval calibrate`).
    verify_threshold: float = 0.8841
    #: the same for an answer sentence in another language than its source
    verify_threshold_cross: float = 0.807
    #: sentences quoted for a factual answer (a multi-part question gets one per part)
    max_quote_sentences: int = 1
    #: a second sentence is quoted only when the first lacks the kind of answer asked (no date
    #: for "when"…), the second has it, and the reader gives it at least this share of the
    #: first one's probability (0 quotes it whenever it has the type; above 1, never)
    second_quote_ratio: float = 0.5
    #: sentences of a summary (the lead, then the most central ones)
    summary_sentences: int = 5
    #: articles listed for "which articles cover X"
    max_articles: int = 8
    max_sources: int = 5
    llm_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 100:  # the retriever's range (rag.retriever.MAX_K)
            raise ConfigError(f"k must be between 1 and 100, got {self.k}")
        for name in ("refusal_threshold", "refusal_threshold_cross", "topic_threshold", "topic_threshold_cross",
                     "verify_threshold", "verify_threshold_cross"):
            v = getattr(self, name)
            if not -1.0 <= v <= 2.0:
                raise ConfigError(f"{name} must be a similarity between -1 and 2, got {v}")
        if not 0.0 <= self.second_quote_ratio:
            raise ConfigError(f"second_quote_ratio must be 0 or more, got {self.second_quote_ratio}")
        for name in ("max_quote_sentences", "max_sources", "summary_sentences", "max_articles"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.llm_timeout <= 0:
            raise ConfigError(f"llm_timeout must be positive, got {self.llm_timeout}")
