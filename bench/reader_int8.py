"""Would int8 make the reader's cross-encoder cheap enough? An experiment, not a default.

Quantizes (ONNX Runtime dynamic int8, per channel, weights only) the embedder's lower graph
and the reader's graph in several ways, then scores the same pairs as fp32: each gold
question of ``eval/gold/news.jsonl`` against the first 7 sentences
(``rag.chunking.split_sentences``) of its first relevant article, with the title, as the
reader reads them. Prints time per call and how far the logits move (top-1 agreement with
fp32, mean and p95 of |logit difference|).

    python bench/reader_int8.py [--questions 120]

Uses the model cache of ``rag setup`` (exporting what is missing); the int8 graphs are made
afresh in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sets the offline/OpenMP environment first)
from _common import format_table, loadavg, log, machine_info, write_result

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "gold"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=120)
    args = ap.parse_args()

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rag.chunking import split_sentences
    from rag.config import Config
    from rag.embedding import get_embedder
    from rag.embedding.onnx_runtime import OnnxModel
    from rag.reader.cross import WEIGHTS, OnnxCrossEncoder, pair

    embedder = get_embedder("e5-small", cache_dir=Config().cache_dir)
    model = embedder.model  # the ONNX export, made by `rag setup` (or now)
    onnx_dir, tokenizer = model.folder, embedder.source_dir / "tokenizer.json"
    cross = OnnxCrossEncoder.graph_path(model, WEIGHTS)
    if not cross.is_file():
        OnnxCrossEncoder.for_model(model, embedder.source_dir, WEIGHTS)  # exports it
    out = Path(tempfile.mkdtemp(prefix="reader-int8-"))

    def quantized(src: Path, tag: str, exclude=lambda node: False) -> Path:
        dst = out / f"{src.stem}.{tag}.onnx"
        names = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "MatMul" and exclude(n)]
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=names, extra_options={"MatMulConstBOnly": True})
        return dst

    def after_gelu(node) -> bool:  # the feed-forward output projections (wide activations)
        return node.input[0].startswith("gelu")

    arts = {a["id"]: a for a in map(json.loads, (GOLD / "news_articles.jsonl").read_text(encoding="utf-8").splitlines())}
    groups = []
    for g in map(json.loads, (GOLD / "news.jsonl").read_text(encoding="utf-8").splitlines()):
        rel = [r for r in g.get("relevant") or [] if r in arts]
        if rel:
            a = arts[rel[0]]
            sents = [a["text"][lo:hi] for lo, hi in split_sentences(a["text"]) if hi - lo > 20][:7]
            groups.append([pair(g["question"], a["title"].strip(), s) for s in sents])
    groups = groups[: args.questions]

    try:
        lower, cross8 = onnx_dir / "lower.onnx", quantized(cross, "all")
        variants = {
            "fp32": (lower, cross),
            "int8 both": (quantized(lower, "all"), cross8),
            "int8 reader graph only": (lower, cross8),
            "int8 both, FFN outputs fp32": (quantized(lower, "nogelu", after_gelu),
                                            quantized(cross, "nogelu", after_gelu)),
        }
        rows, result, base = [], {}, None
        load_before = loadavg()
        for name, (bottom, upper) in variants.items():
            variant = OnnxModel(onnx_dir, tokenizer, split=model.split)
            variant._lower = variant.session(bottom)
            ce = OnnxCrossEncoder(variant, variant.session(upper))
            for g in groups[:10]:
                ce.logits(g)  # warm-up
            times, logits = [], []
            for g in groups:
                t = time.perf_counter()
                logits.append(ce.logits(g))
                times.append(1000 * (time.perf_counter() - t))
            base = base or logits
            agree = float(np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(base, logits)]))
            diff = np.concatenate([np.abs(a - b) for a, b in zip(base, logits)])
            result[name] = {"p50_ms": round(float(np.percentile(times, 50)), 1), "mean_ms": round(float(np.mean(times)), 1),
                            "top1_agreement": round(agree, 3), "dlogit_mean": round(float(diff.mean()), 3),
                            "dlogit_p95": round(float(np.percentile(diff, 95)), 3)}
            r = result[name]
            rows.append([name, r["p50_ms"], r["mean_ms"], r["top1_agreement"], r["dlogit_mean"], r["dlogit_p95"]])
            log(f"{name}: {r}")
        print(format_table(rows, ["variant", "p50 ms/call", "mean", "top-1 = fp32", "|Δlogit| mean", "p95"]))
        pairs = float(np.mean([len(g) for g in groups]))
        print(f"{len(groups)} calls of {pairs:.1f} pairs; load before {load_before}, after {loadavg()}")
        write_result("reader_int8", {"machine": machine_info(), "calls": len(groups), "pairs_per_call": round(pairs, 1),
                                     "load_before": load_before, "load_after": loadavg(), "variants": result})
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
