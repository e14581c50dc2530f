"""Web app over the index: chat with cited answers, a library of articles, and an API.

Run with ``make run`` (builds the index of ``seeds/`` first when needed), or
``python app.py [--index DIR] [--host 127.0.0.1] [--port 7860] [--llm SPEC] [--llm-timeout 60] [--concurrency 2]
[--refresh-feeds 30m]``.
Set ``RAG_AUTH=user:password`` to require a login.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import rag
from rag import ui
from rag.cli import configure_logging
from rag.feeds.schedule import parse_duration


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, default=Path("index"), help="index folder (default: index)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--llm", metavar="SPEC", help="also offer a language model: " + ", ".join(
        ("openai:BASE_URL#MODEL", "llama-cpp:PATH", "local (the bundled model, make run-llm)", "local:PATH.gguf")))
    p.add_argument("--llm-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="longest a model's answer may take; past it the answer stops, with a notice (default 60)")
    p.add_argument("--concurrency", type=int, default=2, help="requests of each kind run at once (default: 2)")
    p.add_argument("--refresh-feeds", metavar="EVERY", help="read the feeds the index follows (rag feeds add URL) "
                                                            "now and then every EVERY, e.g. 30m, 2h")
    args = p.parse_args(argv)
    configure_logging(verbose=True)
    try:
        every = parse_duration(args.refresh_feeds) if args.refresh_feeds else None
        config = ui.UIConfig(index_dir=args.index, host=args.host, port=args.port, llm=args.llm,
                             concurrency=args.concurrency, auth=ui.parse_auth(os.environ.get("RAG_AUTH")),
                             answer=rag.AnswerConfig(llm_timeout=args.llm_timeout))
        backend = ui.Backend.open(config)
    except rag.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except rag.RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The page is served while the models load (about a second); a question asked meanwhile waits for them.
    warm_up = backend.warm_up_in_background()
    if every:
        backend.refresh_feeds_every(every, after=warm_up)
    demo = ui.build_app(backend)
    demo.queue(default_concurrency_limit=config.concurrency).launch(**ui.launch_kwargs(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
