"""The reader acceptance measure: does the *quoted* text hold the answer, for questions whose
passage was retrieved? On PIAF dev pages (never trained on) and XQuAD en->es / en->de (never
trained on), the default assistant side by side with the cosine-only answer stage, in one run.

    python eval/reader_eval.py [--xquad-sample 400] [--json eval/results/reader-eval.json]

"cosine" is the previous answer stage: the sentence with the best 0.75 sentence cosine +
0.25 chunk cosine + 0.15 lexical overlap, one quote. Refusal is off for both (this measures
which sentence is quoted, not whether to answer).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

D = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


class _CosineOnly:
    """The previous answer stage's order, as a reader: no learned model."""

    def __init__(self, reader):
        self._reader = reader

    def read(self, question, lang, cands, cross):
        from rag.reader.features import cosine_score, featurize
        import numpy as np

        p, _ = self._reader.read(question, lang, cands, cross)
        return p, np.where(p <= 0, -np.inf, cosine_score(featurize(question, lang, cands, cross)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/evalwork"), help="index cache (as rag eval --work)")
    ap.add_argument("--xquad-sample", type=int, default=400)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from rag.chat import Assistant
    from rag.config import AnswerConfig, Config
    from rag.evaluation.datasets import Dataset, load_squad, load_xquad
    from rag.evaluation import contains_answer
    from rag.evaluation.runner import build_or_reuse_index
    from rag.reader.train import _page, split_pages
    from rag.retriever import Retriever

    off = AnswerConfig(refusal_threshold=0.0, refusal_threshold_cross=0.0)
    piaf = load_squad(D / "piaf" / "piaf-v1.0.json")
    dev_pages = split_pages([_page(it) for it in piaf.items], 0.2, 0)  # the split `rag reader train` used
    sets = [("piaf-dev", piaf, [it for it in piaf.items if _page(it) in dev_pages])]
    for lang in ("es", "de"):
        ds = load_xquad(D / "xquad" / f"xling_enQ_{lang}Ctx.jsonl")
        items = list(ds.items)
        random.Random(0).shuffle(items)
        sets.append((f"xquad-en-{lang}", ds, items[: args.xquad_sample]))
    out = {}
    for name, ds, items in sets:
        index, _ = build_or_reuse_index(Dataset(ds.name, ds.articles, ds.items), args.work, Config())
        retriever = Retriever(index)
        default = Assistant(retriever, config=off)
        cosine = Assistant(retriever, config=replace(off, second_quote_ratio=2.0),
                           reader=_CosineOnly(default.reader))
        res = {"questions": 0, "default": 0, "default_one_quote": 0, "cosine": 0, "quotes": 0, "chars": []}
        t0 = time.perf_counter()
        for it in items:
            hits = retriever.retrieve(it.question, k=off.k)
            if not any(h.article_id in it.relevant for h in hits):
                continue
            a = default.ask(it.question)
            b = cosine.ask(it.question)
            res["questions"] += 1
            res["default"] += contains_answer(" ".join(c.quote for c in a.citations), it.answers)
            res["default_one_quote"] += bool(a.citations) and contains_answer(a.citations[0].quote, it.answers)
            res["cosine"] += contains_answer(" ".join(c.quote for c in b.citations), it.answers)
            res["quotes"] += len(a.citations)
            res["chars"].append(len(a.text))
        n = max(1, res["questions"])
        chars = sorted(res.pop("chars")) or [0]
        out[name] = {"questions": res["questions"], "default_quote_holds_answer": round(res["default"] / n, 4),
                     "default_first_quote_holds_answer": round(res["default_one_quote"] / n, 4),
                     "cosine_quote_holds_answer": round(res["cosine"] / n, 4),
                     "default_quotes_per_answer": round(res["quotes"] / n, 3),
                     "default_median_chars": chars[len(chars) // 2], "seconds": round(time.perf_counter() - t0, 1)}
        print(name, json.dumps(out[name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
