"""How often the sentence holding a gold answer holds its question's focus (rag.focus).

For every question of PIAF (French) and XQuAD (English over Spanish / German) that
:func:`rag.focus.question_focus` gives a focus, the sentence of the passage that holds
the gold answer span is checked with :meth:`Focus.holds` (recall: a strict focus that
misses refuses a right answer), and so are the passage's other sentences (the share that
hold it: how much the focus narrows the choice). Nothing is fitted here.

    python eval/focus_recall.py ../shared/data/piaf/piaf-v1.0.json \
        --xquad ../shared/data/xquad/xling_enQ_esCtx.jsonl ../shared/data/xquad/xling_enQ_deCtx.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.chunking import split_sentences  # noqa: E402
from rag.focus import question_focus  # noqa: E402


def squad_items(path: Path):
    for art in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                if qa.get("answers"):
                    yield qa["question"], para["context"], qa["answers"][0]["answer_start"], "fr"


def xquad_items(path: Path, lang: str):
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        yield r["question_en"], r["context"], r["answers"][0]["answer_start"], lang


def measure(items, show: int = 0) -> dict:
    held, total, others, others_held = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
    misses = defaultdict(list)
    for question, context, start, lang in items:
        focus = question_focus(question, lang)
        if focus is None:
            continue
        spans = split_sentences(context)
        gold = next(((s, e) for s, e in spans if s <= start < e), None)
        if gold is None:
            continue
        key = focus.kind + (" (measure)" if focus.kind == "unit" and focus.strict else "")
        total[key] += 1
        ok = focus.holds(context[gold[0]:gold[1]], question)
        held[key] += ok
        if not ok and len(misses[key]) < show:
            misses[key].append((question, context[gold[0]:gold[1]][:200]))
        for s, e in spans:
            if (s, e) != gold:
                others[key] += 1
                others_held[key] += focus.holds(context[s:e], question)
    out = {k: {"questions": total[k], "gold_sentence_holds": round(held[k] / total[k], 3),
               "other_sentences_hold": round(others_held[k] / others[k], 3) if others[k] else None}
           for k in sorted(total)}
    for k, ms in misses.items():
        out[k]["misses"] = ms
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("piaf", type=Path)
    p.add_argument("--xquad", type=Path, nargs="*", default=[])
    p.add_argument("--show", type=int, default=0, help="print this many misses per focus")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = {"piaf": measure(squad_items(args.piaf), args.show)}
    for x in args.xquad:
        lang = "es" if "esCtx" in x.name else "de" if "deCtx" in x.name else "xx"
        results[x.stem] = measure(xquad_items(x, lang), args.show)
    for name, res in results.items():
        print(name)
        for k, r in res.items():
            print(f"  {k:14} {r['questions']:4} questions: gold sentence holds {r['gold_sentence_holds']:.3f}, "
                  f"other sentences {r['other_sentences_hold']}")
            for q, s in r.get("misses", []):
                print(f"      MISS {q}\n           {s}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
