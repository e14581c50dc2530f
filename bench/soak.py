"""Soak: one app serving askers while a CLI ingests and another process removes (issue 10).

One ``app.py`` serves ``--askers`` clients asking in a loop (through the API, as a browser
would) while ``rag index add`` ingests ``--articles`` new articles from another process and
a third process removes ``--remove`` articles that were indexed before. Afterwards:

- vectors == chunks, in memory and in the saved FAISS file (its ids are the store's);
- every ingested article is present exactly once, every removed one is gone;
- errors: askers' failed calls, and the exit codes of the CLI and the remover;
- readers answered throughout: answer latency p50/p95 and the longest gap without any answer.

Not a test (nothing asserts a timing); it prints a table and writes ``bench/results/soak.json``.
The exit code is 1 when a consistency check failed or any error occurred.

    .venv/bin/python bench/soak.py                                   # 1,000 articles, 50 removals, 16 askers
    .venv/bin/python bench/soak.py --articles 100 --remove 10 --askers 4 --embedder hash   # a quick look
"""

from __future__ import annotations

import _common  # noqa: F401  (sets the offline environment first)

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import format_table, loadavg, log, machine_info, percentiles_ms, write_result

ROOT = Path(__file__).resolve().parent.parent
RAG = [sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main(sys.argv[1:]))"]
TOPICS = ["élections municipales", "réforme des retraites", "coupe du monde", "climat et énergie",
          "budget de l'État", "port de Brest", "volcans islandais", "trains de nuit"]
QUESTIONS = ["Que dit l'article sur le port de Brest ?", "What happened with the night trains?",
             "Quelles nouvelles sur les volcans islandais ?", "who coordinates the coalition?",
             "Combien coûte la réforme des retraites ?", "What about the municipal elections?"]


def article(prefix: str, i: int) -> dict:
    t = TOPICS[i % len(TOPICS)]
    return {"id": f"{prefix}{i}", "title": f"{prefix.upper()} {i}: nouvelles sur {t}",
            "text": f"Premier paragraphe de l'article {i} sur {t}. Il donne des chiffres, {i * 7} au total. "
                    f"Une deuxième phrase précise le lieu et la date.\n\nSecond paragraphe numéro {i}, "
                    f"avec d'autres mots sur {t} et une citation d'un responsable."}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"app.py did not answer within {timeout:.0f} s")


class Askers:
    """``n`` clients asking in a loop until stopped; every latency, answer time and error recorded."""

    def __init__(self, url: str, n: int):
        from gradio_client import Client

        self.clients = [Client(url, verbose=False, download_files=False, analytics_enabled=False) for _ in range(n)]
        self.latencies: list[float] = []
        self.answered_at: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i, c), daemon=True)
                        for i, c in enumerate(self.clients)]

    def _run(self, i: int, client) -> None:
        n = i
        while not self._stop.is_set():
            q = QUESTIONS[n % len(QUESTIONS)]
            n += 1
            t0 = time.perf_counter()
            try:
                client.predict(q, api_name="/ask")
            except Exception as exc:  # any failure counts; the soak reports them all
                with self._mutex:
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                time.sleep(0.5)
                continue
            with self._mutex:
                self.latencies.append(time.perf_counter() - t0)
                self.answered_at.append(time.monotonic())

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(timeout=120)


def longest_gap(times: list[float], start: float, end: float) -> float:
    points = sorted([start, *[t for t in times if start <= t <= end], end])
    return max((b - a for a, b in zip(points, points[1:])), default=end - start)


def check(index_dir: Path, ingested: list[str], removed: list[str], kept: list[str]) -> dict:
    import numpy as np

    import rag
    from rag.vectors import VectorIndex, latest_vectors_file

    index = rag.Index.open(index_dir)
    try:
        n_articles, n_chunks = index.store.counts()
        store_ids = index.store.chunk_ids()
        gen, path = latest_vectors_file(index_dir)
        saved = VectorIndex.load(path)
        ids = [r["id"] for r in index.articles()]
        return {
            "articles": n_articles, "chunks": n_chunks, "vectors": len(index.vectors),
            "vectors_equal_chunks": len(index.vectors) == n_chunks
            and bool(np.array_equal(index.vectors.ids(), store_ids)),
            "saved_file_matches_store": gen == index.store.generation and bool(np.array_equal(saved.ids(), store_ids)),
            "ingested_present_once": all(ids.count(a) == 1 for a in ingested),
            "removed_gone": not set(removed) & set(ids),
            "others_present": all(a in ids for a in kept),
            "duplicates": len(ids) - len(set(ids)),
        }
    finally:
        index.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=1000, help="articles the CLI ingests (default 1000)")
    p.add_argument("--remove", type=int, default=50, help="articles another process removes (default 50)")
    p.add_argument("--askers", type=int, default=16, help="concurrent askers of the app (default 16)")
    p.add_argument("--embedder", default="e5-small", help="embedder of the soak index (default e5-small; "
                                                          "'hash' for a quick run of the plumbing)")
    p.add_argument("--workdir", type=Path, help="where the index and logs go (default: a temporary folder)")
    args = p.parse_args()

    import rag
    from rag.config import Config

    work = args.workdir or Path(tempfile.mkdtemp(prefix="rag-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    index_dir = work / "index"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(work / "gradio-tmp")}

    log(f"building the starting index in {index_dir} ({args.remove} articles to remove later + 20 others)")
    doomed = [article("old", i) for i in range(args.remove)]
    others = [article("keep", i) for i in range(20)]
    index = rag.Index.create(index_dir, Config(index_dir=index_dir, embedder=args.embedder))
    index.add([rag.Article(**{k: a[k] for k in ("id", "title", "text")}) for a in doomed + others])
    index.close()
    new = [article("new", i) for i in range(args.articles)]
    feed = work / "new.jsonl"
    feed.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in new), encoding="utf-8")

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    app_log = open(work / "app.log", "wb")
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--index", str(index_dir), "--port", str(port)],
                           cwd=work, env=env, stdout=app_log, stderr=subprocess.STDOUT)
    result: dict = {"params": vars(args) | {"workdir": str(work)}, "machine": machine_info(),
                    "load_before": loadavg()}
    try:
        wait_for(url, app, 300)
        log(f"app up at {url}; starting {args.askers} askers")
        askers = Askers(url, args.askers)
        askers.start()
        time.sleep(2)
        t0 = time.monotonic()
        log(f"CLI ingest of {args.articles} articles and removal of {args.remove}, concurrently")
        ingest = subprocess.Popen([*RAG, "index", "add", str(feed), "--index", str(index_dir), "-q"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        remover_code = (
            "import sys, time\nfrom rag.cli import main\nfailed = 0\n"
            "for aid in sys.argv[2:]:\n"
            "    failed += main(['index', 'remove', aid, '--index', sys.argv[1]]) != 0\n"
            "    time.sleep(0.2)\n"
            "sys.exit(1 if failed else 0)\n"
        )
        remover = subprocess.Popen([sys.executable, "-c", remover_code, str(index_dir), *[a["id"] for a in doomed]],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ingest_out, ingest_err = ingest.communicate()
        t_ingest = time.monotonic() - t0
        remover_out, remover_err = remover.communicate()
        t_end = time.monotonic()
        time.sleep(2)
        askers.stop()
        log(f"ingest done in {t_ingest:.1f} s (exit {ingest.returncode}), removals exit {remover.returncode}")
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
        app_log.close()

    checks = check(index_dir, [a["id"] for a in new], [a["id"] for a in doomed], [a["id"] for a in others])
    during = [lat for lat, at in zip(askers.latencies, askers.answered_at) if t0 <= at <= t_end]
    result |= {
        "ingest_seconds": round(t_ingest, 1), "ingest_exit": ingest.returncode,
        "ingest_stderr_tail": ingest_err[-2000:], "remover_exit": remover.returncode,
        "remover_stderr_tail": remover_err[-2000:],
        "answers": len(askers.latencies), "answers_during_writes": len(during),
        "asker_errors": len(askers.errors), "asker_error_samples": askers.errors[:10],
        "latency_ms": percentiles_ms(askers.latencies), "latency_during_writes_ms": percentiles_ms(during),
        "longest_gap_without_an_answer_s": round(longest_gap(askers.answered_at, t0, t_end), 2),
        "checks": checks, "load_after": loadavg(),
    }
    ok = (all(v for k, v in checks.items() if isinstance(v, bool)) and checks["duplicates"] == 0
          and not askers.errors and ingest.returncode == 0 and remover.returncode == 0)
    result["ok"] = ok
    lat = result["latency_during_writes_ms"]
    print(format_table([
        ["articles ingested / removed", f"{args.articles} / {args.remove}"],
        ["ingest time (s)", result["ingest_seconds"]],
        ["answers (during writes)", f"{result['answers']} ({len(during)})"],
        ["answer p50 / p95 during writes (ms)", f"{lat.get('p50')} / {lat.get('p95')}"],
        ["longest gap without an answer (s)", result["longest_gap_without_an_answer_s"]],
        ["errors (askers, ingest exit, remover exit)",
         f"{len(askers.errors)}, {ingest.returncode}, {remover.returncode}"],
        ["articles / chunks / vectors", f"{checks['articles']} / {checks['chunks']} / {checks['vectors']}"],
        ["vectors == chunks, file matches store",
         f"{checks['vectors_equal_chunks']}, {checks['saved_file_matches_store']}"],
        ["each ingested once, removed gone, duplicates",
         f"{checks['ingested_present_once']}, {checks['removed_gone']}, {checks['duplicates']}"],
        ["verdict", "OK" if ok else "FAILED"],
    ], ["soak", "value"]))
    print(f"results: {write_result('soak', result)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
