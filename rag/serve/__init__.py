"""``rag serve``: one process, one port, for everything a client can reach.

A FastAPI app holds the Gradio web app (chat and library, :mod:`rag.ui`) with its
Gradio API at ``/``, and an OpenAI-compatible chat-completions API at ``/v1``
(:mod:`rag.serve.openai_routes`, translating with :mod:`rag.serve.openai_compat`).
All of them answer through one :class:`rag.ui.Backend`, so the answering logic is
never copied. Nothing heavy is imported here: FastAPI, Gradio and uvicorn load when
the server is built (:func:`rag.serve.server.create_app`).
"""
