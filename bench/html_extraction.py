"""HTML pages in: clutter kept, body sentences kept, metadata right, and ms per page.

Reads the saved news pages of ``tests/data/pages/`` (each ``NAME.html`` with its
``NAME.json``: the body sentences, the clutter strings that must not be indexed, the
expected title/author/date/site/url) and builds an article from each two ways: with
the standard-library parser alone, all of the page's text (``main_text=False``, what
``rag`` did before trafilatura), and with the main text (the default). Prints one line
per page and the totals; writes ``bench/results/html_extraction.json``.

    python bench/html_extraction.py [--repeat 5] [--pages DIR] [-v]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import _common  # noqa: F401  (sets the offline/OpenMP environment first)
from _common import format_table, loadavg, log, machine_info, write_result

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "tests" / "data" / "pages"
META = ("title", "author", "date", "site", "url")


def _norm(s: str | None) -> str:
    return " ".join((s or "").split()).casefold()


def score(article, expected: dict) -> dict:
    """What one article kept of a page's body and clutter, and which metadata it got right."""
    indexed = _norm(article.title + "\n" + article.text)
    got = {"title": article.title, "author": article.author, "date": article.date, "site": article.source,
           "url": article.url}
    return {
        "clutter_kept": [c for c in expected["clutter"] if _norm(c) in indexed],
        "body_lost": [b for b in expected["body"] if _norm(b) not in _norm(article.text)],
        "optional_kept": sum(_norm(o) in indexed for o in expected.get("optional", [])),
        "meta_wrong": {k: [got[k], expected[k]] for k in META if _norm(got[k]) != _norm(expected[k])},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=Path, default=PAGES, help="folder of NAME.html + NAME.json pairs")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per page and variant (median kept)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every clutter kept and sentence lost")
    args = ap.parse_args()

    from rag.articles import html_to_article

    pages = sorted(args.pages.glob("*.html"))
    if not pages:
        raise SystemExit(f"no .html pages in {args.pages}")
    html_to_article("<title>t</title><p>warm up the import of trafilatura</p>", origin="warm-up")
    load_before = loadavg()
    variants = {"stdlib (all text)": False, "trafilatura (main text)": True}
    results: dict[str, dict] = {}
    for name, main_text in variants.items():
        per_page, times = {}, []
        for path in pages:
            html = path.read_text(encoding="utf-8")
            expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                article = html_to_article(html, origin=str(path), main_text=main_text)
                runs.append(time.perf_counter() - t)
            ms = 1000 * statistics.median(runs)
            times.append(ms)
            per_page[path.stem] = {"ms": round(ms, 2), "bytes": len(html.encode()), "n_body": len(expected["body"]),
                                   "n_clutter": len(expected["clutter"]), **score(article, expected)}
        n_clutter = sum(p["n_clutter"] for p in per_page.values())
        n_body = sum(p["n_body"] for p in per_page.values())
        kept = sum(len(p["clutter_kept"]) for p in per_page.values())
        lost = sum(len(p["body_lost"]) for p in per_page.values())
        wrong = sum(len(p["meta_wrong"]) for p in per_page.values())
        known = {p.stem for p in pages if "known_failure" in json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))}
        results[name] = {
            "pages": per_page,
            "known_failures": sorted(known),
            "clutter_kept_outside_known_failures": sum(len(p["clutter_kept"]) for s, p in per_page.items() if s not in known),
            "clutter_kept": kept, "clutter_total": n_clutter,
            "body_recall": round((n_body - lost) / n_body, 4), "body_total": n_body,
            "meta_right": len(per_page) * len(META) - wrong, "meta_total": len(per_page) * len(META),
            "ms_per_page_median": round(statistics.median(times), 2), "ms_per_page_mean": round(statistics.fmean(times), 2),
        }
    rows = []
    for stem in results[next(iter(variants))]["pages"]:
        row = [stem]
        for name in variants:
            p = results[name]["pages"][stem]
            row += [f"{len(p['clutter_kept'])}/{p['n_clutter']}", f"{p['n_body'] - len(p['body_lost'])}/{p['n_body']}",
                    f"{len(META) - len(p['meta_wrong'])}/{len(META)}", f"{p['ms']:.1f}"]
        rows.append(row)
    header = ["page"] + [f"{h} ({'old' if not m else 'new'})" for m in variants.values()
                         for h in ("clutter", "body", "meta", "ms")]
    print(format_table(rows, header))
    print()
    for name, r in results.items():
        print(f"{name}: clutter kept {r['clutter_kept']}/{r['clutter_total']}, body recall "
              f"{100 * r['body_recall']:.1f}% of {r['body_total']} sentences, metadata {r['meta_right']}/"
              f"{r['meta_total']}, {r['ms_per_page_median']:.1f} ms/page (median; mean {r['ms_per_page_mean']:.1f}); "
              f"clutter kept outside the known failures ({', '.join(r['known_failures']) or 'none'}): "
              f"{r['clutter_kept_outside_known_failures']}")
        if args.verbose:
            for stem, p in r["pages"].items():
                for c in p["clutter_kept"]:
                    print(f"  {stem}: KEPT {c!r}")
                for b in p["body_lost"]:
                    print(f"  {stem}: LOST {b[:90]!r}")
                for k, (got, want) in p["meta_wrong"].items():
                    print(f"  {stem}: {k} {got!r} (expected {want!r})")
    out = write_result("html_extraction", {"pages_dir": str(args.pages), "repeat": args.repeat,
                                           "load_before": load_before, "load_after": loadavg(),
                                           "machine": machine_info(), "results": results})
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
