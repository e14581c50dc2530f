"""Web app over the index: chat with cited answers, a library of articles, the Gradio API and an
OpenAI-compatible API, in one server. A thin wrapper over ``rag serve`` (:mod:`rag.serve`).

Run with ``make run`` (builds the index of ``seeds/`` first when needed), ``rag serve``, or
``python app.py [--index DIR] [--host 127.0.0.1] [--port 7860] [--llm SPEC] [--llm-timeout 60]
[--auth USER:PASSWORD] [--concurrency 2] [--refresh-feeds 30m]``. Set ``RAG_AUTH=user:password`` to require a login.
"""

from __future__ import annotations

import sys

from rag.serve.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="app.py"))
