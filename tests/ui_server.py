"""Start the real web app (``app.py``, or ``rag serve``: the same code) in a subprocess on a free
localhost port, for UI and API tests.

Everything the app writes goes under the folder the test gives: its index copy,
Gradio's upload cache, its working directory and HOME. The model cache is the
session's (``RAG_CACHE_DIR``), so the embedder is not rebuilt.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
#: the installed command, run from this checkout (``python -m rag.cli`` is what the ``rag`` script runs)
RAG_SERVE = (sys.executable, "-m", "rag.cli", "serve")
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "GRADIO_ANALYTICS_ENABLED": "False",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    proc: subprocess.Popen
    log_path: Path
    index_dir: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def app_env(workdir: Path, cache_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an app subprocess: offline, isolated under ``workdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "GRADIO_"))}
    env.update(OFFLINE_ENV)
    env.update({
        "RAG_CACHE_DIR": str(cache_dir),
        "GRADIO_TEMP_DIR": str(workdir / "gradio-tmp"),
        "HOME": str(workdir / "home"),
        "PYTHONUNBUFFERED": "1",
        # this checkout's rag, whatever the working directory (python -m rag.cli)
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    })
    env.update(extra or {})
    return env


def start_app(index_src: Path, workdir: Path, cache_dir: Path, *, args: list[str] | None = None,
              env: dict[str, str] | None = None, timeout: float = 180,
              command: tuple[str, ...] | None = None, copy: bool = True) -> AppServer:
    """Copy the index at ``index_src`` under ``workdir`` and serve it with ``app.py`` (or ``command``,
    e.g. :data:`RAG_SERVE`); wait until it answers. With ``copy=False`` the index at ``index_src``
    itself is served (to restart a server on the folder a stopped one used).

    Raises:
        RuntimeError: the app exited or did not answer within ``timeout`` seconds (with its log).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "home").mkdir(exist_ok=True)
    index_dir = workdir / "index" if copy else Path(index_src)
    if copy:
        shutil.copytree(index_src, index_dir, ignore=shutil.ignore_patterns(".lock"))
    port = free_port()
    log_path = workdir / "app.log"
    cmd = [*(command or (sys.executable, str(APP))), "--index", str(index_dir), "--host", "127.0.0.1",
           "--port", str(port), *(args or [])]
    name = "app.py" if command is None else " ".join(Path(c).name for c in command[:4])
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=app_env(workdir, cache_dir, env), stdout=log,
                                stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}/", proc, log_path, index_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{server.log()[-4000:]}")
        try:
            with urllib.request.urlopen(server.url + "config", timeout=2) as r:
                if r.status == 200:
                    return server
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # running, with a login
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} did not answer at {server.url} within {timeout:.0f} s:\n{server.log()[-4000:]}")
