"""Ingestion speed: ``Index.add`` chunks/s with sentence vectors (embedded apart vs pooled), and chunking ms/chunk.

Variants, each in its own fresh process so that its peak RSS is its own:

- ``add-apart``: ``Index.add`` with sentence vectors embedded apart, each sentence with
  its title (the default, ``pool_sentences=False``);
- ``add-pooled``: the same with ``pool_sentences=True``: each sentence's vector is
  mean-pooled from its chunk's forward pass, one pass for both;
- ``add-nosent``: ``embed_sentences=False``: chunks only (the ceiling);
- ``chunking``: ``Chunker(size=256, overlap=32).chunk_many`` over whole OrangeSum articles
  (batches of 64, as ``Index.add`` commits), counting tokens with the e5 embedder's
  ``count_tokens`` (exact word-cache counts, ``rag.embedding.tokens``);
- ``chunking-tokenizer``: the same, counting through the whole tokenizer (as before).

The ``add-*`` variants index the passages of ``embed_throughput.py`` (OrangeSum text cut into
~90-token pieces, titled by their first words so the embedded chunk is the passage) with
chunk size 256, batch 32, FAISS flat; the model is loaded and one batch embedded before the
clock starts. The time spent inside the embedder and the chunker is reported apart.

Run (a few minutes at the defaults on 2 idle cores)::

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE \\
        .venv/bin/python bench/ingest_throughput.py [--n 600] [--chunk-articles 2000] [--variants add-apart,chunking]

Writes ``bench/results/ingest_throughput.json``.
"""

from __future__ import annotations

import _common  # noqa: I001  (sets the environment before any heavy import)

import argparse
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import MODEL_CACHE, ORANGESUM, Stopwatch, log

NAME = "ingest_throughput"
TARGET_CHUNKS_PER_S = 35.0  # Index.add with sentence vectors, 2 idle cores (issue 11)
TARGET_MS_PER_CHUNK = 0.3  # chunking
DEFAULT_VARIANTS = "add-apart,add-pooled,add-nosent,chunking,chunking-tokenizer"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orangesum", type=Path, default=ORANGESUM, help="OrangeSum articles (.jsonl.gz)")
    p.add_argument("--n", type=int, default=600, help="passages for the add-* variants (default 600)")
    p.add_argument("--chunk-articles", type=int, default=2000, help="articles for the chunking variants (default 2000)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--batch", type=int, default=32, help="embedding batch size (default 32)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
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


# -- variants (each runs in its own process) --------------------------------------


def run_add(passages: list[dict], variant: str, batch: int, threads: int) -> dict:
    import rag
    from rag.config import Config
    from embed_throughput import _title_of

    articles = [rag.Article(id=f"p{i:05d}", title=_title_of(p["text"]), text=p["text"], source="orangesum")
                for i, p in enumerate(passages)]
    texts = [p["text"] for p in passages]
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-ingest-"))
    try:
        cfg = Config(index_dir=tmp / "index", embedder="e5-small", cache_dir=MODEL_CACHE, faiss_index="flat",
                     chunk_size=256, chunk_overlap=32, batch_size=batch, threads=threads,
                     embed_sentences=variant != "add-nosent", pool_sentences=variant == "add-pooled")
        with Stopwatch() as load:
            index = rag.Index.create(tmp / "index", cfg)
            emb = index.embedder
            emb.warm_up()
            _ = index.chunker
        emb.embed_passages(texts[:batch])  # warm-up batch, not timed
        spent = _time_inside(index)
        with Stopwatch() as sw:
            report = index.add(articles)
        chunks = report.chunks_added
        n_sentences = index.store.sentence_count()
        size = sum(p.stat().st_size for p in (tmp / "index").iterdir() if p.is_file())
        index.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "batch_size": batch, "threads": threads, "load_s": round(load.wall, 2),
        "config": {"faiss_index": "flat", "chunk_size": 256, "chunk_overlap": 32, "commit_every": cfg.commit_every,
                   "embed_sentences": cfg.embed_sentences, "pool_sentences": cfg.pool_sentences},
        "articles": len(articles), "chunks": chunks, "sentence_vectors": n_sentences,
        "embed_s_inside_add": round(spent["embed_s"], 3),
        "chunk_s_inside_add": round(spent["chunk_s"], 3),
        "other_s_inside_add": round(sw.wall - spent["embed_s"] - spent["chunk_s"], 3),
        "index_bytes": size,
        **_rates(chunks, sw),
    }


def _time_inside(index) -> dict:
    """Wrap the embedder's passage methods and the chunker to total their time inside ``Index.add``
    (the outermost call only: the base class's ``embed_passages_with_spans`` calls ``embed_passages``)."""
    spent = {"embed_s": 0.0, "chunk_s": 0.0}
    emb, chunker = index.embedder, index.chunker
    depth = [0]

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[key] += time.perf_counter() - t0
        return wrapper

    emb.embed_passages = timed(emb.embed_passages, "embed_s")
    emb.embed_passages_with_spans = timed(emb.embed_passages_with_spans, "embed_s")
    chunker.chunk_many = timed(chunker.chunk_many, "chunk_s")
    return spent


def run_chunking(args, variant: str) -> dict:
    from rag.articles import read_articles
    from rag.chunking import Chunker
    from rag.embedding import get_embedder
    from rag.types import Article

    emb = get_embedder("e5-small", cache_dir=MODEL_CACHE, threads=args.threads)
    emb.warm_up()
    count = emb._count_slow if variant == "chunking-tokenizer" else emb.count_tokens
    articles = [a for a in itertools.islice(read_articles([args.orangesum]), args.chunk_articles) if isinstance(a, Article)]
    calls = {"texts": 0, "chars": 0, "s": 0.0}

    def counted(texts):
        t0 = time.perf_counter()
        out = count(texts)
        calls["s"] += time.perf_counter() - t0
        calls["texts"] += len(texts)
        calls["chars"] += sum(map(len, texts))
        return out

    chunker = Chunker(counted, size=256, overlap=32)
    chunks = 0
    with Stopwatch() as sw:  # a cold word cache, as for a first ingest
        for i in range(0, len(articles), 64):
            chunks += sum(map(len, chunker.chunk_many(articles[i : i + 64])))
    return {"articles": len(articles), "article_chars": sum(len(a.text) for a in articles), "chunks": chunks,
            "chunk_size": 256, "chunk_overlap": 32, "counter": "whole tokenizer" if count == emb._count_slow
            else type(getattr(emb, "_counter", None)).__name__,
            "token_count_s": round(calls["s"], 3), "counted_texts": calls["texts"], "counted_chars": calls["chars"],
            "n": chunks, "seconds": round(sw.wall, 3), "cpu_seconds": round(sw.cpu, 3),
            "ms_per_chunk": round(1000 * sw.wall / max(chunks, 1), 3)}


def _rates(n: int, sw: Stopwatch) -> dict:
    return {"n": n, "seconds": round(sw.wall, 3), "cpu_seconds": round(sw.cpu, 3),
            "chunks_per_s": round(n / sw.wall, 2), "chunks_per_cpu_s": round(n / sw.cpu, 2) if sw.cpu else None}


def child(args) -> None:
    v = args.variant
    started = _common.loadavg()
    if v.startswith("add-"):
        if v not in ("add-apart", "add-pooled", "add-nosent"):
            raise SystemExit(f"unknown variant {v!r}")
        data = json.loads(args.passages.read_text(encoding="utf-8"))
        out = run_add(data["passages"], v, args.batch, args.threads)
    elif v in ("chunking", "chunking-tokenizer"):
        out = run_chunking(args, v)
    else:
        raise SystemExit(f"unknown variant {v!r}")
    out.update(variant=v, peak_rss=_common.peak_rss_mib(), loadavg_start=started, loadavg_end=_common.loadavg())
    args.result.write_text(json.dumps(out), encoding="utf-8")


# -- driver -----------------------------------------------------------------------


def passages(args, here: Path) -> tuple[Path, dict]:
    """The passages of embed_throughput.py (~90 tokens, cut once and cached), and their description."""
    import embed_throughput

    et = embed_throughput.parse_args(["--orangesum", str(args.orangesum), "--n", str(args.n)])
    cache = embed_throughput.passages_file(et)
    if not cache.exists():
        log(f"cutting {args.n} passages from {args.orangesum}")
        data = _common.run_child(here.parent / "embed_throughput.py", [
            "--variant", "prepare", "--orangesum", str(args.orangesum), "--n", str(args.n),
            "--size", str(et.size), "--min-fill", str(et.min_fill)])
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    meta = {k: v for k, v in json.loads(cache.read_text(encoding="utf-8")).items() if k != "passages"}
    return cache, meta


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.variant:
        child(args)
        return
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    here = Path(__file__).resolve()
    load_start = _common.loadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    cache, meta = passages(args, here) if any(v.startswith("add-") for v in variants) else (None, None)

    runs = []
    for rep in range(args.repeat):
        for v in variants:
            settled = _common.settle(args.quiet_load, args.settle)
            before = _common.loadavg()
            log(f"{v} (run {rep + 1}/{args.repeat}), load average {before}")
            child_args = ["--variant", v, "--threads", str(args.threads), "--batch", str(args.batch),
                          "--orangesum", str(args.orangesum), "--chunk-articles", str(args.chunk_articles)]
            if cache is not None:
                child_args += ["--passages", str(cache)]
            r = _common.run_child(here, child_args)
            r.update(run=rep + 1, loadavg_before=before, loadavg_after=_common.loadavg(), settle=settled)
            log(f"  {r['seconds']} s" + (f", {r['chunks_per_s']} chunks/s" if "chunks_per_s" in r else
                                          f", {r['ms_per_chunk']} ms/chunk"))
            runs.append(r)

    payload = {
        "benchmark": NAME,
        "description": __doc__.split("\n\n")[0],
        "started": started,
        "machine": _common.machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": _common.loadavg(),
        "parameters": {"orangesum": str(args.orangesum), "n": args.n, "chunk_articles": args.chunk_articles,
                       "threads": args.threads, "batch": args.batch, "variants": variants, "repeat": args.repeat,
                       "settle_s": args.settle, "quiet_load": args.quiet_load,
                       "warm_up": "model loaded and one batch embedded before timing (add-*); model loaded (chunking)"},
        "passages": meta,
        "target": {"index_add_chunks_per_s": TARGET_CHUNKS_PER_S, "chunking_ms_per_chunk": TARGET_MS_PER_CHUNK,
                   "on": "2 idle cores"},
        "runs": runs,
    }
    path = _common.write_result(args.out, payload)
    print(render(payload))
    print(f"\nJSON: {path}")


def render(payload: dict) -> str:
    m = payload["machine"]
    lines = [f"Ingestion: {m['cpu_model']}, {m['nproc']} CPUs; load average at start {payload['loadavg_start']}, "
             f"end {payload['loadavg_end']}", ""]
    adds = [r for r in payload["runs"] if r["variant"].startswith("add-")]
    if adds:
        p = payload["passages"]
        lines.append(f"Index.add of {p['n']} OrangeSum passages (mean {p['tokens_mean']} e5 tokens), chunk size 256, "
                     f"batch {payload['parameters']['batch']}, {payload['parameters']['threads']} threads")
        rows = [[r["variant"] + (f" #{r['run']}" if payload["parameters"]["repeat"] > 1 else ""), r["chunks"],
                 r["sentence_vectors"], f"{r['seconds']:.1f}", f"{r['chunks_per_s']:.1f}",
                 f"{r['embed_s_inside_add']:.1f}", f"{r['chunk_s_inside_add']:.2f}", f"{r['other_s_inside_add']:.1f}",
                 f"{r['index_bytes'] / 2**20:.1f}", f"{r['loadavg_before'][0]:.2f}", r.get("others_cores")]
                for r in adds]
        lines.append(_common.format_table(rows, ["variant", "chunks", "sentences", "seconds", "chunks/s", "embed s",
                                                 "chunk s", "other s", "MiB", "load 1-min", "others' cores"]))
    chunking = [r for r in payload["runs"] if r["variant"].startswith("chunking")]
    if chunking:
        lines.append("")
        lines.append("Chunker(256, 32).chunk_many over whole OrangeSum articles, 64 at a time")
        rows = [[r["variant"], r["counter"], r["articles"], r["chunks"], f"{r['seconds']:.2f}",
                 f"{r['token_count_s']:.2f}", f"{r['ms_per_chunk']:.3f}", f"{r['loadavg_before'][0]:.2f}",
                 r.get("others_cores")] for r in chunking]
        lines.append(_common.format_table(rows, ["variant", "token counts", "articles", "chunks", "seconds",
                                                 "counting s", "ms/chunk", "load 1-min", "others' cores"]))
    lines.append("others' cores: CPU used meanwhile by every other process (0 = idle machine).")
    with_sent = [r for r in adds if r["variant"] != "add-nosent"]
    if with_sent:
        best = max(with_sent, key=lambda r: r["chunks_per_s"])
        lines.append(f"\nTarget Index.add >= {TARGET_CHUNKS_PER_S:.0f} chunks/s with sentence vectors: "
                     f"{'met' if best['chunks_per_s'] >= TARGET_CHUNKS_PER_S else 'MISSED'} -- best "
                     f"{best['chunks_per_s']:.1f} ({best['variant']}, others used {best.get('others_cores')} cores)")
    ours = [r for r in chunking if r["variant"] == "chunking"]
    if ours:
        ms = statistics.median(r["ms_per_chunk"] for r in ours)
        lines.append(f"Target chunking <= {TARGET_MS_PER_CHUNK} ms/chunk: "
                     f"{'met' if ms <= TARGET_MS_PER_CHUNK else 'MISSED'} -- median {ms:.3f} ms/chunk")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
