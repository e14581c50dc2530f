"""Ingestion on Ray (rag.index.distributed) stores what the plain path stores.

The Ray test starts a local two-CPU Ray (about 10-30 s) and is slow-marked; it is skipped
when the ``distributed`` extra is absent. The shard encoding and the install hint are
checked without Ray.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rag
from rag.errors import ConfigError
from rag.index import Index
from rag.index.distributed import RayOptions, decode, encode

ROOT = Path(__file__).resolve().parent.parent
NEWS = ROOT / "eval" / "gold" / "news_articles.jsonl"
HAS_RAY = bool(importlib.util.find_spec("ray"))
NO_RAY = "Ray Data is not installed (pip install 'rag-news[distributed]')"


def write_articles(path: Path, n: int) -> list[str]:
    rows = [json.loads(line) for line in NEWS.read_text(encoding="utf-8").splitlines()[:n]]
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "title": r["title"].strip(), "text": r["text"][:1500],
                                "date": r.get("date"), "source": r.get("source")}, ensure_ascii=False) + "\n")
    return [r["id"] for r in rows]


def everything(index) -> dict:
    """Every stored chunk (id -> its fields and vector) and every article's sentence vectors."""
    n = index.counts()[1]
    ids, _ = index.dense_search(index.embedder.embed_query("tempête"), n)
    assert len(ids) == n
    rows, vecs = index.chunk_rows(ids), index.chunk_vectors(ids)
    chunks = {c: ((r.article_id, r.position, r.start, r.end, r.text), vecs[c]) for c, r in rows.items()}
    spans = [(a["id"], 0, len(index.get_article(a["id"]).text)) for a in index.articles()]
    sentences = {s[0]: rows for s, rows in zip(spans, index.sentence_rows_within(spans, "title"))}
    return {"chunks": chunks, "sentences": sentences, "articles": sorted(a["id"] for a in index.articles())}


def assert_same(a: dict, b: dict) -> None:
    assert a["articles"] == b["articles"]
    assert a["chunks"].keys() == b["chunks"].keys()
    for cid, (fields, vec) in a["chunks"].items():
        assert b["chunks"][cid][0] == fields
        np.testing.assert_array_equal(b["chunks"][cid][1], vec)
    assert a["sentences"].keys() == b["sentences"].keys()
    for aid, rows in a["sentences"].items():
        assert [r[:2] for r in b["sentences"][aid]] == [r[:2] for r in rows]
        for x, y in zip(rows, b["sentences"][aid]):
            np.testing.assert_array_equal(x[2], y[2])


def test_a_shard_row_decodes_to_the_record_it_encodes(tmp_path, hash_config):
    art = rag.Article(id="a", title="Titre", text="Première phrase ici. Seconde phrase là.\n\nUn autre paragraphe.",
                      date="2025-01-02", source="S", author="X")
    bare = Index(hash_config)  # no backend: computes records only
    (record,), sketches = bare.records_for([art])
    back, sketch = decode(encode(record, sketches["a"]))
    assert back.article == art and list(back.chunks) == list(record.chunks)
    np.testing.assert_array_equal(back.vectors, record.vectors)
    assert [list(t) for t in back.terms] == [list(t) for t in record.terms] and back.language == record.language
    assert [s for s, _ in back.sentences] == [s for s, _ in record.sentences] and record.sentences
    for (_, v), (_, w) in zip(back.sentences, record.sentences):
        np.testing.assert_array_equal(v, w)
    assert sketch == sketches["a"]


def test_bad_ray_options_are_refused():
    with pytest.raises(ConfigError, match="workers"):
        RayOptions(workers=-1)
    with pytest.raises(ConfigError, match="CPUs"):
        RayOptions(cpus_per_worker=0)


def test_importing_the_library_never_imports_ray():
    code = "import rag, rag.index, rag.cli, rag.index.distributed, sys; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_without_ray_the_flag_says_what_to_install(tmp_path, hash_config, monkeypatch):
    import rag.index.distributed as dist

    monkeypatch.setitem(sys.modules, "ray", None)  # an import of it fails, as when absent
    f = tmp_path / "a.jsonl"
    write_articles(f, 2)
    with Index.create(hash_config.index_dir, hash_config) as index, pytest.raises(ConfigError, match="distributed"):
        dist.add_with_ray(index, [f])


HAS_MILVUS = bool(importlib.util.find_spec("pymilvus") and importlib.util.find_spec("milvus_lite"))


@pytest.fixture(scope="module")
def ray_up():
    """One local two-CPU Ray for the module: a second ``ray.init`` in one process after a
    shutdown timed out here, and so did one started after pymilvus's gRPC client ran."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason=NO_RAY)
@pytest.mark.parametrize("kind", ["folder", pytest.param("milvus-lite", marks=pytest.mark.skipif(
    not HAS_MILVUS, reason="pymilvus and milvus-lite are not installed (pip install 'rag-news[milvus]')"))])
def test_ray_ingestion_stores_what_the_plain_path_stores(kind, ray_up, tmp_path, hash_config, capsys):
    from rag.cli import main

    suffix = ".db" if kind == "milvus-lite" else ""
    f = tmp_path / "news.jsonl"
    ids = write_articles(f, 50)
    expected = plain_then_ray(kind, f, ids, tmp_path / f"plain{suffix}", tmp_path / f"ray{suffix}",
                              hash_config, capsys, main)
    with Index.open(tmp_path / f"ray{suffix}") as index:
        assert_same(expected, everything(index))


def plain_then_ray(kind, f, ids, plain_dir, ray_dir, hash_config, capsys, main) -> dict:
    """Index ``f`` by the plain path into ``plain_dir`` and by ``rag index add --ray`` into
    ``ray_dir`` (Ray already up); what the plain path stored."""
    with Index.create(plain_dir, hash_config.with_(index_dir=plain_dir)) as plain:
        plain.add([f])
        expected = everything(plain)
    assert expected["articles"] == sorted(ids) and len(expected["chunks"]) > 100  # several chunks an article
    Index.create(ray_dir, hash_config.with_(index_dir=ray_dir)).close()  # the CLI opens it with its own settings
    code = main(["index", "add", str(f), "--index", str(ray_dir), "--ray", "--ray-workers", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and sorted(report["added"]) == sorted(ids)
    assert report["chunks_added"] == len(expected["chunks"])
    # Again: nothing changed, nothing is embedded (skipped by checksum before Ray is asked).
    assert main(["index", "add", str(f), "--index", str(ray_dir), "--ray", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["chunks_added"] == 0 and len(again["unchanged"]) == 50
    return expected
