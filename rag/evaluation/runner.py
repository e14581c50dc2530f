"""Run named retrieval configurations over a :class:`~rag.evaluation.datasets.Dataset` and measure them.

For every question, the top ``k`` hits are retrieved and the rank of the first
relevant one recorded. A hit is relevant when its article is one of the item's
``relevant`` ids and, when the item has accepted answers, its text contains one
(case, accents and articles ignored); news items (no answers) only need the id.
The same ranks with the id alone ("doc" recall) are kept too: long answer spans
(Service-Public) can straddle two chunks.

From the ranks: recall@1..k, MRR@k, 95% bootstrap intervals (paired: every
configuration is resampled with the same seed, so the same question sets), and
latency percentiles. ``answers=True`` also runs the assistant (our configurations
only) for the answer metrics of :func:`rag.evaluation.score_answers`.

Configurations: ``dense``, ``bm25``, ``hybrid``, ``hybrid+rerank`` (our
:class:`~rag.retriever.Retriever` modes; ``hybrid+rerank`` is the default) and the plain llama-index pipelines of
:mod:`rag.evaluation.baselines` (``li-bm25``, ``li-dense``, ``li-fusion``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.config import AnswerConfig, Config
from rag.evaluation.datasets import Dataset
from rag.errors import ConfigError, IndexCorruptError, IndexMismatchError
from rag.evaluation.metrics import GoldItem, contains_answer, score_answers
from rag.types import Article, Hit

log = logging.getLogger(__name__)

#: our retriever's configurations: name -> Retriever keyword arguments
OUR_CONFIGS: dict[str, dict[str, Any]] = {
    "dense": {"mode": "dense", "rerank": False},
    "bm25": {"mode": "bm25", "rerank": False},
    "hybrid": {"mode": "hybrid", "rerank": False},
    "hybrid+rerank": {"mode": "hybrid", "rerank": True},
}
BASELINE_CONFIGS = ("li-bm25", "li-dense", "li-fusion")
CONFIGS = tuple(OUR_CONFIGS) + BASELINE_CONFIGS
#: what `rag eval` measures unless told otherwise: the pipeline the assistant uses
DEFAULT_CONFIG = "hybrid+rerank"
ANSWER_STAGES = ("rewrite", "retrieve", "read", "answer", "verify", "total")


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


#: makes a progress bar: (description, total or None, unit) -> Bar
BarFactory = Callable[[str, int | None, str], Bar]


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _no_bar(desc: str, total: int | None, unit: str) -> Bar:
    return _NoBar()


class Searcher(Protocol):
    """What a configuration is: a question in, ranked hits out."""

    def retrieve(self, query: str, k: int = 5) -> list[Hit]: ...


# -- metrics (pure functions) -------------------------------------------------------------


def is_relevant(item: GoldItem, hit: Hit, *, article_only: bool = False) -> bool:
    """Whether ``hit`` answers ``item`` (see the module docstring).

    A gold item without ``relevant`` ids (our own gold sets) is matched on its
    text alone: the hit must hold an accepted answer or a support passage.
    """
    if item.relevant and hit.article_id not in item.relevant:
        return False
    if article_only and item.relevant:
        return True
    if not item.answers:
        return bool(item.relevant)
    if contains_answer(hit.text, item.answers):
        return True
    return not item.relevant and any(s and s in hit.text for s in item.support)


def first_relevant_rank(item: GoldItem, hits: Sequence[Hit], *, article_only: bool = False) -> int | None:
    """The 1-based rank of the first relevant hit, or None when none of ``hits`` is."""
    for rank, hit in enumerate(hits, 1):
        if is_relevant(item, hit, article_only=article_only):
            return rank
    return None


def hits_at(ranks: Sequence[int | None], k: int) -> np.ndarray:
    """Per question, 1.0 when a relevant hit is in the top ``k``."""
    return np.array([1.0 if r is not None and r <= k else 0.0 for r in ranks])


def reciprocal_ranks(ranks: Sequence[int | None], k: int) -> np.ndarray:
    """Per question, 1/rank of the first relevant hit in the top ``k`` (0 when none)."""
    return np.array([1.0 / r if r is not None and r <= k else 0.0 for r in ranks])


def recall_curve(ranks: Sequence[int | None], k: int) -> list[float]:
    """recall@1 .. recall@k."""
    if not ranks:
        return [0.0] * k
    return [float(hits_at(ranks, i).mean()) for i in range(1, k + 1)]


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    Deterministic for a ``seed``; with the same seed and sample size every call
    draws the same resampled question sets, so intervals of configurations run on
    the same questions are paired.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    # In blocks, so a large set (5,000 news titles) does not hold a resamples x n matrix.
    block = max(1, 2_000_000 // x.size)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        means[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return (round(float(lo), 4), round(float(hi), 4))


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of latencies in milliseconds."""
    if not len(values_ms):
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan"), "n": 0}
    v = np.asarray(values_ms, dtype=float)
    return {"p50": round(float(np.percentile(v, 50)), 2), "p95": round(float(np.percentile(v, 95)), 2),
            "mean": round(float(v.mean()), 2), "n": int(v.size)}


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalOptions:
    """How a run is made.

    Args:
        k: hits retrieved per question (recall@1..k, MRR@k).
        answers: also run the assistant (our configurations only).
        resamples: bootstrap resamples; ``seed`` seeds them.
        llm: with ``answers``, the assistant generates with this model (an ``openai:`` or
            ``llama-cpp:`` spec, as ``rag ask --llm``; ``answer_config.llm_timeout`` applies);
            by default it answers extractively.
    """

    k: int = 10
    answers: bool = False
    resamples: int = 1000
    seed: int = 0
    answer_config: AnswerConfig = field(default_factory=AnswerConfig)
    llm: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 100:
            raise ConfigError(f"k must be between 1 and 100, got {self.k}")
        if self.resamples < 1:
            raise ConfigError(f"resamples must be positive, got {self.resamples}")


@dataclass
class ConfigResult:
    """One configuration's numbers on one data set."""

    name: str
    n: int
    k: int
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    recall_curve: list[float]
    doc_recall_curve: list[float]
    latency_ms: dict[str, dict[str, float]]
    build: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    answers: dict[str, Any] | None = None
    per_item: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalRun:
    """Every configuration run over one data set, with what describes the run."""

    dataset: dict[str, Any]
    options: dict[str, Any]
    results: list[ConfigResult]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "options": self.options, "meta": self.meta,
                "results": [r.to_dict() for r in self.results]}


# -- configurations ----------------------------------------------------------------------


def check_configs(names: Sequence[str]) -> list[str]:
    """Validate configuration names, dropping repeats; raises :class:`ConfigError` naming a bad one."""
    out = []
    for n in names:
        if n not in CONFIGS:
            raise ConfigError(f"unknown configuration {n!r}; choose from {', '.join(CONFIGS)}")
        if n not in out:
            out.append(n)
    return out


def make_retriever(index, name: str):
    """Our :class:`~rag.retriever.Retriever` for configuration ``name``."""
    from rag.retriever import Retriever

    return Retriever(index, **OUR_CONFIGS[name])


# -- indexes -----------------------------------------------------------------------------


def corpus_key(articles: Sequence[Article], config: Config) -> str:
    """What identifies a built index: the corpus content and the build settings."""
    h = hashlib.sha256()
    for a in sorted(articles, key=lambda a: a.id):
        h.update(f"{a.id}\x00{a.checksum}\x00".encode())
    h.update(f"{config.embedder}|{config.chunk_size}|{config.chunk_overlap}|{config.faiss_index}|{config.hnsw_m}".encode())
    if not config.embed_sentences:
        h.update(b"|sentences embedded on first use")
    return h.hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:40] or "corpus"


def build_or_reuse_index(dataset: Dataset, work_dir: Path, config: Config, bar: BarFactory = _no_bar):
    """The index of ``dataset.articles`` under ``work_dir``, built once per corpus and settings.

    Returns:
        (index, info) where info says where it is, whether it was reused, and how long it took.
    """
    from rag.index import Index

    key = corpus_key(dataset.articles, config)
    path = Path(work_dir) / f"{_slug(dataset.name)}-{key[:12]}"
    reused = Index.exists(path)
    t0 = time.perf_counter()
    try:
        index = Index.open_or_create(path, config.with_(index_dir=path))
    except (IndexMismatchError, IndexCorruptError) as exc:
        # The folder is our own cache, keyed by corpus and settings: one written by
        # another version of the index format is rebuilt rather than reported.
        log.warning("rebuilding the cached index at %s: %s", path, exc)
        shutil.rmtree(path)
        reused = False
        index = Index.create(path, config.with_(index_dir=path))
    b = bar(f"indexing {dataset.name}", len(dataset.articles), " articles")
    last = [0]

    def progress(p) -> None:
        b.update(p.done - last[0])
        last[0] = p.done

    try:
        report = index.add(dataset.articles, progress=progress)
    finally:
        b.close()
    n_articles, n_chunks = index.counts()
    info = {"path": str(path), "reused": reused and not report.added and not report.updated,
            "seconds": round(time.perf_counter() - t0, 1), "articles": n_articles, "chunks": n_chunks,
            "embedded_chunks": report.chunks_added, "embedder": config.embedder,
            "chunk_size": config.chunk_size, "chunk_overlap": config.chunk_overlap}
    return index, info


# -- running -----------------------------------------------------------------------------


def _retrieval_pass(searcher: Searcher, items: Sequence[GoldItem], k: int, bar: Bar):
    ranks, doc_ranks, lat = [], [], []
    for it in items:
        t = time.perf_counter()
        hits = searcher.retrieve(it.question, k=k)
        lat.append((time.perf_counter() - t) * 1000)
        ranks.append(first_relevant_rank(it, hits))
        doc_ranks.append(first_relevant_rank(it, hits, article_only=True))
        bar.update(1)
    return ranks, doc_ranks, lat


def summarize(name: str, items: Sequence[GoldItem], ranks: Sequence[int | None], doc_ranks: Sequence[int | None],
              latencies_ms: Sequence[float], options: EvalOptions) -> ConfigResult:
    """The metrics and intervals of one configuration from its per-question ranks."""
    k = options.k
    metrics, ci = {}, {}
    for at in sorted({1, 5, 10, k}):
        if at <= k:
            metrics[f"R@{at}"] = round(float(hits_at(ranks, at).mean()), 4) if ranks else 0.0
    metrics[f"MRR@{k}"] = round(float(reciprocal_ranks(ranks, k).mean()), 4) if ranks else 0.0
    for at in (1, 5):
        if at <= k:
            ci[f"R@{at}"] = bootstrap_ci(hits_at(ranks, at), resamples=options.resamples, seed=options.seed)
    ci[f"MRR@{k}"] = bootstrap_ci(reciprocal_ranks(ranks, k), resamples=options.resamples, seed=options.seed)
    return ConfigResult(
        name=name, n=len(ranks), k=k, metrics=metrics, ci=ci,
        recall_curve=[round(x, 4) for x in recall_curve(ranks, k)],
        doc_recall_curve=[round(x, 4) for x in recall_curve(doc_ranks, k)],
        latency_ms={"retrieve": percentiles(latencies_ms)},
        per_item=[{"id": it.id, "rank": r, "doc_rank": d} for it, r, d in zip(items, ranks, doc_ranks)],
    )


def answer_metrics(assistant, items: Sequence[GoldItem], options: EvalOptions, bar: Bar) -> dict:
    """Run the assistant over ``items``: answer metrics, an interval on accuracy, per-stage latency."""
    answers = []
    for it in items:
        # A conversation is played as a user has it: each earlier question asked in turn, with
        # the assistant's own answers, so a follow-up sees what the user saw before it.
        history: list[tuple[str, str]] = []
        for q in it.history:
            history.append((q, assistant.ask(q, history=list(history)).text))
        answers.append(assistant.ask(it.question, history=history))
        bar.update(1)
    rep = score_answers(items, answers)
    d = rep.to_dict()
    correct = [float(row.get("correct", False)) for row in d["per_item"] if not row["unanswerable"]]
    d["ci"] = {"accuracy": bootstrap_ci(correct, resamples=options.resamples, seed=options.seed)}
    d["latency_ms"] = {s: percentiles([a.timings_ms.get(s, 0.0) for a in answers]) for s in ANSWER_STAGES}
    d["answerer"] = assistant.answerer_name
    d["refusal_meaningful"] = rep.unanswerable > 0
    if assistant.generative is not None:
        d["generation"] = generation_metrics(answers)
        for row, a in zip(d["per_item"], answers):
            row.update(answerer=a.answerer, notice=a.notice,
                       sentences=[{"text": c.text, "supported": c.supported, "reason": c.reason} for c in a.sentences])
    return d


def generation_metrics(answers: Sequence) -> dict:
    """What a language model did: answers it wrote, how many of its sentences verification
    kept, how often it said NOT_IN_SOURCES or fell back to quotes, first-token time and pace."""
    asked = [a for a in answers if "first_token" in a.timings_ms or a.generated_tokens]
    checks = [c for a in answers for c in a.sentences]
    kept = sum(c.supported for c in checks)
    pace = [(a.generated_tokens - 1) / ((a.timings_ms["answer"] - a.timings_ms["first_token"]) / 1000)
            for a in asked if a.generated_tokens > 1 and a.timings_ms["answer"] > a.timings_ms.get("first_token", 0)]
    return {
        "model_asked": len(asked),
        "generated_answers": sum(a.answerer.startswith("llm:") and not a.refused for a in answers),
        "not_in_sources": sum(bool(a.notice and "found no answer" in a.notice) for a in answers),
        "fell_back_to_quotes": sum(a.answerer == "extractive" and bool(a.notice) for a in answers),
        "too_slow": sum(bool(a.notice and "slower than the limit" in a.notice) for a in answers),
        "sentences": len(checks),
        "sentences_kept": kept,
        "sentences_kept_share": round(kept / len(checks), 4) if checks else 0.0,
        "translated_sentences": sum(c.supported and bool(c.translated_from) for c in checks),
        "first_token_ms": percentiles([a.timings_ms["first_token"] for a in asked if "first_token" in a.timings_ms]),
        "tokens_per_s": percentiles(pace),
        "generated_tokens": percentiles([a.generated_tokens for a in asked]),
    }


def evaluate(dataset: Dataset, configs: Sequence[str], *, config: Config, work_dir: Path,
             options: EvalOptions = EvalOptions(), bar: BarFactory = _no_bar) -> EvalRun:
    """Run every configuration in ``configs`` over ``dataset``.

    Args:
        config: the build settings of our index (embedder, chunking, FAISS).
        work_dir: where indexes and baseline embeddings are cached between runs.
        bar: makes progress bars (the CLI passes tqdm; the default shows nothing).
    Raises:
        ConfigError: an unknown or unavailable configuration name.
    """
    from rag.chat import Assistant

    names = check_configs(configs)
    llm = None
    if options.answers and options.llm:
        from rag.llm import parse_llm_spec

        llm = parse_llm_spec(options.llm, timeout=options.answer_config.llm_timeout)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    answerable = [it for it in dataset.items if not it.unanswerable]
    results: list[ConfigResult] = []
    index = index_info = baselines = None
    try:
        for name in names:
            t0 = time.perf_counter()
            if name in OUR_CONFIGS:
                if index is None:
                    index, index_info = build_or_reuse_index(dataset, work_dir, config, bar)
                tb = time.perf_counter()
                searcher = make_retriever(index, name)
                build = {**index_info, "retriever_seconds": round(time.perf_counter() - tb, 2)}
            else:
                from rag.evaluation.baselines import LlamaIndexBaselines

                if baselines is None:
                    baselines = LlamaIndexBaselines(dataset.articles, work_dir=work_dir, cache_dir=config.cache_dir,
                                                    k=options.k, bar=bar)
                searcher = baselines.get(name)
                build = baselines.info(name)
            _warm_up(searcher, options.k)
            b = bar(f"{name} retrieval", len(answerable), " questions")
            try:
                ranks, doc_ranks, lat = _retrieval_pass(searcher, answerable, options.k, b)
            finally:
                b.close()
            res = summarize(name, answerable, ranks, doc_ranks, lat, options)
            res.build = build
            if options.answers and name in OUR_CONFIGS:
                b = bar(f"{name} answers", len(dataset.items), " questions")
                try:
                    res.answers = answer_metrics(Assistant(searcher, llm, config=options.answer_config),
                                                 dataset.items, options, b)
                finally:
                    b.close()
                res.metrics["accuracy"] = round(res.answers["accuracy"], 4)
                res.ci["accuracy"] = res.answers["ci"]["accuracy"]
                for stage, p in res.answers["latency_ms"].items():
                    res.latency_ms[f"answer:{stage}"] = p
            res.seconds = round(time.perf_counter() - t0, 1)
            log.info("%s on %s: %s", name, dataset.name, res.metrics)
            results.append(res)
    finally:
        if index is not None:
            index.close()
    opts = {"k": options.k, "answers": options.answers, "llm": options.llm if options.answers else None,
            "resamples": options.resamples, "seed": options.seed,
            "configs": names, "embedder": config.embedder, "chunk_size": config.chunk_size,
            "chunk_overlap": config.chunk_overlap, "faiss_index": config.faiss_index}
    ds = {"name": dataset.name, "articles": len(dataset.articles), "questions": len(dataset.items),
          "answerable": len(answerable), "unanswerable": len(dataset.items) - len(answerable)}
    return EvalRun(dataset=ds, options=opts, results=results)


def _warm_up(searcher: Searcher, k: int) -> None:
    # Loads the query model (and any lazy structure) before the clock starts.
    searcher.retrieve("warm up", k=k)
