"""Calibrate the refusal and citation-verification thresholds on real data.

Refusal thresholds come from PIAF (French questions over French passages) and
XQuAD (English questions over Spanish and German passages): half of the pages are
left out of each corpus, so their questions are honestly unanswerable. The
verification threshold comes from the seed gold set's full-sentence answers.

    python eval/calibrate.py --piaf ../shared/data/piaf/piaf-v1.0.json \
        --xquad ../shared/data/xquad/xling_enQ_esCtx.jsonl ../shared/data/xquad/xling_enQ_deCtx.jsonl \
        --sample 150 --json eval/results/calibration.json

The seed gold set is not used for the refusal thresholds, so the seed evaluation
(eval/answers.py) stays a held-out check.
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
from rag.calibrate import answer_all, build_index, no_refusal_config, refusal_thresholds, verifier_threshold  # noqa: E402
from rag.chat import Assistant  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.datasets import load_squad, load_xquad  # noqa: E402
from rag.evaluation import load_gold  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--piaf", type=Path, default=ROOT.parent / "shared/data/piaf/piaf-v1.0.json")
    p.add_argument("--xquad", type=Path, nargs="*", default=[ROOT.parent / "shared/data/xquad/xling_enQ_esCtx.jsonl",
                                                              ROOT.parent / "shared/data/xquad/xling_enQ_deCtx.jsonl"])
    p.add_argument("--gold", type=Path, default=ROOT / "eval/gold/seeds.jsonl")
    p.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    p.add_argument("--sample", type=int, default=150, help="questions per data set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, help="folder for the indexes (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--verify-only", action="store_true", help="only the verification thresholds (fast)")
    args = p.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="rag-calibrate-"))
    config = Config.from_env()
    runs = []
    t0 = time.perf_counter()
    sets = [] if args.verify_only else [load_squad(args.piaf, sample=args.sample, seed=args.seed, holdout=0.5, name="piaf")]
    sets += [] if args.verify_only else [load_xquad(x, sample=args.sample, seed=args.seed, holdout=0.5) for x in args.xquad]
    per_set = {}
    for ds in sets:
        print(f"{ds.name}: indexing {len(ds.articles)} passages, {len(ds.items)} questions "
              f"({sum(i.unanswerable for i in ds.items)} unanswerable)", file=sys.stderr)
        index = build_index(ds.articles, work / ds.name, config)
        assistant = Assistant(rag.Retriever(index), config=no_refusal_config())
        answers = answer_all(assistant, ds.items)
        runs += list(zip(ds.items, answers))
        per_set[ds.name] = refusal_thresholds(list(zip(ds.items, answers)))
        index.close()
    refusal = refusal_thresholds(runs) if runs else {"same": {"threshold": None}, "cross": {"threshold": None}}

    seed_index = build_index([args.seeds], work / "seeds", config)
    verify = verifier_threshold(seed_index, load_gold(args.gold))
    seed_index.close()

    result = {"refusal": refusal, "refusal_per_set": per_set, "verify": verify, "sample": args.sample,
              "seed": args.seed, "seconds": round(time.perf_counter() - t0, 1), "embedder": config.embedder}
    for group in ("same", "cross"):
        r = refusal[group]
        if r.get("threshold") is None:
            print(f"refusal ({group}-language): not enough data ({r})")
            continue
        at = r["at_threshold"]
        print(f"refusal threshold ({group}-language): {r['threshold']:.4f}  answerable kept {at['answerable_kept']:.3f}, "
              f"unanswerable refused {at['unanswerable_refused']:.3f}, refusal precision {at['refusal_precision']:.3f} "
              f"(n={r['answerable']}+{r['unanswerable']})")
        for row in r["table"]:
            print(f"   t={row['threshold']:.3f} kept={row['answerable_kept']:.3f} refused={row['unanswerable_refused']:.3f} "
                  f"bal.acc={row['balanced_accuracy']:.3f}")
    for group, v in verify.items():
        if v.get("threshold") is None:
            print(f"verify ({group}-language): not enough data ({v})")
            continue
        at = v["at_threshold"]
        print(f"verify threshold ({group}-language): {v['threshold']:.4f}  supported kept {at['answerable_kept']:.3f}, "
              f"unsupported rejected {at['unanswerable_refused']:.3f} (n={v['positives']}+{v['negatives']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
