"""Warm answer latency with the reader: ``Assistant.ask`` end to end (retrieval included).

Indexes the news gold set's 200 OrangeSum articles (once, cached under bench/.cache),
warms the model, then asks every question of ``eval/gold/news.jsonl`` (follow-ups
with their history) and reports p50/p95 of the total and of each stage, with the
machine's load. Targets (reader issue): p50 <= 300 ms, p95 <= 800 ms on 2 idle cores.

    python bench/answer_latency.py [--repeat 2] [--no-cross]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import _common  # noqa: F401  (sets the offline/OpenMP environment first)
from _common import CACHE_DIR, format_table, loadavg, log, machine_info, percentiles_ms, settle, write_result

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "gold"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="passes over the questions (default 2)")
    ap.add_argument("--no-cross", action="store_true", help="the feature reader alone (no cross-encoder)")
    ap.add_argument("--index", type=Path, help="an index of eval/gold/news_articles.jsonl to reuse "
                                               "(default: built once under bench/.cache)")
    args = ap.parse_args()

    import rag
    from rag.chat import Assistant
    from rag.config import Config
    from rag.reader.model import AnswerReader, default_reader

    path = args.index or CACHE_DIR / "news-gold-index"
    cfg = Config(index_dir=path)
    index = rag.Index.open_or_create(path, cfg)
    t = time.perf_counter()
    index.add([GOLD / "news_articles.jsonl"])
    log(f"index ready in {time.perf_counter() - t:.1f} s: {index.store.counts()}")
    retriever = rag.Retriever(index)
    reader = AnswerReader(default_reader()) if args.no_cross else None
    assistant = Assistant(retriever, reader=reader)
    items = [json.loads(line) for line in (GOLD / "news.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    for it in items[:5]:  # warm-up: model, reader, caches
        assistant.ask(it["question"])
    quiet = settle(1.0, 120)
    load_before = loadavg()
    totals, stages = [], {}
    for _ in range(args.repeat):
        for it in items:
            history = [(q, "") for q in it.get("history") or []]
            t = time.perf_counter()
            a = assistant.ask(it["question"], history=history)
            totals.append(time.perf_counter() - t)
            for k, v in a.timings_ms.items():
                stages.setdefault(k, []).append(v / 1000)
    load_after = loadavg()
    total = percentiles_ms(totals)
    rows = [["total (wall, ask)", total["p50"], total["p95"], total["n"]]]
    rows += [[k, percentiles_ms(v)["p50"], percentiles_ms(v)["p95"], len(v)] for k, v in stages.items() if k != "total"]
    print(format_table(rows, ["stage", "p50 ms", "p95 ms", "n"]))
    print(f"load average before {load_before}, after {load_after}; cross-encoder: {not args.no_cross}")
    verdict = {"p50_target_ms": 300, "p95_target_ms": 800, "p50_met": total["p50"] <= 300, "p95_met": total["p95"] <= 800}
    print(json.dumps(verdict))
    write_result("answer_latency" + ("-features-only" if args.no_cross else ""), {
        "machine": machine_info(), "load_before": load_before, "load_after": load_after, "settle": quiet,
        "questions": len(items), "repeat": args.repeat, "cross_encoder": not args.no_cross,
        "total_ms": total, "stages_ms": {k: percentiles_ms(v) for k, v in stages.items()},
        "median_answer_s": statistics.median(totals), **verdict})


if __name__ == "__main__":
    main()
