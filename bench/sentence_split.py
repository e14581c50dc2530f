"""Sentence lengths and splitter speed on scraped French news (OrangeSum), this tree against a git revision.

Reads the first ``--n`` non-empty OrangeSum articles. For each side, the article goes
through that side's ingestion (``rag.articles.article_from_record``: Unicode, control
characters and, in the new one, shortcode markup) and then that side's
``split_paragraphs`` + ``split_sentences``. Reported per side: the sentence length
distribution in characters (median, p95, p99, max, share over 400) and the splitter's
speed in characters per second, timed on the *same* texts (this tree's ingestion) for
both sides so that only the splitter differs (best of ``--repeat`` runs, taken in turns).

The baseline modules are loaded from ``git show REV:rag/<module>.py``, so the script
needs the repository's git history (default REV: ``main``).

``--show-heading-joins N`` also prints N random boundaries made by the glued-heading
rule (``desservisDes``), with context, for checking them by eye.

Run::

    PYTHONPATH=. .venv/bin/python bench/sentence_split.py [--n 2000] [--baseline main]

Writes ``bench/results/sentence_split.json``.
"""

from __future__ import annotations

import _common  # noqa: I001  (sets the environment before any heavy import)

import argparse
import gzip
import importlib.util
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rag import articles as new_articles
from rag import chunking as new_chunking

REPO = _common.BENCH_DIR.parent


def load_baseline(rev: str, module: str):
    """Import ``rag/<module>.py`` as it is at git revision ``rev``, under a private name."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:rag/{module}.py"],
                            check=True, capture_output=True, text=True).stdout
    name = f"_baseline_{module}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    exec(compile(source, f"{rev}:rag/{module}.py", "exec"), mod.__dict__)
    return mod


def read_records(path: Path, n: int) -> list[dict]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if (rec.get("article") or "").strip() and (rec.get("title") or "").strip():
                out.append(rec)
                if len(out) >= n:
                    break
    return out


def sentence_spans(chunking, text: str) -> list[tuple[int, int]]:
    return [sp for s, e in chunking.split_paragraphs(text) for sp in chunking.split_sentences(text, s, e)]


def length_stats(lengths: list[int]) -> dict:
    lengths = sorted(lengths)
    n = len(lengths)

    def pct(p: float) -> int:
        return lengths[min(n - 1, int(p * n))]

    return {"sentences": n, "median": statistics.median(lengths), "p95": pct(0.95), "p99": pct(0.99),
            "max": lengths[-1], "share_over_400": round(sum(x > 400 for x in lengths) / n, 4),
            "over_400": sum(x > 400 for x in lengths)}


def speeds(modules: dict, texts: list[str], repeat: int) -> dict[str, float]:
    """Chars/s of each module's splitter on ``texts``, best of ``repeat`` runs taken in turns.

    Taking the runs in turns spreads the load of a shared machine over both sides.
    """
    paragraphs = [(t, new_chunking.split_paragraphs(t)) for t in texts]
    chars = sum(e - s for _, spans in paragraphs for s, e in spans)
    best = dict.fromkeys(modules, float("inf"))
    for _ in range(repeat):
        for name, chunking in modules.items():
            split = chunking.split_sentences
            t0 = time.perf_counter()
            for t, spans in paragraphs:
                for s, e in spans:
                    split(t, s, e)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: chars / b for name, b in best.items()}


def heading_joins(text: str) -> list[int]:
    """Offsets where the new splitter starts a sentence right after a lower-case letter (glued heading)."""
    return [s for s, _ in sentence_spans(new_chunking, text) if s > 0 and text[s - 1].isalpha()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orangesum", type=Path, default=_common.ORANGESUM)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--baseline", default="main", help="git revision to compare with (default: main)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--show-heading-joins", type=int, default=0, metavar="N")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    old_articles = load_baseline(args.baseline, "articles")
    old_chunking = load_baseline(args.baseline, "chunking")
    records = read_records(args.orangesum, args.n)
    _common.log(f"{len(records)} articles")

    def ingest(mod, rec):
        return mod.article_from_record({"title": rec["title"], "article": rec["article"]}, origin="orangesum").text

    old_texts = [ingest(old_articles, r) for r in records]
    new_texts = [ingest(new_articles, r) for r in records]
    load_before = _common.loadavg()
    rates = speeds({"before": old_chunking, "after": new_chunking}, new_texts, args.repeat)
    sides = {}
    for side, chunking, texts in (("before", old_chunking, old_texts), ("after", new_chunking, new_texts)):
        lengths = [e - s for t in texts for s, e in sentence_spans(chunking, t)]
        sides[side] = {"splitter": chunking.SPLITTER, **length_stats(lengths), "chars_per_s": round(rates[side])}
    load_after = _common.loadavg()
    sides["after"]["speed_vs_before"] = round(sides["after"]["chars_per_s"] / sides["before"]["chars_per_s"], 3)
    changed = sum(a != b for a, b in zip(old_texts, new_texts))

    joins = [(i, s) for i, t in enumerate(new_texts) for s in heading_joins(t)]
    rows = [[side, v["splitter"], v["sentences"], v["median"], v["p95"], v["p99"], v["max"],
             f"{100 * v['share_over_400']:.2f}%", f"{v['chars_per_s']:,}"] for side, v in sides.items()]
    print(_common.format_table(rows, ["side", "splitter", "sentences", "median", "p95", "p99", "max",
                                      ">400 chars", "chars/s"]))
    print(f"\nspeed after/before: {sides['after']['speed_vs_before']}; articles changed by markup stripping: "
          f"{changed}; glued-heading boundaries: {len(joins)} in {len({i for i, _ in joins})} articles")
    sample = []
    if args.show_heading_joins:
        rng = random.Random(args.seed)
        for i, s in sorted(rng.sample(joins, min(args.show_heading_joins, len(joins)))):
            t = new_texts[i]
            sample.append(f"{t[max(0, s - 40):s]}|{t[s:s + 40]}".replace("\n", " "))
            print(f"  {sample[-1]}")
    payload = {"params": vars(args) | {"orangesum": str(args.orangesum)}, "articles": len(records),
               "articles_changed_by_markup_stripping": changed, "results": sides,
               "heading_joins": len(joins), "heading_join_sample": sample,
               "load_before": load_before, "load_after": load_after, "machine": _common.machine_info()}
    print(f"wrote {_common.write_result('sentence_split', payload)}")


if __name__ == "__main__":
    main()
