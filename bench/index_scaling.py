"""Ingest and query cost as the index grows: 10k, 100k, 1M chunks (folder: FAISS flat and HNSW; Milvus Lite).

What it answers: does adding a batch get slower as the index grows (it must not rebuild
BM25 or FAISS in full: the folder backend's BM25 is incremental), how retrieval's storage
side scales, and how much memory an index of N chunks needs.

The data are synthetic, so that 1M chunks build in minutes, not weeks of embedding:
articles of 5 chunks of 60 words drawn (Zipf, s=1.1) from a vocabulary of 50,000 made-up
words; the BM25 terms are those words; vectors are random 384-d (the e5-small width),
L2-normalized; no sentence vectors. The records go straight to the backend's ``write``
(what :meth:`rag.index.Index.add` calls after embedding), in batches of 1,000 articles.
Flat search cost does not depend on the vector values; HNSW's does somewhat (random
vectors are the hard case for a graph), so its numbers are an estimate.

Per variant, in a fresh process (its own peak RSS):

- build: the time to write N chunks (reported, not the point);
- add: the time of ``write`` + ``flush`` of a new 100-article batch (500 chunks) into the
  index of N chunks, three times (median), then the time of the first query after it
  (where a backend that catches up lazily pays);
- query p50/p95 over ``--queries`` queries, k=50: ``dense_search`` (a stored vector plus
  noise), ``lexical_search`` (3 terms of a stored chunk), ``bm25_scores`` of the dense
  candidates, ``chunk_rows`` of the top 10, and their sum ("retrieval", the storage side of
  one hybrid retrieval; the query embedding, ~10 ms with e5-small on ONNX, excluded);
- peak RSS and the index's size on disk.

Milvus Lite runs only up to ``--milvus-max`` (100k by default), with fewer queries
(``--milvus-queries``): in a first check at 10k chunks on a loaded machine its lexical
search took about 2 s a query, against under 1 ms for the folder's BM25. FAISS uses ``--threads``
threads (1 by default: on a shared machine, one core).

Run on an idle machine (about 20-40 minutes at the defaults; 1M folder chunks need ~3 GB
of RAM and ~2 GB of disk)::

    .venv/bin/python bench/index_scaling.py [--sizes 10000 100000 1000000] [--queries 200]

Writes ``bench/results/index_scaling.json`` (``--out NAME`` for another name).
"""

from __future__ import annotations

import _common  # noqa: I001  (sets the environment before any heavy import)

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import Stopwatch, log

NAME = "index_scaling"
DIM = 384
CHUNKS_PER_ARTICLE = 5
WORDS_PER_CHUNK = 60
VOCAB = 50_000
WRITE_BATCH = 1000  # articles per write while building
ADD_BATCH = 100  # articles in the measured batch
K = 50


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="index sizes in chunks")
    p.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "milvus-lite"], choices=["flat", "hnsw", "milvus-lite"])
    p.add_argument("--milvus-max", type=int, default=100_000, help="largest size run on Milvus Lite")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--milvus-queries", type=int, default=20,
                   help="queries on Milvus Lite (default 20: its lexical search took ~2 s a query at 10k here)")
    p.add_argument("--threads", type=int, default=1, help="FAISS threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=NAME, help="result name under bench/results/")
    p.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


class Synthetic:
    """Deterministic synthetic articles as :class:`ArticleRecord` values (no model involved)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.words = np.array([f"w{i:05d}" for i in range(VOCAB)])
        ranks = np.arange(1, VOCAB + 1, dtype=np.float64)
        self.p = ranks ** -1.1 / np.sum(ranks ** -1.1)

    def records(self, first: int, n: int):
        from rag.index.base import ArticleRecord
        from rag.types import Article, Chunk

        words = self.words[self.rng.choice(VOCAB, size=(n, CHUNKS_PER_ARTICLE, WORDS_PER_CHUNK), p=self.p)]
        vecs = self.rng.standard_normal((n, CHUNKS_PER_ARTICLE, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=2, keepdims=True)
        out = []
        for i in range(n):
            aid = f"a{first + i:08d}"
            texts = [" ".join(w) for w in words[i]]
            text = "\n\n".join(texts)
            chunks, start = [], 0
            for pos, t in enumerate(texts):
                chunks.append(Chunk(aid, pos, start, start + len(t), t))
                start += len(t) + 2
            date = f"20{10 + (first + i) % 15:02d}-{1 + (first + i) % 12:02d}-{1 + (first + i) % 28:02d}"
            art = Article(id=aid, title=f"Article {first + i}", text=text, date=date, source=f"source{(first + i) % 20}")
            out.append(ArticleRecord(art, chunks, vecs[i], [list(w) for w in words[i]], "fr"))
        return out


def child(kind: str, n_chunks: int, args) -> dict:
    import faiss

    from rag.config import Config
    from rag.index import Index

    faiss.omp_set_num_threads(args.threads)
    started = _common.loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="rag-scaling-"))
    loc = tmp / ("index.db" if kind == "milvus-lite" else "index")
    config = Config(index_dir=loc, embedder=f"hash:{DIM}", faiss_index="hnsw" if kind == "hnsw" else "flat",
                    threads=args.threads, cache_dir=_common.MODEL_CACHE)
    syn = Synthetic(args.seed)
    n_articles = n_chunks // CHUNKS_PER_ARTICLE
    try:
        index = Index.create(loc, config)
        sample = []  # stored articles whose chunks the queries are made from
        with Stopwatch() as build:
            for first in range(0, n_articles, WRITE_BATCH):
                records = syn.records(first, min(WRITE_BATCH, n_articles - first))
                index.write(records)
                if len(sample) < args.queries:
                    sample += records[: args.queries - len(sample)]
                if first and first % (20 * WRITE_BATCH) == 0:
                    log(f"  {kind}: {first * CHUNKS_PER_ARTICLE:,} chunks written")
            index.flush()
        rng = np.random.default_rng(args.seed + 1)
        # The queries: stored chunks' vectors plus noise, and 3 of their terms.
        adds, first_query = [], []
        next_id = n_articles
        for _ in range(3):
            batch = syn.records(next_id, ADD_BATCH)
            next_id += ADD_BATCH
            with Stopwatch() as add:
                index.write(batch)
                index.flush()
            adds.append(add.wall)
            t0 = time.perf_counter()
            index.lexical_search(batch[0].terms[0][:3], K)
            index.dense_search(batch[0].vectors[0], K)
            first_query.append(time.perf_counter() - t0)
        times: dict[str, list[float]] = {"dense": [], "lexical": [], "bm25_of_candidates": [], "chunk_rows": [],
                                         "retrieval": []}
        hits = 0
        for q in range(args.queries):
            rec = sample[q % len(sample)]
            pos = int(rng.integers(len(rec.chunks)))
            vec = rec.vectors[pos] + rng.normal(0, 0.02, DIM).astype(np.float32)
            vec /= np.linalg.norm(vec)
            words = list(rng.choice(rec.terms[pos], size=3, replace=False))
            t0 = time.perf_counter()
            ids, _ = index.dense_search(vec, K)
            t1 = time.perf_counter()
            lex, _ = index.lexical_search(words, K)
            t2 = time.perf_counter()
            index.bm25_scores(words, ids)
            t3 = time.perf_counter()
            index.chunk_rows(list(dict.fromkeys(ids[:10] + lex[:10])))
            t4 = time.perf_counter()
            for name, dt in zip(("dense", "lexical", "bm25_of_candidates", "chunk_rows", "retrieval"),
                                (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                times[name].append(dt)
            hits += bool(ids)
        counts = index.counts()
        index.close()
        size = sum(f.stat().st_size for f in loc.rglob("*") if f.is_file()) if loc.is_dir() else loc.stat().st_size
        return {
            "kind": kind, "chunks": counts[1], "articles": counts[0], "build_s": round(build.wall, 2),
            "add_batch_s": [round(x, 4) for x in adds], "add_batch_median_s": round(statistics.median(adds), 4),
            "first_query_after_add_ms": [round(1000 * x, 2) for x in first_query],
            "query_ms": {k: _common.percentiles_ms(v) for k, v in times.items()},
            "queries_with_hits": hits, "disk_mib": round(size / 2**20, 1), "peak_rss": _common.peak_rss_mib(),
            "loadavg_start": started, "loadavg_end": _common.loadavg(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        args.result.write_text(json.dumps(child(kind, n, args)), encoding="utf-8")
        return 0
    here = Path(__file__).resolve()
    load_start = _common.loadavg()
    runs = []
    for n in args.sizes:
        for kind in args.kinds:
            if kind == "milvus-lite" and n > args.milvus_max:
                continue
            log(f"{kind} at {n:,} chunks")
            queries = args.milvus_queries if kind == "milvus-lite" else args.queries
            child_args = ["--child", kind, str(n), "--queries", str(queries), "--threads", str(args.threads),
                          "--seed", str(args.seed)]
            r = _common.run_child(here, child_args)
            runs.append(r)
            log(f"  add {r['add_batch_median_s']:.3f} s, retrieval p50 {r['query_ms']['retrieval']['p50']:.2f} ms")
    payload = {"name": NAME, "machine": _common.machine_info(), "loadavg_start": load_start,
               "loadavg_end": _common.loadavg(), "args": {k: v for k, v in vars(args).items() if k not in ("child", "result")},
               "synthetic": {"dim": DIM, "chunks_per_article": CHUNKS_PER_ARTICLE, "words_per_chunk": WORDS_PER_CHUNK,
                             "vocab": VOCAB, "add_batch_articles": ADD_BATCH, "k": K},
               "runs": runs}
    path = _common.write_result(args.out, payload)
    rows = [[r["kind"], f"{r['chunks']:,}", f"{r['build_s']:.1f}", f"{r['add_batch_median_s'] * 1000:.0f}",
             f"{max(r['first_query_after_add_ms']):.1f}",
             f"{r['query_ms']['dense']['p50']:.2f}", f"{r['query_ms']['lexical']['p50']:.2f}",
             f"{r['query_ms']['retrieval']['p50']:.2f}", f"{r['query_ms']['retrieval']['p95']:.2f}",
             f"{r['peak_rss']['vmhwm_mib'] or r['peak_rss']['ru_maxrss_mib']:.0f}", f"{r['disk_mib']:.0f}",
             r.get("others_cores")] for r in runs]
    print(f"Index scaling (synthetic {DIM}-d vectors and terms); load average at start {load_start}, "
          f"end {payload['loadavg_end']}\n")
    print(_common.format_table(rows, ["backend", "chunks", "build s", "add 500 ms", "1st query ms", "dense p50",
                                      "lexical p50", "retrieval p50", "p95", "peak RSS MiB", "disk MiB",
                                      "others' cores"]))
    print(f"\n-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
