"""Cold start: `rag ask` from a fresh process, and the app from process start to first answer.

Both on an index of ``seeds/`` built once under bench/.cache, with the models already
prepared (the first run ever materializes e5 and exports it to ONNX: minutes, once).
Targets (speed issue): `rag ask` <= 3 s; app start to first answer <= 5 s, on 2 idle cores.

    python bench/cold_start.py [--runs 5] [--runtime onnx|torch]

For each `rag ask` run, the heavy modules the process imported are recorded too (the query
path must not import torch).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import _common  # noqa: F401  (sets the offline/OpenMP environment first)
from _common import CACHE_DIR, format_table, loadavg, log, machine_info, settle, write_result

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Qui coordonne la coalition des volontaires ?"
HEAVY = ("torch", "transformers", "sentence_transformers", "llama_index", "gradio", "onnxruntime", "faiss", "scipy")

_ASK = """
import sys, time
t0 = time.perf_counter()
from rag.cli import main
rc = main(["ask", {question!r}, "--index", {index!r}])
sys.stderr.write("HEAVY " + ",".join(m for m in {heavy!r} if m in sys.modules) + "\\n")
sys.exit(rc)
"""


def ask_once(index: Path, env: dict) -> tuple[float, list[str], str]:
    code = _ASK.format(question=QUESTION, index=str(index), heavy=HEAVY)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"rag ask failed ({out.returncode}):\n{out.stderr[-2000:]}")
    heavy = next((ln[6:].split(",") for ln in out.stderr.splitlines() if ln.startswith("HEAVY ")), [])
    return wall, [m for m in heavy if m], out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_once(index: Path, env: dict) -> dict:
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--index", str(index), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        served = None
        while served is None:
            if proc.poll() is not None:
                raise SystemExit(f"the app exited ({proc.returncode}):\n{proc.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        served = time.perf_counter() - t0
            except OSError:
                time.sleep(0.02)
        client = Client(url, verbose=False)
        answer = client.predict(QUESTION, api_name="/ask")
        first = time.perf_counter() - t0
        if "coordination" not in str(answer):
            raise SystemExit(f"unexpected first answer: {str(answer)[:300]}")
        return {"page_served_s": round(served, 3), "first_answer_s": round(first, 3)}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--runtime", choices=("onnx", "torch"), default="onnx", help="what runs the e5 model")
    ap.add_argument("--skip-app", action="store_true")
    args = ap.parse_args()

    import rag
    from rag.config import Config

    index = CACHE_DIR / "seed-index"
    if not rag.Index.exists(index):
        log(f"building {index}")
        idx = rag.Index.create(index, Config(index_dir=index))
        idx.add([ROOT / "seeds"])
        idx.close()
    env = {**os.environ, "RAG_RUNTIME": args.runtime}
    log("preparing the models (untimed run)")
    ask_once(index, env)
    quiet = settle(0.5, 180)
    load_before = loadavg()
    asks, heavy = [], set()
    for i in range(args.runs):
        wall, mods, _ = ask_once(index, env)
        asks.append(wall)
        heavy.update(mods)
        log(f"rag ask run {i + 1}: {wall:.2f} s")
    apps = []
    if not args.skip_app:
        for i in range(args.runs):
            r = app_once(index, env)
            apps.append(r)
            log(f"app run {i + 1}: page {r['page_served_s']:.2f} s, first answer {r['first_answer_s']:.2f} s")
    load_after = loadavg()
    result = {
        "runtime": args.runtime,
        "rag_ask_cold_s": {"median": round(statistics.median(asks), 3), "min": round(min(asks), 3),
                           "max": round(max(asks), 3), "runs": [round(a, 3) for a in asks]},
        "rag_ask_heavy_modules": sorted(heavy),
        "app": ({"page_served_median_s": round(statistics.median(a["page_served_s"] for a in apps), 3),
                 "first_answer_median_s": round(statistics.median(a["first_answer_s"] for a in apps), 3),
                 "runs": apps} if apps else None),
        "targets": {"rag_ask_cold_s": 3.0, "app_first_answer_s": 5.0},
        "load_before": load_before, "load_after": load_after, "settled": quiet,
        "machine": machine_info(),
    }
    rows = [["rag ask (cold process)", result["rag_ask_cold_s"]["median"], 3.0]]
    if apps:
        rows += [["app: page served", result["app"]["page_served_median_s"], ""],
                 ["app: first answer", result["app"]["first_answer_median_s"], 5.0]]
    print(format_table(rows, ["what", f"median s ({args.runtime})", "target s"]))
    print(f"heavy modules imported by rag ask: {', '.join(sorted(heavy)) or 'none'}; load {load_before} -> {load_after}")
    write_result(f"cold_start-{args.runtime}", result)


if __name__ == "__main__":
    main()
