"""Retrieval latency (p50/p95 ms) of ``Retriever.retrieve`` at ~1k and ~100k chunks, FAISS flat and HNSW.

For each index the same queries (OrangeSum titles of indexed articles) are run one
at a time, k=5, in a fresh process that opens the index from disk. Per query we
time, in this order: the full ``Retriever.retrieve`` call with the index's default
settings (query embedding included; the default mode is hybrid, dense + BM25
fused); the same with ``mode="dense"``; the query embedding alone
(``embed_query``); the raw FAISS search for k hits and for the candidate depth the
default mode asks for; our ``VectorIndex.search`` (FAISS through our wrapper);
the lexical side (language, terms, BM25 search); the SQLite
``chunk_rows`` lookup. Also reported: index build time, size on disk, and peak RSS
of the build and the query processes. Title-to-own-article recall is printed as a
sanity check only (titles are part of the embedded chunk text: an easy task).

The indexes:

- ~1k chunks: a real index. ``Index.add`` of the first OrangeSum articles (file order)
  until they make >= 1,000 chunks of 256 tokens (overlap 32), with real embeddings.
  The HNSW index is ``Index.rebuild`` of a copy of it (FAISS rebuilt from the stored
  vectors, no re-embedding).
- ~100k chunks: real OrangeSum articles (the first in file order until our Chunker,
  256/32, makes >= 100,000 chunks), but embedding 100k chunks with the real model takes
  hours on 2 cores, so only the first ``--real`` chunks (default 2,000) get real
  embeddings (computed once, cached under ``bench/.cache/``); every other vector is
  synthetic: a random real vector plus Gaussian noise with the real vectors'
  per-dimension standard deviation, re-normalized. The index is built by ``Index.add``
  itself with only the model call replaced by a look-up of those vectors, so chunking,
  text analysis, SQLite, FAISS and persisting run as for a user (build time excludes
  embedding). Flat search cost does not depend on the vector values; HNSW's depends
  somewhat (graph shape, how many nodes a search visits), so its 100k number is an
  estimate. ``--real-all`` embeds every chunk for real instead (resumable; about 2-5
  hours on 2 idle cores at the 6-12 chunks/s we measure for these ~200-token chunks;
  the script prints its own estimate as it goes).

Run (about 15 minutes at the defaults on 2 idle cores the first time; the chunking
and the real embeddings are cached)::

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE \\
        .venv/bin/python bench/retrieval_latency.py [--small 1000] [--large 100000] [--real 2000] [--queries 200]

Writes ``bench/results/retrieval_latency.json``.
"""

from __future__ import annotations

import _common  # noqa: I001  (sets the environment before any heavy import)

import argparse
import gzip
import hashlib
import json
import random
import shutil
import sys
import time
from pathlib import Path

from _common import CACHE_DIR, MODEL_CACHE, ORANGESUM, Stopwatch, log

NAME = "retrieval_latency"
TARGET_P50_MS = 50.0
CHUNK_SIZE, CHUNK_OVERLAP = 256, 32
BLOCK = 500  # real vectors are cached in blocks of this many chunks
WARMUP_QUERIES = 5


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orangesum", type=Path, default=ORANGESUM, help="OrangeSum articles (.jsonl.gz)")
    p.add_argument("--small", type=int, default=1000, help="chunks of the real index (default 1000)")
    p.add_argument("--large", type=int, default=100_000, help="chunks of the large index (default 100000)")
    p.add_argument("--real", type=int, default=2000, help="chunks of the large index with real embeddings (default 2000)")
    p.add_argument("--real-all", action="store_true", help="embed every chunk of the large index for real (hours)")
    p.add_argument("--noise", type=float, default=1.0,
                   help="noise scale for synthetic vectors, in units of the real per-dimension std (default 1.0)")
    p.add_argument("--queries", type=int, default=200, help="queries per index (default 200)")
    p.add_argument("--k", type=int, default=5, help="hits per query (default 5)")
    p.add_argument("--scales", default="small,large", help="which indexes: small, large (default both)")
    p.add_argument("--kinds", default="flat,hnsw", help="FAISS kinds (default flat,hnsw)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settle", type=float, default=120,
                   help="before each timed step, wait up to this many seconds for the 1-min load average to drop "
                        "below --quiet-load (default 120; 0 = do not wait)")
    p.add_argument("--quiet-load", type=float, default=0.5, help="see --settle (default 0.5)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse indexes already built by an earlier run with the same parameters (their build "
                        "numbers are then the earlier run's)")
    p.add_argument("--out", default=NAME, help="result name under bench/results/ (default %(default)s)")
    # internal
    p.add_argument("--step", help=argparse.SUPPRESS)
    p.add_argument("--scale", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- corpus: articles and their chunks, cached -------------------------------------------


def corpus_key(args) -> str:
    from rag.chunking import SPLITTER

    st = args.orangesum.stat()
    key = f"{args.orangesum.resolve()}|{st.st_size}|{st.st_mtime_ns}|{CHUNK_SIZE}|{CHUNK_OVERLAP}|{SPLITTER}|{args.large}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def corpus_file(args) -> Path:
    return CACHE_DIR / f"corpus-{corpus_key(args)}.json.gz"


def step_chunk(args) -> dict:
    """Chunk OrangeSum articles in file order (as ``Index.add`` would) until ``--large`` chunks."""
    from rag.articles import read_articles
    from rag.chunking import Chunker
    from rag.embedding import get_embedder
    from rag.types import Article

    emb = get_embedder("e5-small", cache_dir=MODEL_CACHE, threads=args.threads)
    emb.warm_up()
    chunker = Chunker(emb.count_tokens, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP)
    articles, total, problems, batch = [], 0, 0, []

    def flush() -> None:
        nonlocal total
        for a, cl in zip(batch, chunker.chunk_many(batch)):
            if total >= args.large:
                return
            articles.append({"id": a.id, "title": a.title, "chunks": [[c.start, c.end] for c in cl]})
            total += len(cl)
        batch.clear()

    with Stopwatch() as sw:
        for item in read_articles([args.orangesum]):
            if not isinstance(item, Article):
                problems += 1
                continue
            batch.append(item)
            if len(batch) == 256:
                flush()
                if total >= args.large:
                    break
                if len(articles) % 5120 == 0:
                    log(f"  chunked {len(articles)} articles, {total} chunks")
        if batch and total < args.large:
            flush()
    return {"articles": articles, "chunks": total, "problems": problems, "chunk_s": round(sw.wall, 1),
            "chunker": chunker.settings}


def load_corpus(args) -> dict:
    with gzip.open(corpus_file(args), "rt", encoding="utf-8") as f:
        return json.load(f)


def read_corpus_articles(args, corpus: dict, count: int):
    """The first ``count`` corpus articles as ``rag.Article``, with their ``rag.Chunk`` lists."""
    from rag.articles import read_articles
    from rag.types import Article, Chunk

    out = []
    entries = corpus["articles"][:count]
    it = (a for a in read_articles([args.orangesum]) if isinstance(a, Article))
    for entry, article in zip(entries, it):
        if article.id != entry["id"]:
            raise SystemExit(f"{args.orangesum} changed since it was chunked: delete {corpus_file(args)}")
        chunks = [Chunk(article.id, i, s, e, article.text[s:e]) for i, (s, e) in enumerate(entry["chunks"])]
        out.append((article, chunks))
    return out


# -- real embeddings of the first chunks, cached in blocks -------------------------------


def real_dir(args) -> Path:
    return CACHE_DIR / f"real-vectors-{corpus_key(args)}"


def step_embed_real(args) -> dict:
    """Embed the first ``n_real`` chunks (corpus order) for real, resuming from cached blocks."""
    import numpy as np

    from rag.chunking import embedding_text
    from rag.embedding import get_embedder

    corpus = load_corpus(args)
    n_real = corpus["chunks"] if args.real_all else min(args.real, corpus["chunks"])
    need, articles = 0, 0
    for entry in corpus["articles"]:
        if need >= n_real:
            break
        need += len(entry["chunks"])
        articles += 1
    texts = [embedding_text(a.title, c.text) for a, cl in read_corpus_articles(args, corpus, articles) for c in cl][:n_real]
    folder = real_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    emb = get_embedder("e5-small", cache_dir=MODEL_CACHE, batch_size=32, threads=args.threads)
    embedded = cached = 0
    seconds = 0.0
    for b0 in range(0, n_real, BLOCK):
        block = texts[b0 : b0 + BLOCK]
        digest = hashlib.sha1("\x00".join(block).encode()).hexdigest()
        path = folder / f"block-{b0 // BLOCK:06d}.npz"
        if path.exists():
            with np.load(path) as z:
                if str(z["digest"]) == digest:
                    cached += len(block)
                    continue
        emb.warm_up()
        with Stopwatch() as sw:
            vecs = emb.embed_passages(block)
        seconds += sw.wall
        embedded += len(block)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, vectors=vecs, digest=np.array(digest), seconds=np.array(sw.wall))
        tmp.replace(path)
        rate = embedded / seconds
        left = (n_real - b0 - len(block)) / rate
        log(f"  embedded {b0 + len(block)}/{n_real} real chunks, {rate:.1f} chunks/s, ~{left / 60:.0f} min left")
    # Time of every block, including those embedded by earlier runs.
    total_s = 0.0
    for b0 in range(0, n_real, BLOCK):
        with np.load(folder / f"block-{b0 // BLOCK:06d}.npz") as z:
            total_s += float(z["seconds"])
    return {"n_real": n_real, "embedded_now": embedded, "from_cache": cached, "embed_s_all_blocks": round(total_s, 1),
            "chunks_per_s": round(n_real / total_s, 2) if total_s else None,
            "tokens_mean": round(sum(emb.count_tokens(texts[:500])) / min(500, len(texts)), 1)}


def load_real(args, n_real: int):
    import numpy as np

    parts = []
    for b0 in range(0, n_real, BLOCK):
        with np.load(real_dir(args) / f"block-{b0 // BLOCK:06d}.npz") as z:
            parts.append(z["vectors"])
    return np.concatenate(parts)[:n_real]


def synthetic_vectors(real, n: int, noise: float, seed: int):
    """``n`` unit vectors: random real rows plus per-dimension Gaussian noise, re-normalized."""
    import numpy as np

    rng = np.random.default_rng(seed)
    std = real.std(axis=0)
    src = rng.integers(0, len(real), size=n)
    out = real[src] + rng.standard_normal((n, real.shape[1]), dtype=np.float32) * (noise * std)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    cos_to_source = np.sum(out * real[src], axis=1)

    def mean_pair_cos(v):
        i, j = rng.integers(0, len(v), 4000), rng.integers(0, len(v), 4000)
        keep = i != j
        return float(np.mean(np.sum(v[i[keep]] * v[j[keep]], axis=1)))

    stats = {
        "noise_std_scale": noise,
        "mean_cosine_to_source": round(float(cos_to_source.mean()), 4),
        "mean_cosine_random_pairs_real": round(mean_pair_cos(real), 4),
        "mean_cosine_random_pairs_synthetic": round(mean_pair_cos(out), 4) if n > 1 else None,
    }
    return out.astype(np.float32), stats


# -- building ------------------------------------------------------------------------------


def index_dir(scale: str, kind: str) -> Path:
    return CACHE_DIR / "indexes" / f"{scale}-{kind}"


def make_config(path: Path, kind: str, threads: int):
    from rag.config import Config

    return Config(index_dir=path, embedder="e5-small", cache_dir=MODEL_CACHE, faiss_index=kind,
                  chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, threads=threads)


def small_article_count(corpus: dict, target: int) -> int:
    total = 0
    for i, entry in enumerate(corpus["articles"]):
        total += len(entry["chunks"])
        if total >= target:
            return i + 1
    return len(corpus["articles"])


def step_build(args) -> dict:
    import rag

    path = index_dir(args.scale, args.kind)
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(args)
    if args.scale == "small" and args.kind == "flat":
        out = build_small_flat(args, corpus, path)
    elif args.scale == "small":
        flat = index_dir("small", "flat")
        if not rag.Index.exists(flat):
            raise SystemExit("build the small flat index first (it is the source of the small HNSW one)")
        shutil.copytree(flat, path)
        for p in path.glob("bench-*.json"):
            p.unlink()
        with Stopwatch() as sw:
            index = rag.Index.rebuild(path, make_config(path, args.kind, args.threads))
        n = len(index.vectors)
        index.close()
        out = {"method": "Index.rebuild (FAISS from stored vectors)",
               "how": "Index.rebuild of a copy of the small flat index: FAISS HNSW built from the stored vectors "
                      "(embedding time: see the flat index)",
               "build_s": round(sw.wall, 3), "chunks": n, "real_vectors": n, "synthetic_vectors": 0}
    else:
        out = build_large(args, corpus, path)
    out.update(scale=args.scale, kind=args.kind, peak_rss=_common.peak_rss_mib(), disk=_common.dir_size_bytes(path),
               built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), params=build_params(args))
    (path / "bench-build.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    return out


def build_params(args) -> dict:
    return {"orangesum": str(args.orangesum), "small": args.small, "large": args.large,
            "real": "all" if args.real_all else args.real, "noise": args.noise, "seed": args.seed,
            "chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP, "corpus": corpus_key(args)}


def instrument(index, lookup: dict | None = None) -> dict:
    """Time what ``Index.add`` spends embedding and chunking; with ``lookup``, embed by table look-up.

    The look-up replaces only the model call: every other step of ``Index.add`` (chunking,
    text analysis, SQLite, FAISS, persisting) runs as it does for a user. ``lookup`` holds
    the chunk vectors by text (``chunks``) and what :func:`synthetic_vectors` needs to make
    the sentence vectors that ``Index.add`` also asks for (``real``, ``noise``, ``seed``).
    """
    spent = {"synthetic_sentences": 0, "calls": 0}
    if lookup is None:
        return _common.time_index_add(index, spent=spent)

    def look_up(texts):
        import numpy as np

        chunk_vecs = lookup["chunks"]
        missing = [t for t in texts if t not in chunk_vecs]
        if missing:  # sentences (title + sentence): synthetic vectors, drawn in call order
            spent["synthetic_sentences"] += len(missing)
            made, _ = synthetic_vectors(lookup["real"], len(missing), lookup["noise"], lookup["seed"] + spent["calls"])
            extra = dict(zip(missing, made))
        spent["calls"] += 1
        return np.stack([chunk_vecs[t] if t in chunk_vecs else extra[t] for t in texts])

    return _common.time_index_add(index, look_up, spent)


def add_progress(total: int):
    step = 4096 if total >= 4096 else 128
    last = [0]

    def progress(p):  # an IngestProgress, after each commit (batches vary in size)
        if p.done // step > last[0] // step:
            log(f"  Index.add: {p.done}/{total} articles, {p.chunks} chunks")
        last[0] = p.done

    return progress


def build_small_flat(args, corpus: dict, path: Path) -> dict:
    import rag
    from rag.chunking import embedding_text

    n_articles = small_article_count(corpus, args.small)
    items = read_corpus_articles(args, corpus, n_articles)
    articles = [a for a, _ in items]
    with Stopwatch() as load:
        index = rag.Index.create(path, make_config(path, "flat", args.threads))
        emb = index.embedder
        emb.warm_up()
        _ = index.chunker
    a0, cl0 = items[0]
    emb.embed_passages([embedding_text(a0.title, c.text) for c in cl0] * 8)  # warm-up batch, not timed
    spent = instrument(index)
    with Stopwatch() as sw:
        report = index.add(articles, progress=add_progress(len(articles)))
    n = len(index.vectors)
    index.close()
    return {"method": "Index.add, real embeddings",
            "how": "Index.add of OrangeSum articles with real embeddings (model loaded and one batch embedded "
                   "before timing)",
            "build_s": round(sw.wall, 3), "embed_s_inside_add": round(spent["embed_s"], 3),
            "chunk_s_inside_add": round(spent["chunk_s"], 3),
            "other_s_inside_add": round(sw.wall - spent["embed_s"] - spent["chunk_s"], 3),
            "model_load_s": round(load.wall, 2), "articles": len(articles), "chunks": n,
            "chunks_added": report.chunks_added, "chunks_per_s": round(n / sw.wall, 2),
            "real_vectors": n, "synthetic_vectors": 0}


def build_large(args, corpus: dict, path: Path) -> dict:
    import numpy as np

    import rag
    from rag.chunking import embedding_text

    total = corpus["chunks"]
    n_real = total if args.real_all else min(args.real, total)
    real = load_real(args, n_real)
    with Stopwatch() as synth_sw:
        synth, synth_stats = synthetic_vectors(real, total - n_real, args.noise, args.seed)
    vectors = np.concatenate([real, synth]) if len(synth) else real
    items = read_corpus_articles(args, corpus, len(corpus["articles"]))
    lookup: dict[str, np.ndarray] = {}
    i = 0
    for article, chunks in items:
        for c in chunks:
            lookup.setdefault(embedding_text(article.title, c.text), vectors[i])
            i += 1
    articles = [a for a, _ in items]
    del items
    table_mib = (vectors.nbytes + sum(len(t.encode("utf-8")) for t in lookup)) / 2**20
    cfg = make_config(path, args.kind, args.threads)
    with Stopwatch() as load:
        index = rag.Index.create(path, cfg)
        index.embedder.warm_up()  # its tokenizer cuts the chunks
        _ = index.chunker
    spent = instrument(index, {"chunks": lookup, "real": real, "noise": args.noise, "seed": args.seed + 1})
    with Stopwatch() as sw:
        report = index.add(articles, progress=add_progress(len(articles)))
    n = len(index.vectors)
    index.close()
    if n != total or report.chunks_added != total:
        raise SystemExit(f"the large index holds {n} vectors ({report.chunks_added} added), expected {total}")
    return {"method": f"Index.add, vectors looked up: {n_real} real + {total - n_real} synthetic",
            "how": f"Index.add of the articles with the model call replaced by a look-up of {n_real} real and "
                   f"{total - n_real} synthetic chunk vectors, and {spent['synthetic_sentences']} synthetic sentence "
                   f"vectors (made the same way); everything else (chunking, sentence splitting, text analysis, "
                   f"SQLite, FAISS, persist) as for a user. Build time excludes embedding.",
            "synthetic_sentence_vectors": spent["synthetic_sentences"],
            "build_s": round(sw.wall, 3), "chunk_s_inside_add": round(spent["chunk_s"], 3),
            "lookup_s_inside_add": round(spent["embed_s"], 3),
            "other_s_inside_add": round(sw.wall - spent["embed_s"] - spent["chunk_s"], 3),
            "model_load_s": round(load.wall, 2), "synthesis_s": round(synth_sw.wall, 3),
            "lookup_table_mib": round(table_mib, 1),
            "articles": len(articles), "chunks": n, "real_vectors": n_real, "synthetic_vectors": total - n_real,
            "synthetic": synth_stats}


# -- querying ------------------------------------------------------------------------------


def step_query(args) -> dict:
    import faiss
    import numpy as np

    import rag
    from rag.analysis import detect_language, terms

    path = index_dir(args.scale, args.kind)
    queries = json.loads((path.parent / f"queries-{args.scale}.json").read_text(encoding="utf-8"))
    with Stopwatch() as open_sw:
        retriever = rag.Retriever.load(path, make_config(path, args.kind, args.threads))
    with Stopwatch() as warm_sw:
        retriever.warm_up()
    dense = rag.Retriever(retriever.index, mode="dense", rerank=False)
    index = retriever.index
    emb, vec_index, store = index.embedder, index.vectors, index.store
    raw = vec_index.faiss_index
    # What the default retriever asks the vector index for: k, or a deeper candidate list to fuse.
    uses_candidates = retriever.mode != "dense" or retriever.rerank
    n_cand = max(args.k, retriever.candidates) if uses_candidates else args.k
    for q in queries[:WARMUP_QUERIES]:  # also loads the BM25 matrix
        retriever.retrieve(q["title"], k=args.k)
        dense.retrieve(q["title"], k=args.k)
    t = {name: [] for name in ("retrieve", "retrieve_dense", "embed_query", "faiss_k", "faiss_candidates",
                               "vectorindex_candidates", "lexical", "sqlite_rows")}
    ranks = {"retrieve": [], "retrieve_dense": []}
    for q in queries:
        text = q["title"]
        t0 = time.perf_counter()
        hits = retriever.retrieve(text, k=args.k)
        t1 = time.perf_counter()
        hits_dense = dense.retrieve(text, k=args.k)
        t2 = time.perf_counter()
        vec = emb.embed_query(text)
        t3 = time.perf_counter()
        qv = np.asarray(vec, dtype=np.float32)[None, :]
        raw.search(qv, args.k)
        t4 = time.perf_counter()
        raw.search(qv, n_cand)
        t5 = time.perf_counter()
        ids, _ = vec_index.search(vec, n_cand)
        t6 = time.perf_counter()
        if retriever.mode != "dense":
            index.lexical.search(terms(text, detect_language(text)), n_cand)
        t7 = time.perf_counter()
        store.chunk_rows(ids[: args.k])
        t8 = time.perf_counter()
        for name, a, b in (("retrieve", t0, t1), ("retrieve_dense", t1, t2), ("embed_query", t2, t3),
                           ("faiss_k", t3, t4), ("faiss_candidates", t4, t5), ("vectorindex_candidates", t5, t6),
                           ("lexical", t6, t7), ("sqlite_rows", t7, t8)):
            t[name].append(b - a)
        for name, hs in (("retrieve", hits), ("retrieve_dense", hits_dense)):
            found = [h.article_id for h in hs]
            ranks[name].append(found.index(q["id"]) + 1 if q["id"] in found else None)
    inner = faiss.downcast_index(raw.index)
    hnsw = ({"M": int(inner.hnsw.nb_neighbors(1)), "efSearch": int(inner.hnsw.efSearch),
             "efConstruction": int(inner.hnsw.efConstruction)} if isinstance(inner, faiss.IndexHNSW) else None)
    real = [q["real"] for q in queries]

    def recall(rs):
        real_ranks = [r for r, is_real in zip(rs, real) if is_real]
        return {"at_1": round(sum(r == 1 for r in rs) / len(rs), 3),
                f"at_{args.k}": round(sum(r is not None for r in rs) / len(rs), 3),
                "real_vector_queries": len(real_ranks),
                "at_1_real_only": round(sum(r == 1 for r in real_ranks) / len(real_ranks), 3) if real_ranks else None}

    return {
        "scale": args.scale, "kind": args.kind, "k": args.k, "queries": len(queries), "warmup_queries": WARMUP_QUERIES,
        "retriever": {"mode": retriever.mode, "rerank": retriever.rerank, "candidates": retriever.candidates,
                      "vector_search_depth": n_cand},
        "vectors": len(vec_index), "faiss_class": type(inner).__name__, "hnsw": hnsw,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "open_s": round(open_sw.wall, 3), "model_load_s": round(warm_sw.wall, 3),
        "ms": {name: _common.percentiles_ms(v) for name, v in t.items()},
        "title_recall": {name: recall(rs) for name, rs in ranks.items()},
        "peak_rss": _common.peak_rss_mib(),
    }


def write_queries(args, corpus: dict, scale: str, n_real_chunks: int) -> list[dict]:
    """``--queries`` titles of indexed articles, sampled with ``--seed``; same for flat and HNSW."""
    n_articles = small_article_count(corpus, args.small) if scale == "small" else len(corpus["articles"])
    entries = corpus["articles"][:n_articles]
    real_upto, seen = 0, 0  # articles whose chunks all have real vectors
    for e in entries:
        seen += len(e["chunks"])
        if seen > n_real_chunks:
            break
        real_upto += 1
    picks = random.Random(args.seed).sample(range(len(entries)), min(args.queries, len(entries)))
    queries = [{"id": entries[i]["id"], "title": entries[i]["title"], "real": i < real_upto} for i in picks]
    out = index_dir(scale, "x").parent / f"queries-{scale}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
    return queries


# -- driver --------------------------------------------------------------------------------


def child(args) -> None:
    steps = {"chunk": step_chunk, "embed-real": step_embed_real, "build": step_build, "query": step_query}
    started = _common.loadavg()
    out = steps[args.step](args)
    if args.step == "chunk":
        corpus_file(args).parent.mkdir(parents=True, exist_ok=True)  # bench/.cache on a new checkout
        with gzip.open(corpus_file(args), "wt", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False)
        out = {k: v for k, v in out.items() if k != "articles"}
    out.update(loadavg_start=started, loadavg_end=_common.loadavg(), step_peak_rss=_common.peak_rss_mib())
    args.result.write_text(json.dumps(out), encoding="utf-8")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.step:
        child(args)
        return
    here = Path(__file__).resolve()
    common = ["--orangesum", str(args.orangesum), "--small", str(args.small), "--large", str(args.large),
              "--real", str(args.real), "--noise", str(args.noise), "--seed", str(args.seed),
              "--threads", str(args.threads), "--k", str(args.k)] + (["--real-all"] if args.real_all else [])
    scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    load_start = _common.loadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    if not corpus_file(args).exists():
        log(f"chunking OrangeSum into {CHUNK_SIZE}-token chunks (once; cached in {corpus_file(args)})")
        chunking = _common.run_child(here, ["--step", "chunk", *common])
    else:
        chunking = None
    corpus = load_corpus(args)
    log(f"corpus: {len(corpus['articles'])} articles, {corpus['chunks']} chunks")

    real_info = None
    if "large" in scales:
        log("real embeddings of the first chunks (cached in blocks)")
        real_info = _common.run_child(here, ["--step", "embed-real", *common])
        log(f"  {real_info['n_real']} real vectors, {real_info['chunks_per_s']} chunks/s when embedded")

    builds, results = {}, []
    for scale in scales:
        n_real_chunks = corpus["chunks"] if scale == "small" else real_info["n_real"]
        write_queries(args, corpus, scale, n_real_chunks)
        for kind in kinds:
            key = f"{scale}-{kind}"
            record = index_dir(scale, kind) / "bench-build.json"
            if args.reuse and record.exists() and json.loads(record.read_text())["params"] == build_params(args):
                builds[key] = {**json.loads(record.read_text()), "reused": True}
                log(f"{key}: reusing the index built at {builds[key]['built_at']}")
            else:
                settled = _common.settle(args.quiet_load, args.settle)
                before = _common.loadavg()
                log(f"{key}: building, load average {before}")
                if scale == "small" and kind != "flat" and "flat" not in kinds:
                    _common.run_child(here, ["--step", "build", "--scale", scale, "--kind", "flat", *common])
                b = _common.run_child(here, ["--step", "build", "--scale", scale, "--kind", kind, *common])
                builds[key] = {**b, "reused": False, "loadavg_before": before, "loadavg_after": _common.loadavg(),
                               "settle": settled}
                log(f"  built in {b['build_s']:.1f} s, {b['disk']['total'] / 2**20:.1f} MiB on disk")
            settled = _common.settle(args.quiet_load, args.settle)
            before = _common.loadavg()
            log(f"{key}: {args.queries} queries, load average {before}")
            q = _common.run_child(here, ["--step", "query", "--scale", scale, "--kind", kind, *common])
            q.update(loadavg_before=before, loadavg_after=_common.loadavg(), settle=settled)
            log(f"  retrieve p50 {q['ms']['retrieve']['p50']:.1f} ms, p95 {q['ms']['retrieve']['p95']:.1f} ms")
            results.append({"index": key, "build": builds[key], "query": q})

    payload = {
        "benchmark": NAME,
        "description": __doc__.split("\n\n")[0],
        "started": started,
        "machine": _common.machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": _common.loadavg(),
        "parameters": {**build_params(args), "queries": args.queries, "k": args.k, "threads": args.threads,
                       "scales": scales, "kinds": kinds, "warmup_queries": WARMUP_QUERIES,
                       "settle_s": args.settle, "quiet_load": args.quiet_load,
                       "query_source": "titles of indexed OrangeSum articles, sampled with the seed"},
        "corpus": {"articles": len(corpus["articles"]), "chunks": corpus["chunks"], "chunker": corpus["chunker"],
                   "chunking_this_run": chunking},
        "vectors_note": ("The small indexes hold only real embeddings. In the large ones, the first "
                         f"{real_info['n_real'] if real_info else '-'} chunks have real embeddings and the rest "
                         "synthetic unit vectors (a random real vector plus per-dimension Gaussian noise with the real "
                         "vectors' spread, re-normalized). Flat search cost does not depend on the vector values; "
                         "HNSW's depends somewhat on their distribution, so its large-index numbers are an "
                         "estimate." if "large" in scales else "All vectors are real embeddings."),
        "real_embeddings": real_info,
        "target": {"retrieve_p50_ms": TARGET_P50_MS, "at": "~100k chunks, query embedding included"},
        "results": results,
    }
    path = _common.write_result(args.out, payload)
    print(render(payload))
    print(f"\nJSON: {path}")


def _recall(rec: dict, synthetic: bool) -> str:
    if not synthetic:
        return f"{rec['at_1']}"
    n = rec["real_vector_queries"]
    return f"{rec['at_1_real_only']} (n={n})" if n else "- (n=0)"


def _ms(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def render(payload: dict) -> str:
    m = payload["machine"]
    res = payload["results"]
    mode = res[0]["query"]["retriever"] if res else {}
    lines = [
        f"Retrieval latency, k={payload['parameters']['k']}, {payload['parameters']['queries']} title queries per "
        f"index, one at a time; {m['cpu_model']}, {m['nproc']} CPUs",
        f"load average at start {payload['loadavg_start']}, end {payload['loadavg_end']}",
        "",
        f"Latency in ms, p50 / p95. retrieve = Retriever.retrieve as configured by default (mode {mode.get('mode')}, "
        f"rerank {mode.get('rerank')}), query embedding included;",
        "dense = Retriever(mode='dense').retrieve; embed = embed_query; faiss = raw FAISS search for k hits and for "
        f"the {mode.get('vector_search_depth')} candidates the default mode fuses;",
        "lexical = language + terms + BM25 search; sqlite = chunk_rows of k hits.",
    ]
    rows = []
    for r in res:
        b, q = r["build"], r["query"]
        ms = q["ms"]
        rows.append([
            r["index"], q["vectors"], f"{b['real_vectors']}/{b['synthetic_vectors']}",
            *(f"{_ms(ms[name]['p50'])} / {_ms(ms[name]['p95'])}" for name in ("retrieve", "retrieve_dense",
                                                                                "embed_query", "faiss_k")),
            _ms(ms["faiss_candidates"]["p50"]), _ms(ms["lexical"]["p50"]), _ms(ms["sqlite_rows"]["p50"]),
            f"{q['loadavg_before'][0]:.2f}->{q['loadavg_after'][0]:.2f}", q.get("others_cores"),
        ])
    lines.append(_common.format_table(rows, ["index", "vectors", "real/synth", "retrieve", "dense", "embed",
                                             "faiss k", "faiss cand p50", "lexical p50", "sqlite p50",
                                             "load 1-min", "others' cores"]))
    lines.append("load 1-min: load average before -> after the query process (our own work included); others' "
                 "cores: CPU used meanwhile by every other process, in cores (0 = idle machine).")
    rows = []
    for r in res:
        b, q = r["build"], r["query"]
        disk = b["disk"]
        faiss_bytes = sum(v for k, v in disk.items() if k.endswith(".faiss"))
        rec = q["title_recall"]
        rows.append([
            r["index"], f"{b['build_s']:.1f}", f"{disk['total'] / 2**20:.1f}", f"{faiss_bytes / 2**20:.1f}",
            f"{b['peak_rss']['ru_maxrss_mib']:.0f}", f"{q['peak_rss']['ru_maxrss_mib']:.0f}",
            _recall(rec["retrieve"], b["synthetic_vectors"] > 0), _recall(rec["retrieve_dense"], b["synthetic_vectors"] > 0),
            f"{b['loadavg_before'][0]:.2f} / {b.get('others_cores')}" if not b.get("reused") else "-",
            ("(reused) " if b.get("reused") else "") + b["method"],
        ])
    lines.append("\nBuild and memory. build s excludes model loading (and, for the large indexes, embedding); disk = "
                 "whole index folder (SQLite holds texts and vectors too); RSS = process peak, model included.")
    lines.append(_common.format_table(rows, ["index", "build s", "disk MiB", "faiss MiB", "build RSS MiB",
                                             "query RSS MiB", "R@1 default*", "R@1 dense*", "load / others",
                                             "how built"]))
    lines.append("* title-to-own-article recall@1, a sanity check only (titles are in the embedded text); for indexes "
                 "with synthetic vectors, over the queries whose article has real vectors (n of them).")
    for r in res:
        b = r["build"]
        if "chunk_s_inside_add" in b:
            model = (f"embedding {b['embed_s_inside_add']:.1f} s" if "embed_s_inside_add" in b
                     else f"vector look-up {b['lookup_s_inside_add']:.1f} s")
            lines.append(f"{r['index']}: Index.add {b['build_s']:.1f} s for {b['chunks']} chunks: {model}, chunking "
                         f"{b['chunk_s_inside_add']:.1f} s, the rest (text analysis, SQLite, FAISS, persist) "
                         f"{b['other_s_inside_add']:.1f} s"
                         + (f"; build RSS includes the benchmark's vector look-up table ({b['lookup_table_mib']:.0f} MiB)"
                            if "lookup_table_mib" in b else ""))
        if b.get("synthetic"):
            sy = b["synthetic"]
            lines.append(f"{r['index']}: synthetic vectors: mean cosine to their source {sy['mean_cosine_to_source']}; "
                         f"mean cosine of random pairs {sy['mean_cosine_random_pairs_real']} (real) vs "
                         f"{sy['mean_cosine_random_pairs_synthetic']} (synthetic)")
    lines.append("")
    lines.append(payload["vectors_note"])
    for r in res:
        if not r["index"].startswith("large"):
            continue
        for name, label in (("retrieve", f"default ({r['query']['retriever']['mode']})"), ("retrieve_dense", "dense")):
            p50 = r["query"]["ms"][name]["p50"]
            verdict = "met" if p50 <= TARGET_P50_MS else "MISSED"
            lines.append(f"Target retrieve p50 <= {TARGET_P50_MS:.0f} ms at ~100k chunks, {r['index']} "
                         f"({r['query']['vectors']} vectors), {label}: {verdict} -- p50 {p50:.1f} ms "
                         f"(load average {r['query']['loadavg_before'][0]:.2f} before the run, others used "
                         f"{r['query'].get('others_cores')} cores)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
