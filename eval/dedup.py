"""Syndicated copies on OrangeSum: how many near-duplicates the grouping finds, how fast, and
(with the hand-checked verdicts) how precise it is.

    python eval/dedup.py [--orangesum FILE] [--json eval/results/dedup-orangesum.json]
                         [--verdicts eval/gold/dedup_orangesum_check.jsonl] [--show N]

Every article goes through the path an ingest takes (:class:`rag.store.Store.write` in
batches of 64, sketches computed outside the lock, no chunks or vectors), in file order.
Then, from the store's stories:

- exact duplicates: articles whose normalized body (:func:`rag.dedup.normalized_words`)
  equals an earlier one's, and the pairs they make; the raw-text count too;
- pairs found: every two articles of one story; near-duplicate pairs are those whose
  normalized bodies differ;
- a recall check: pairs at shingle Jaccard >= the threshold found by a looser LSH
  (32 bands of 4 rows, verified exactly) that ended in two different stories;
- a random sample (seed 0) of 50 near-duplicate pairs, to be read by a person: ``--show``
  prints them; ``--verdicts`` names the file of verdicts (one JSON line per pair: ``a``,
  ``b``, ``same_story`` true/false, ``note``) from which the precision is computed.

The verdicts in ``eval/gold/dedup_orangesum_check.jsonl`` were given by reading both texts
of each pair: ``same_story`` when both report the same news and one is an edited version
of the other (a lead added, a paragraph cut, a correction, figures updated by a later
version of the dispatch); not when one reports a later development (a rewrite for other
news) or when they only share passages. OrangeSum is one site (Orange Actu): its copies
are versions of agency dispatches, and its items have no source field.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import itertools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
ORANGESUM = ROOT.parent / "shared" / "data" / "orangesum" / "orangesum_articles.jsonl.gz"
SAMPLE, SEED = 50, 0


def read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def group(rows: list[dict], work: Path) -> tuple[dict, dict]:
    """Ingest ``rows`` into a store at ``work``; returns (timings, the store's stories)."""
    from rag import dedup
    from rag.store import Store
    from rag.types import Article

    store = Store(work / "store.sqlite")
    t_sketch = t_write = 0.0
    for i in range(0, len(rows), 64):
        batch = [Article(id=str(r["id"]), title=r.get("title") or "", text=r.get("article") or "",
                         date=r.get("date"), heading=r.get("heading")) for r in rows[i : i + 64]]
        t = time.perf_counter()
        sketches = {a.id: dedup.Sketch.of(a.title, a.text) for a in batch}
        t_sketch += time.perf_counter() - t
        t = time.perf_counter()
        store.write([(a, [], []) for a in batch], "2020-01-01T00:00:00+00:00", sketches=sketches)
        t_write += time.perf_counter() - t
    db = store._db
    stories = {aid: (story, matched, sim) for aid, story, matched, sim in
               db.execute("SELECT article_id, story, matched, similarity FROM stories ORDER BY seq")}
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(p.stat().st_size for p in work.iterdir())
    tables = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat WHERE name IN "
                             "('stories', 'stories_story', 'story_keys', 'story_keys_seq', "
                             "'sqlite_autoindex_stories_1') GROUP BY name"))
    keys = db.execute("SELECT count(*) FROM story_keys").fetchone()[0]
    store.close()
    return {"sketch_s": round(t_sketch, 1), "write_and_group_s": round(t_write, 1),
            "store_bytes": size, "story_tables_bytes": sum(tables.values()), "band_rows": keys}, stories


def loose_pairs(rows: list[dict], words: dict[str, list[str]]) -> set[tuple[str, str]]:
    """Pairs of long bodies at Jaccard >= THRESHOLD among the candidates of a looser LSH (32 x 4)."""
    from rag import dedup

    ids = [str(r["id"]) for r in rows if len(words[str(r["id"])]) >= dedup.MIN_WORDS]
    sh = {i: dedup.shingles(words[i]) for i in ids}
    sig = {i: dedup.signature(sh[i]) for i in ids}
    found = set()
    for band in range(32):
        buckets = collections.defaultdict(list)
        for i in ids:
            buckets[sig[i][band * 4 : (band + 1) * 4].tobytes()].append(i)
        for members in buckets.values():
            for a, b in itertools.combinations(members, 2):
                if (a, b) not in found and dedup.jaccard(sh[a], sh[b]) >= dedup.THRESHOLD:
                    found.add((a, b))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orangesum", type=Path, default=ORANGESUM)
    ap.add_argument("--json", type=Path, default=ROOT / "eval" / "results" / "dedup-orangesum.json")
    ap.add_argument("--verdicts", type=Path, default=ROOT / "eval" / "gold" / "dedup_orangesum_check.jsonl")
    ap.add_argument("--show", type=int, default=0, help="print the first N sampled pairs in full, to check them")
    ap.add_argument("--no-recall", action="store_true", help="skip the looser-LSH recall check (a minute)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from rag import dedup

    rows = read(args.orangesum)
    by_id = {str(r["id"]): r for r in rows}
    assert len(by_id) == len(rows), "OrangeSum ids are unique"
    words = {str(r["id"]): dedup.normalized_words(r.get("article")) for r in rows}

    # Exact duplicates, by normalized body and by raw text (empty bodies are nobody's copy).
    def dup_stats(key) -> dict:
        seen = collections.Counter(k for r in rows if (k := key(r)))
        return {"articles": sum(n - 1 for n in seen.values()), "pairs": sum(n * (n - 1) // 2 for n in seen.values())}

    exact = {"normalized_body": dup_stats(lambda r: " ".join(words[str(r["id"])])),
             "raw_body": dup_stats(lambda r: r["article"] if (r.get("article") or "").strip() else "")}

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        timing, stories = group(rows, Path(tmp))
        timing["total_s"] = round(time.perf_counter() - t0, 1)
    members = collections.defaultdict(list)
    for aid, (story, _, _) in stories.items():
        members[story].append(aid)
    groups = [m for m in members.values() if len(m) > 1]
    pairs = [tuple(p) for g in groups for p in itertools.combinations(g, 2)]
    near = [p for p in pairs if words[p[0]] != words[p[1]]]
    links = [(aid, m, s) for aid, (_, m, s) in stories.items() if m is not None]
    near_links = [x for x in links if words[x[0]] != words[x[1]]]
    short_groups = sum(1 for g in groups if len(words[g[0]]) < dedup.MIN_WORDS)
    story_of = {aid: v[0] for aid, v in stories.items()}
    by_body = collections.defaultdict(list)
    for aid, w in words.items():
        if w:
            by_body[" ".join(w)].append(aid)
    exact_split = [p for m in by_body.values() for p in itertools.combinations(m, 2) if story_of[p[0]] != story_of[p[1]]]

    result = {
        "data": str(args.orangesum.name), "articles": len(rows),
        "empty_bodies": sum(1 for r in rows if not (r.get("article") or "").strip()),
        "short_bodies": sum(1 for w in words.values() if 0 < len(w) < dedup.MIN_WORDS),
        "settings": dedup.SETTINGS,
        "exact_duplicates": exact,
        "stories": len(members), "groups": len(groups), "groups_of_short_bodies": short_groups,
        "articles_in_groups": sum(len(g) for g in groups), "largest_group": max((len(g) for g in groups), default=0),
        "group_sizes": dict(sorted(collections.Counter(len(g) for g in groups).items())),
        "pairs_found": len(pairs), "near_duplicate_pairs_found": len(near),
        "groups_with_near_duplicates": sum(1 for g in groups if len({" ".join(words[a]) for a in g}) > 1),
        "exact_pairs_not_grouped": {"pairs": len(exact_split), "short_bodies": sum(
            len(words[a]) < dedup.MIN_WORDS for a, _ in exact_split)},
        "links": len(links), "near_duplicate_links": len(near_links),
        "near_link_similarity": dict(sorted(collections.Counter(
            f"{int(s * 20) / 20:.2f}" for _, _, s in near_links).items())),
        "time": timing,
    }
    if not args.no_recall:
        t = time.perf_counter()
        loose = loose_pairs(rows, words)
        split = [p for p in loose if stories[p[0]][0] != stories[p[1]][0]]
        result["recall_check"] = {"pairs_at_threshold_looser_lsh": len(loose), "in_different_stories": len(split),
                                  "examples": [list(p) for p in sorted(split)[:10]],
                                  "seconds": round(time.perf_counter() - t, 1)}

    rng = random.Random(SEED)
    sample = sorted(near) if len(near) <= SAMPLE else rng.sample(sorted(near), SAMPLE)
    result["sample"] = [{"a": a, "b": b, "jaccard": round(dedup.jaccard(dedup.shingles(words[a]),
                                                                        dedup.shingles(words[b])), 3)}
                        for a, b in sample]
    if args.verdicts.is_file():
        verdicts = {(v["a"], v["b"]): v for v in map(json.loads, args.verdicts.read_text(encoding="utf-8").splitlines())
                    if v}
        judged = [verdicts.get((s["a"], s["b"])) for s in result["sample"]]
        if all(judged):
            same = sum(bool(v["same_story"]) for v in judged)
            result["hand_check"] = {"file": str(args.verdicts.relative_to(ROOT)), "pairs": len(judged),
                                    "same_story": same, "precision": round(same / len(judged), 4)}
        else:
            result["hand_check"] = {"missing_verdicts": sum(v is None for v in judged)}

    for s in result["sample"][: args.show]:
        a, b = by_id[s["a"]], by_id[s["b"]]
        print(f"\n===== {s['a']} | {s['b']}  J={s['jaccard']}")
        for r in (a, b):
            print(f"--- {r['id']} {r.get('date')} « {r.get('title')} »\n{r.get('article')}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("sample", "settings")}, indent=1,
                     ensure_ascii=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
