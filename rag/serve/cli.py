"""``rag serve``: the web app, the Gradio API and the OpenAI-compatible API, in one server.

``rag/cli.py`` calls :func:`add_parser` only when the command is ``rag serve``;
``app.py`` calls :func:`main`. Exit codes: 0 stopped, 1 a problem it explains (no index,
a port in use), 2 a bad setting (a malformed ``RAG_AUTH``, a bad duration).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rag.errors import ConfigError, RagError

HELP = "the web app, its Gradio API and an OpenAI-compatible API (/v1) in one server"
DESCRIPTION = ("Serve an index: the web app (chat with cited answers, library of articles) at /, its Gradio API, and "
               "an OpenAI-compatible chat-completions API at /v1 (POST /v1/chat/completions, GET /v1/models), all on "
               "one port. With a login (--auth or RAG_AUTH=user:password), API clients send "
               "'Authorization: Bearer user:password' (the OpenAI clients' API key) or HTTP Basic.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX or ./index)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--llm", metavar="SPEC", help="also offer a language model: " + ", ".join(
        ("openai:BASE_URL#MODEL", "llama-cpp:PATH", "local (the bundled model, make run-llm)", "local:PATH.gguf"))
        + " (default: extractive quotes only)")
    p.add_argument("--llm-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="longest a model's answer may take; past it the answer stops, with a notice (default 60)")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="require this login for the page and the APIs (default: $RAG_AUTH; prefer the "
                        "variable: a command line is visible to other users of the machine)")
    p.add_argument("--concurrency", type=int, default=2,
                   help="answers of each kind (web chat, OpenAI API) computed at once; more wait (default: 2)")
    p.add_argument("--refresh-feeds", metavar="EVERY", help="read the feeds the index follows (rag feeds add URL) "
                                                            "now and then every EVERY, e.g. 30m, 2h")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``serve`` to a ``rag`` sub-command parser."""
    sp = subparsers.add_parser("serve", help=HELP, description=DESCRIPTION)
    add_arguments(sp)
    sp.set_defaults(func=cmd_serve)
    return sp


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the settings, open the index and serve until interrupted."""
    # The server's own lines (models ready, the URL, feeds) whatever the verbosity; libraries stay at
    # warnings. Put back on return: an in-process caller (a test) keeps its logging as it was.
    rag_log = logging.getLogger("rag")
    level = rag_log.level
    if level == logging.NOTSET or level > logging.INFO:
        rag_log.setLevel(logging.INFO)
    try:
        return _serve(args)
    finally:
        rag_log.setLevel(level)


def _serve(args: argparse.Namespace) -> int:
    from rag.feeds.schedule import parse_duration
    from rag.serve.server import serve
    from rag.config import AnswerConfig
    from rag.ui.backend import Backend, UIConfig, parse_auth

    try:
        every = parse_duration(args.refresh_feeds) if args.refresh_feeds else None
        auth = parse_auth(args.auth) if args.auth is not None else parse_auth(os.environ.get("RAG_AUTH"))
        if args.auth is not None and auth is None:
            raise ConfigError("--auth must be user:password (both non-empty)")
        index_dir = args.index or Path(os.environ.get("RAG_INDEX") or "index")
        config = UIConfig(index_dir=index_dir, host=args.host, port=args.port, llm=args.llm,
                          concurrency=args.concurrency, auth=auth, answer=AnswerConfig(llm_timeout=args.llm_timeout))
    except ConfigError as exc:
        print(f"error: {_for_flag(str(exc), args)}", file=sys.stderr)
        return 2
    try:
        backend = Backend.open(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    serve(backend, config, refresh_every=every)
    return 0


def _for_flag(message: str, args: argparse.Namespace) -> str:
    """parse_auth names RAG_AUTH; say --auth when the value came from the flag."""
    if args.auth is not None:
        return message.replace("RAG_AUTH must be", "--auth must be").replace("RAG_AUTH=", "--auth ")
    return message


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``rag serve`` as a program of its own (``app.py``)."""
    from rag.cli import configure_logging

    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(p)
    args = p.parse_args(argv)
    configure_logging(verbose=False)
    try:
        return cmd_serve(args)
    except KeyboardInterrupt:
        return 0
