"""Build eval/gold/news_articles.jsonl, the corpus of the hand-made news gold set.

Stdlib only, deterministic. Reads the shared OrangeSum file and writes ~200 articles.

Selection rule
--------------
1. Read every article of orangesum_articles.jsonl.gz in file order.
2. Skip empty bodies, and any body identical to the body of an earlier line
   (the 165 empty + 2,193 duplicate lines of the file).
3. Keep bodies of 150 to 900 words (whitespace split): the "usable" pool.
4. Topical clusters, hand-picked by id (every id must be in the usable pool):
   several articles on one event, for "which articles" and near-miss questions.
5. A seeded random sample (random.Random(SEED).sample) of N_RANDOM further articles
   from the usable pool sorted by numeric id, cluster ids excluded.
6. Output: clusters first (in the order below), then the random sample sorted by numeric id.

Text is copied exactly (no cleaning). Licence: OrangeSum, CC BY-SA 4.0 (Eddine et al. 2020,
github Tixierae/OrangeSum); this derived file is shared under CC BY-SA 4.0 too.
"""
import gzip
import json
import os
import random
import re

SRC = "/work/shared/data/orangesum/orangesum_articles.jsonl.gz"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "news_articles.jsonl")
SEED = 2020
N_RANDOM = 165
MIN_WORDS, MAX_WORDS = 150, 900

CLUSTERS = {
    # storm Ciara, February 2020
    "tempete-ciara": ["18111", "18051", "2447", "8391", "17986", "17952"],
    # storm Eleanor, January 2018 (near-miss twin of Ciara: storms, Corsica fires, power cuts)
    "tempete-eleanor": ["31129", "31134", "9522", "31114", "31123"],
    # Lubrizol plant fire in Rouen, September 2019
    "lubrizol": ["21945", "21899", "21897", "21861", "21834", "1854"],
    # false arrest of Xavier Dupont de Ligonnes in Glasgow, October 2019
    "dupont-de-ligonnes": ["21560", "21515", "21458", "20389", "5355"],
    # Christchurch mosque attacks (2019) and the killer's sentencing (2020)
    "christchurch": ["26082", "35564", "35203", "35205"],
    # Strasbourg Christmas market attack, December 2018
    "strasbourg-chekatt": ["27954", "27969", "27906", "27755", "26304"],
    # death of Cedric Chouviat after a police arrest, 2020
    "chouviat": ["2738", "2364", "2525", "36663"],
}


def iso_date(raw):
    """ISO YYYY-MM-DD when the source gives it (all 36,152 lines do), else the raw string."""
    m = re.match(r"(\d{4}-\d{2}-\d{2})", raw or "")
    return m.group(1) if m else raw


def main():
    seen = set()
    pool = {}
    with gzip.open(SRC, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            body = r["article"]
            if not body.strip() or body in seen:
                continue
            seen.add(body)
            if MIN_WORDS <= len(body.split()) <= MAX_WORDS:
                pool[r["id"]] = r
    cluster_ids = [i for ids in CLUSTERS.values() for i in ids]
    missing = [i for i in cluster_ids if i not in pool]
    assert not missing, f"cluster ids not in usable pool: {missing}"
    assert len(set(cluster_ids)) == len(cluster_ids)
    rest = sorted((i for i in pool if i not in set(cluster_ids)), key=int)
    sample = sorted(random.Random(SEED).sample(rest, N_RANDOM), key=int)
    with open(OUT, "w", encoding="utf-8") as out:
        for i in cluster_ids + sample:
            r = pool[i]
            out.write(json.dumps({
                "id": f"orangesum-{r['id']}",
                "title": r["title"],
                "text": r["article"],
                "date": iso_date(r["date"]),
                "source": "Orange Actu",
            }, ensure_ascii=False) + "\n")
    print(f"usable pool {len(pool)}; wrote {len(cluster_ids)} cluster + {len(sample)} sampled "
          f"= {len(cluster_ids) + len(sample)} articles to {OUT}")


if __name__ == "__main__":
    main()
