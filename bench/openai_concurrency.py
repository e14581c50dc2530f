"""OpenAI-API clients against one live ``rag serve``: one client alone, then 32 at once (issue 13).

Starts ``rag serve`` (``--concurrency 2`` by default) on an index of ``seeds/`` (built once
under bench/.cache, shared with cold_start.py) and asks the questions of
``eval/gold/seeds.jsonl`` through the official ``openai`` client:

- one client alone asks every question once, in order (the baseline);
- then ``--clients`` clients (threads, each with its own client and connection) ask
  ``--questions`` questions each at the same time, client i starting at question 10 i of
  the set; every other client streams (``stream=True``), the others do not.

A latency is the wall time of one request, to the last byte of the answer (``[DONE]`` when
streamed). Errors are failed requests or empty answers; an answer under load that differs
from the one the lone client got is counted apart (answers are deterministic). Not a test:
prints a table and writes ``bench/results/openai_concurrency.json`` with the machine's load
before and after each run and the CPU other processes used meanwhile.

    .venv/bin/python bench/openai_concurrency.py                    # 32 x 10, about a minute or two
    .venv/bin/python bench/openai_concurrency.py --clients 8 --questions 5 --concurrency 4
"""

from __future__ import annotations

import _common  # noqa: F401  (sets the offline/OpenMP environment first)

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import (CACHE_DIR, _busy_ticks, format_table, loadavg, log, machine_info, percentiles_ms, settle,
                     write_result)

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "gold" / "seeds.jsonl"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, concurrency: int, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(work / "gradio-tmp")}
    env.pop("RAG_AUTH", None)
    log_file = open(work / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port),
                             "--concurrency", str(concurrency)], cwd=work, env=env, stdout=log_file,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited ({proc.returncode}):\n{(work / 'serve.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "v1/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("rag serve did not answer within 300 s")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def ask(client, question: str, stream: bool) -> tuple[str, dict]:
    """(text, extension fields) of one answer."""
    messages = [{"role": "user", "content": question}]
    if not stream:
        r = client.chat.completions.create(model="rag-extractive", messages=messages)
        return r.choices[0].message.content or "", r.model_extra or {}
    text, extra = [], {}
    for c in client.chat.completions.create(model="rag-extractive", messages=messages, stream=True):
        if c.choices and c.choices[0].delta.content:
            text.append(c.choices[0].delta.content)
        if c.model_extra and "citations" in c.model_extra:
            extra = c.model_extra
    return "".join(text), extra


def run(url: str, plans: list[list[tuple[str, bool]]], server_pid: int) -> dict:
    """Each plan is one client's (question, streamed) requests, asked in order; all clients at once."""
    import openai

    latencies: list[float] = []
    answers: list[tuple[str, str, bool]] = []  # (question, text, refused)
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(plans))

    def client_thread(plan: list[tuple[str, bool]]) -> None:
        client = openai.OpenAI(base_url=url + "v1", api_key="none", max_retries=0, timeout=600)
        start.wait()
        for question, stream in plan:
            t0 = time.perf_counter()
            try:
                text, extra = ask(client, question, stream)
                if not text.strip() or "rag" not in extra:
                    raise RuntimeError(f"empty answer or no extension fields: {text[:100]!r}")
            except Exception as exc:  # noqa: BLE001 (every failure is counted and sampled)
                with lock:
                    errors.append(f"{question!r} (stream={stream}): {type(exc).__name__}: {str(exc)[:200]}")
                continue
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                answers.append((question, text, bool(extra["rag"]["refused"])))

    threads = [threading.Thread(target=client_thread, args=(p,)) for p in plans]
    load_before, busy0, srv0, own0 = loadavg(), _busy_ticks(), process_cpu(server_pid), own_cpu()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    busy1, srv1, own1 = _busy_ticks(), process_cpu(server_pid), own_cpu()
    others = None
    if busy0 is not None and busy1 is not None:
        others = round(max(0.0, ((busy1 - busy0) / TICK - (srv1 - srv0) - (own1 - own0)) / wall), 2)
    requests = sum(len(p) for p in plans)
    return {
        "clients": len(plans), "requests": requests, "errors": len(errors), "error_samples": errors[:10],
        "latency_ms": percentiles_ms(latencies), "wall_s": round(wall, 2),
        "answers_per_s": round(len(latencies) / wall, 2), "refused": sum(r for _, _, r in answers),
        "server_cpu_cores": round((srv1 - srv0) / wall, 2), "client_cpu_cores": round((own1 - own0) / wall, 2),
        "others_cores": others,
        "load_before": load_before, "load_after": loadavg(), "_answers": answers,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument("--questions", type=int, default=10, help="questions each concurrent client asks (default 10)")
    ap.add_argument("--concurrency", type=int, default=2, help="rag serve --concurrency (default 2)")
    ap.add_argument("--index", type=Path, help="an index of seeds/ to serve (default: built once under bench/.cache)")
    args = ap.parse_args()

    import rag
    from rag.config import Config

    index = args.index or CACHE_DIR / "seed-index"
    if not rag.Index.exists(index):
        log(f"building {index}")
        idx = rag.Index.create(index, Config(index_dir=index))
        idx.add([ROOT / "seeds"])
        idx.close()
    questions = [json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="rag-openai-bench-"))
    proc, url = start_server(index, args.concurrency, work)
    try:
        log(f"rag serve up at {url} (--concurrency {args.concurrency}); warming up")
        run(url, [[(q, False) for q in questions[:3]]], proc.pid)
        settled = settle(1.0, 120)
        log(f"one client, {len(questions)} questions")
        single = run(url, [[(q, i % 2 == 1) for i, q in enumerate(questions)]], proc.pid)
        plans = [[(questions[(10 * c + j) % len(questions)], c % 2 == 1) for j in range(args.questions)]
                 for c in range(args.clients)]
        log(f"{args.clients} clients x {args.questions} questions, at once")
        many = run(url, plans, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    alone = {q: text for q, text, _ in single.pop("_answers")}
    differ = sorted({q for q, text, _ in many.pop("_answers") if alone.get(q) not in (None, text)})
    many["answers_differing_from_the_lone_client"] = len(differ)
    many["differing_questions"] = differ[:10]
    ratio = (round(many["latency_ms"]["p95"] / single["latency_ms"]["p95"], 1)
             if many["latency_ms"] and single["latency_ms"] else None)
    rows = []
    for name, r, shape in (("one client", single, f"1 x {len(questions)}"),
                           (f"{args.clients} clients", many, f"{args.clients} x {args.questions}")):
        lat = r["latency_ms"]
        rows.append([name, shape, r["errors"], lat.get("p50"), lat.get("p95"), lat.get("max"), r["answers_per_s"],
                     r["server_cpu_cores"], r["client_cpu_cores"], r["others_cores"],
                     f"{r['load_before'][0]} -> {r['load_after'][0]}"])
    print(format_table(rows, ["run", "requests", "errors", "p50 ms", "p95 ms", "max ms", "answers/s",
                              "server cores", "clients' cores", "others' cores", "load 1 min"]))
    print(f"p95 under {args.clients} clients / p95 alone: {ratio}x; answers differing from the lone client's: "
          f"{len(differ)}; rag serve --concurrency {args.concurrency}")
    path = write_result("openai_concurrency", {
        "params": {"clients": args.clients, "questions_per_client": args.questions, "concurrency": args.concurrency,
                   "index": str(index), "questions": str(GOLD.relative_to(ROOT)), "streamed": "every other client"},
        "machine": machine_info(), "settle": settled, "single": single, "concurrent": many,
        "p95_ratio": ratio})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
