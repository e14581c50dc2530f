"""Retrieval quality on the folder backend and on Milvus Lite, from the same embedded chunks.

Not a timing benchmark: it measures R@5 and how often the two backends return the same
hits. PIAF's passages are embedded once into a folder index (the default e5 model); the
same records (chunks, vectors, terms, sentence vectors) are then written into a Milvus
Lite index, so any difference comes from the backends (FAISS vs Milvus FLAT, our BM25 vs
Milvus's BM25 over the same terms), not from embedding twice. Each question is embedded
once and given to both.

    python bench/backend_parity.py [--sample 100] [--work /tmp/rag-parity]

Needs ``../shared/data/piaf/piaf-v1.0.json`` and the ``milvus`` extra. Reads the folder's
store directly (a measuring script, not library code).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rag.config import Config
from rag.evaluation.datasets import load_squad
from rag.evaluation.runner import OUR_CONFIGS
from rag.index import ArticleRecord, Index
from rag.retriever import Retriever
from rag.types import Chunk

PIAF = Path(__file__).resolve().parents[2] / "shared" / "data" / "piaf" / "piaf-v1.0.json"


def copy_records(folder, target) -> int:
    """Write every article of ``folder`` into ``target`` with its stored chunks, vectors, terms
    and sentence vectors (no re-embedding); returns the chunks written."""
    store = folder.store
    records = []
    for art in store.iter_articles():
        rows = store._db.execute("SELECT id, position, start, end, terms FROM chunks WHERE article_id = ? "
                                 "ORDER BY position", (art.id,)).fetchall()
        vecs = store.vectors_for([r[0] for r in rows], folder.vectors_dim)
        chunks = [Chunk(art.id, p, s, e, art.text[s:e]) for _, p, s, e, _ in rows]
        sentences = [((s, e), v) for s, e, v in store.sentence_rows_within([(art.id, 0, len(art.text))], "title")[0]]
        records.append(ArticleRecord(art, chunks, np.stack([vecs[r[0]] for r in rows]) if rows else np.zeros((0, 1)),
                                     [(r[4] or "").split() for r in rows], store.article_language(art.id), sentences))
    n = 0
    for i in range(0, len(records), 100):
        n += len(target.write(records[i : i + 100]))
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sample", type=int, default=100)
    p.add_argument("--work", type=Path, default=Path("/tmp/rag-parity"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    ds = load_squad(PIAF, sample=args.sample, seed=0)
    args.work.mkdir(parents=True, exist_ok=True)
    config = Config()
    folder = Index.open_or_create(args.work / "piaf-folder", config.with_(index_dir=args.work / "piaf-folder"))
    folder.add(ds.articles)
    lite_path = args.work / "piaf.db"
    if Index.exists(lite_path):
        lite = Index.open(lite_path)
    else:
        lite = Index.create(lite_path, folder.config.with_(index_dir=lite_path))
        copy_records(folder, lite)
    lite._embedder = folder.embedder  # questions are embedded once, for both
    assert lite.counts() == folder.counts(), (lite.counts(), folder.counts())
    qvecs = [folder.embedder.embed_query(it.question) for it in ds.items]
    out = {"questions": len(ds.items), "articles": folder.counts()[0], "chunks": folder.counts()[1], "configs": {}}
    for name, opts in OUR_CONFIGS.items():
        found = {"folder": 0, "milvus-lite": 0}
        same = 0
        for it, qv in zip(ds.items, qvecs):
            hits = {}
            for label, ix in (("folder", folder), ("milvus-lite", lite)):
                hs = Retriever(ix, **opts).retrieve(it.question, k=5, query_vector=qv)
                hits[label] = [(h.article_id, h.start, h.end) for h in hs]
                found[label] += any(h.article_id in it.relevant for h in hs)
            same += hits["folder"] == hits["milvus-lite"]
        out["configs"][name] = {"R@5 folder": found["folder"] / len(ds.items),
                                "R@5 milvus-lite": found["milvus-lite"] / len(ds.items),
                                "same top-5": same / len(ds.items)}
        print(name, json.dumps(out["configs"][name]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    folder.close()
    lite.close()


if __name__ == "__main__":
    main()
