"""Answer quality on a gold set: accuracy, citation correctness, refusal precision/recall.

    python eval/answers.py                                   # seed gold set, extractive answers
    python eval/answers.py --llm openai:http://127.0.0.1:8080/v1#qwen   # the generative path too
    python eval/answers.py --corpus DIR --gold FILE.jsonl --json eval/results/answers.json

The corpus is indexed into a temporary folder (or --index DIR, reused).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rag  # noqa: E402
from rag.evaluation.calibrate import build_index  # noqa: E402
from rag.chat import Assistant  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.evaluation import load_gold, score_answers  # noqa: E402


def run(assistant: Assistant, items) -> tuple[dict, list]:
    t0 = time.perf_counter()
    answers = [assistant.ask(it.question) for it in items]
    rep = score_answers(items, answers)
    d = rep.to_dict()
    d["answerer"] = assistant.answerer_name
    d["seconds"] = round(time.perf_counter() - t0, 1)
    totals = sorted(a.timings_ms.get("total", 0.0) for a in answers)
    d["latency_ms_p50"] = totals[len(totals) // 2]
    d["latency_ms_p95"] = totals[min(len(totals) - 1, int(len(totals) * 0.95))]
    return d, answers


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=ROOT / "seeds", help="articles to index (files or a folder)")
    p.add_argument("--gold", type=Path, default=ROOT / "eval/gold/seeds.jsonl")
    p.add_argument("--index", type=Path, help="index folder to build or reuse (default: temporary)")
    p.add_argument("--llm", help="also evaluate the generative path: openai:BASE_URL#MODEL or llama-cpp:PATH")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--verbose", action="store_true", help="print every question")
    args = p.parse_args()

    items = load_gold(args.gold)
    path = args.index or Path(tempfile.mkdtemp(prefix="rag-eval-")) / "index"
    index = build_index([args.corpus], path, Config.from_env())
    retriever = rag.Retriever(index)
    runs = [run(Assistant(retriever), items)]
    if args.llm:
        from rag.llm import parse_llm_spec

        runs.append(run(Assistant(retriever, parse_llm_spec(args.llm)), items))

    print(f"gold: {args.gold} ({len(items)} questions: {sum(not i.unanswerable for i in items)} answerable, "
          f"{sum(i.unanswerable for i in items)} unanswerable)")
    print(f"{'answerer':<40} {'accuracy':>8} {'cit.ok':>7} {'tok.F1':>7} {'ref.P':>6} {'ref.R':>6} {'p50 ms':>7} {'p95 ms':>7}")
    for d, answers in runs:
        print(f"{d['answerer'][:40]:<40} {d['accuracy']:8.3f} {d['citation_correct']:7.3f} {d['token_f1']:7.3f} "
              f"{d['refusal_precision']:6.3f} {d['refusal_recall']:6.3f} {d['latency_ms_p50']:7.0f} {d['latency_ms_p95']:7.0f}")
        if args.verbose:
            for row in d["per_item"]:
                flag = "REFUSED" if row["refused"] else ("ok" if row.get("correct") else "WRONG" if not row["unanswerable"] else "ANSWERED")
                print(f"   [{flag:8}] {row['evidence_score']:.3f} {row['question']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([d for d, _ in runs], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
