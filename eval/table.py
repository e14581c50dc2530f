"""Print the README's retrieval table (markdown) from the JSON files of `rag eval` (--json or --report).

    python eval/table.py eval/reports/seeds/results.json eval/reports/piaf/results.json ...

Cells are R@1 / R@5 / MRR@10; the best of each column is in bold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    names = list(dict.fromkeys(r["name"] for run in runs for r in run["results"]))
    head = [f"{run['dataset']['name']} ({run['results'][0]['n']} q, {run['dataset']['articles']:,} docs)" for run in runs]
    cells: dict[tuple[str, int], tuple[float, float, float]] = {}
    for j, run in enumerate(runs):
        for r in run["results"]:
            m = r["metrics"]
            cells[r["name"], j] = (m["R@1"], m["R@5"], m["MRR@10"])
    best = {j: [max(cells[n, j][i] for n in names if (n, j) in cells) for i in range(3)] for j in range(len(runs))}
    print("| config | " + " | ".join(head) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for n in names:
        row = []
        for j in range(len(runs)):
            if (n, j) not in cells:
                row.append("-")
                continue
            row.append(" / ".join(f"**{v:.3f}**" if v == best[j][i] else f"{v:.3f}" for i, v in enumerate(cells[n, j])))
        print(f"| {n} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
