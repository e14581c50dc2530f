"""Ingestion on a Ray cluster: embed on many workers, write through one.

Embedding is nearly all of an ingest's cost (20-50 chunks/s per CPU worker), so it is the
part spread out: the driver reads the files and skips the articles already stored with the
same checksum (as :meth:`Index.add` does), Ray Data chunks, analyses and embeds the rest on
an actor pool (:meth:`Index.records_for` on a bare ``Index(config)`` in each actor, so the
model loads once per actor), and the results go to Parquet shards. Only then does the
driver load the shards into the index through its ordinary ``write`` (the folder backend's
commit, Milvus' insert), in input order, batch by batch.

Files are the hand-off for two reasons: writing into Milvus Lite from inside Ray tasks hung
when it was tried here, and shards on shared storage survive a worker failure (a re-run
skips what was loaded, by checksum). Chunk ids are deterministic (article id and position)
and the records are computed by the same code as the plain path, so both store the same
ids, offsets and vectors.

On one small machine Ray only adds start-up time; its use is many nodes or GPUs. Ray is an
optional extra (``rag-news[distributed]``), imported only here and only when asked for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import ConfigError, IngestInterrupted
from rag.index.base import ArticleRecord
from rag.index.core import Index, IngestProgress, Progress
from rag.types import AddReport, Article, Chunk, RecordProblem

log = logging.getLogger(__name__)

INSTALL_HINT = "distributed ingestion needs Ray Data: `pip install 'rag-news[distributed]'`"

#: How many stored checksums the driver asks the index for at a time.
CHECK_EVERY = 1000


@dataclass(frozen=True)
class RayOptions:
    """How to run an ingest on Ray.

    Attributes:
        address: the cluster to join (``ray://HOST:10001``, ``HOST:6379`` or ``auto``); None
            starts a local Ray for this ingest (and stops it after).
        workers: embedding actors; 0 lets Ray Data size the pool (1 up to the CPUs it sees).
        cpus_per_worker: CPUs reserved per actor (the embedder's thread count too).
        gpus_per_worker: GPUs reserved per actor (0: none).
        batch_size: articles per ``map_batches`` call.
        shards: where the Parquet shards go; on a cluster of several nodes it must be a path
            every node and the driver see (NFS, a mounted bucket). None: a temporary folder.
        keep_shards: keep them after loading (default: removed once loaded).
        init_kwargs: more arguments for ``ray.init`` (a test passes ``num_cpus``).
    """

    address: str | None = None
    workers: int = 0
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    batch_size: int = 16
    shards: Path | None = None
    keep_shards: bool = False
    init_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"Ray workers must be 0 (Ray decides) or positive, got {self.workers}")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"CPUs per Ray worker must be positive, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"GPUs per Ray worker must be 0 or positive, got {self.gpus_per_worker}")
        if self.batch_size < 1:
            raise ConfigError(f"the Ray batch size must be positive, got {self.batch_size}")


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is a separate import)
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc
    return ray


def connect(options: RayOptions) -> bool:
    """Join (or start) Ray now, unless it is up already; whether this call started it.

    Call it before opening a Milvus index: Ray's start-up forks its servers, and in a process
    whose gRPC client (pymilvus) already runs, that start timed out here.
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    ray.init(address=options.address, **options.init_kwargs)
    return True


def disconnect() -> None:
    _ray().shutdown()


# -- the worker side: articles in, encoded records out -----------------------------------------

class EmbedArticles:
    """The ``map_batches`` callable class: one per actor, so the model loads once per actor."""

    def __init__(self, config):
        # A bare Index has no backend: it chunks, analyses and embeds, and stores nothing.
        self.index = Index(config)

    def __call__(self, batch):
        import pyarrow as pa

        rows = batch.to_pylist()
        articles = [Article(**json.loads(r["article"])) for r in rows]
        records, sketches = self.index.records_for(articles)
        out = [encode(r, sketches.get(r.article.id)) for r in records]
        return pa.table({
            "seq": pa.array([r["seq"] for r in rows], pa.int64()),
            **{name: [o[name] for o in out] for name in COLUMNS},
        })


#: The columns of a shard beside ``seq`` (the input position, for loading in input order).
COLUMNS = ("article", "language", "chunks", "terms", "dim", "vectors", "sentence_spans", "sentence_vectors", "sketch")


def encode(record: ArticleRecord, sketch) -> dict:
    """One shard row: the record with its vectors as raw float32 bytes (exact, compact)."""
    vecs = np.ascontiguousarray(record.vectors, dtype=np.float32)
    sents = record.sentences
    svecs = (np.stack([np.asarray(v, np.float32) for _, v in sents]) if sents
             else np.zeros((0, vecs.shape[1] if vecs.ndim == 2 else 0), np.float32))
    return {
        "article": json.dumps(record.article.to_dict(), ensure_ascii=False),
        "language": record.language,
        "chunks": json.dumps([[c.position, c.start, c.end, c.text] for c in record.chunks], ensure_ascii=False),
        "terms": json.dumps([list(t) for t in record.terms], ensure_ascii=False),
        "dim": int(vecs.shape[1]) if vecs.ndim == 2 else 0,
        "vectors": vecs.tobytes(),
        "sentence_spans": json.dumps([list(span) for span, _ in sents]),
        "sentence_vectors": np.ascontiguousarray(svecs).tobytes(),
        "sketch": None if sketch is None else json.dumps(
            {"keys": list(sketch.keys), "shingles": sorted(sketch.shingles), "long": sketch.long}, ensure_ascii=False),
    }


def decode(row: dict) -> tuple[ArticleRecord, object]:
    """The record and dedup sketch of one shard row (the inverse of :func:`encode`)."""
    from rag.dedup import Sketch

    article = Article(**json.loads(row["article"]))
    chunks = [Chunk(article.id, p, s, e, t) for p, s, e, t in json.loads(row["chunks"])]
    dim = int(row["dim"])
    vectors = np.frombuffer(row["vectors"], np.float32).reshape(-1, dim) if dim else np.zeros((0, 0), np.float32)
    spans = [tuple(s) for s in json.loads(row["sentence_spans"])]
    svecs = np.frombuffer(row["sentence_vectors"], np.float32).reshape(len(spans), -1) if spans else []
    sk = json.loads(row["sketch"]) if row["sketch"] else None
    sketch = None if sk is None else Sketch(tuple(sk["keys"]), frozenset(sk["shingles"]), bool(sk["long"]))
    record = ArticleRecord(article, chunks, vectors.copy(), json.loads(row["terms"]), row["language"],
                           [(span, svecs[i].copy()) for i, span in enumerate(spans)])
    return record, sketch


# -- the driver side ----------------------------------------------------------------------------

def add_with_ray(index: Index, sources: Iterable[str | Path | Article], options: RayOptions | None = None, *,
                 progress: Progress | None = None) -> AddReport:
    """Index files (or articles) like :meth:`Index.add`, embedding them on a Ray cluster.

    Args:
        index: the index to write to (its backend does the one write path).
        sources: files, folders and :class:`Article` values (web pages: use the plain path).
        options: where and how to run (default: a local Ray).
        progress: called with an :class:`IngestProgress` after reading, after embedding and
            after each loaded batch; Ray Data shows its own progress bars while embedding.
    Returns:
        The report, as :meth:`Index.add` gives it.
    Raises:
        ConfigError: Ray is not installed, or a source is a URL.
        IngestInterrupted: on KeyboardInterrupt; what was loaded is saved.
    """
    from rag.articles import read_articles
    from rag.fetch import is_url

    options = options or RayOptions()
    ray = _ray()
    items = [sources] if isinstance(sources, (str, Path, Article)) else list(sources)
    urls = [s for s in items if is_url(s)]
    if urls:
        raise ConfigError(f"web pages are fetched by the plain `rag index add` (without --ray), not {urls[0]}")
    report = AddReport()
    t0 = time.perf_counter()
    given = [s for s in items if isinstance(s, Article)]
    paths = [s for s in items if not isinstance(s, Article)]

    def stream() -> Iterator[Article | RecordProblem]:
        yield from given
        if paths:
            yield from read_articles(paths)

    # Read on the driver: the last record of an id wins, as in the plain path.
    todo: dict[str, Article] = {}
    read = 0
    for item in stream():
        read += 1
        if isinstance(item, RecordProblem):
            if report.add_problem(item):
                log.info("skipped %s", item)
            continue
        report.note_date(item)
        todo.pop(item.id, None)
        todo[item.id] = item
    known: dict[str, str] = {}
    ids = list(todo)
    for i in range(0, len(ids), CHECK_EVERY):
        known.update(index.checksums(ids[i : i + CHECK_EVERY]))
    articles = []
    for a in todo.values():
        if known.get(a.id) == a.checksum:
            report.unchanged.append(a.id)
        else:
            articles.append(a)
    saved = len(report.unchanged)
    chunks = 0

    def tell(title: str = "") -> None:
        if progress:
            # Bad records, repeats and unchanged articles count as done from the start.
            progress(IngestProgress(read - len(articles) + done, read, saved, chunks, time.perf_counter() - t0, title))

    done = 0
    tell()
    if articles:
        shard_dir = _shard_dir(options)
        try:
            _embed_on_ray(ray, index, articles, options, shard_dir)
            for records, sketches in _load_batches(shard_dir, index.config.commit_every):
                added = index.write(records, sketches=sketches)
                for r in records:
                    (report.updated if r.article.id in known else report.added).append(r.article.id)
                report.chunks_added += len(added)
                chunks += len(added)
                done += len(records)
                saved += len(records)
                tell(records[-1].article.title)
        except KeyboardInterrupt as exc:
            report.seconds = time.perf_counter() - t0
            raise IngestInterrupted(report, read) from exc
        finally:
            index.flush()
            if not options.keep_shards:
                shutil.rmtree(shard_dir, ignore_errors=True)
    tell()
    report.seconds = time.perf_counter() - t0
    return report


def _shard_dir(options: RayOptions) -> Path:
    if options.shards is None:
        return Path(tempfile.mkdtemp(prefix="rag-ray-shards-"))
    d = Path(options.shards) / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}"
    if d.exists() and any(d.iterdir()):
        raise ConfigError(f"the shard folder {d} is not empty")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _embed_on_ray(ray, index: Index, articles: Sequence[Article], options: RayOptions, shard_dir: Path) -> None:
    """Chunk and embed ``articles`` on an actor pool and write the records to ``shard_dir``."""
    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, **options.init_kwargs)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # shards in input order: the load keeps it
        threads = max(1, int(options.cpus_per_worker))
        config = dataclasses.replace(index.config, threads=threads)
        ds = ray.data.from_items([{"seq": i, "article": json.dumps(a.to_dict(), ensure_ascii=False)}
                                  for i, a in enumerate(articles)])
        remote = {"num_cpus": options.cpus_per_worker}
        if options.gpus_per_worker:
            remote["num_gpus"] = options.gpus_per_worker
        ds = ds.map_batches(EmbedArticles, fn_constructor_kwargs={"config": config}, batch_size=options.batch_size,
                            batch_format="pyarrow", concurrency=options.workers or (1, _cpus(ray, options)), **remote)
        ds.write_parquet(str(shard_dir))
    finally:
        if started:
            ray.shutdown()  # the load below runs without Ray (and its memory) around


def _cpus(ray, options: RayOptions) -> int:
    """The most actors the cluster's CPUs hold (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1) // options.cpus_per_worker))


def _load_batches(shard_dir: Path, size: int) -> Iterator[tuple[list[ArticleRecord], dict]]:
    """The shards' records in input order, ``size`` at a time, with their sketches."""
    import pyarrow.parquet as pq

    files = sorted(shard_dir.rglob("*.parquet"))
    # Each shard holds a run of input positions (the order is preserved): order the files by
    # their first one, then each file's rows.
    first = {f: min(pq.read_table(f, columns=["seq"]).column("seq").to_pylist(), default=-1) for f in files}
    records: list[ArticleRecord] = []
    sketches: dict = {}
    for f in sorted(files, key=first.__getitem__):
        table = pq.read_table(f).sort_by("seq")
        for row in table.to_pylist():
            record, sketch = decode(row)
            records.append(record)
            if sketch is not None:
                sketches[record.article.id] = sketch
            if len(records) >= size:
                yield records, sketches
                records, sketches = [], {}
    if records:
        yield records, sketches
