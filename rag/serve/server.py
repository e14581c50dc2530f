"""One FastAPI app for everything (:func:`create_app`), served by uvicorn (:func:`serve`).

Routes: ``/v1/...`` the OpenAI-compatible API (:mod:`rag.serve.openai_routes`), mounted
first so that Gradio, mounted at ``/``, gets every other path: the web page, its login,
and the Gradio API (``/gradio_api/...``, what ``gradio_client`` calls).
"""

from __future__ import annotations

import logging
import threading

from rag.ui.backend import Backend, UIConfig

log = logging.getLogger(__name__)

#: where the OpenAI-compatible API is mounted
OPENAI_PREFIX = "/v1"


def create_app(backend: Backend, config: UIConfig):
    """The FastAPI app: the OpenAI-compatible API at ``/v1`` and the Gradio app (with its
    queue, login, upload cap and style) at ``/``."""
    import gradio as gr
    from fastapi import FastAPI

    from rag.serve.openai_routes import create_openai_api
    from rag.ui.layout import build_app, launch_kwargs

    app = FastAPI(title="News QA", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(OPENAI_PREFIX, create_openai_api(backend, auth=config.auth, concurrency=config.concurrency))
    demo = build_app(backend).queue(default_concurrency_limit=config.concurrency)
    # show_error=False as launch() has it: an unexpected exception's text stays in the log, not the browser.
    return gr.mount_gradio_app(app, demo, "/", show_error=False, **launch_kwargs(config))


def serve(backend: Backend, config: UIConfig, *, refresh_every: float | None = None) -> None:
    """Serve ``backend`` on ``config.host:config.port`` until interrupted (Ctrl-C or SIGTERM).

    The page is served while the models load in the background (about a second); a question
    asked meanwhile waits for them. With ``refresh_every`` (seconds), the feeds the index
    follows are read once the models are ready, then at that interval.
    """
    import uvicorn

    warm_up: threading.Thread = backend.warm_up_in_background()
    if refresh_every:
        backend.refresh_feeds_every(refresh_every, after=warm_up)
    app = create_app(backend, config)
    url = f"http://{config.host if ':' not in config.host else f'[{config.host}]'}:{config.port}"
    log.info("serving %s on %s/ (web app), %s/gradio_api/ (Gradio API), %s%s/chat/completions (OpenAI API)%s",
             backend.index.path, url, url, url, OPENAI_PREFIX, ", with a login" if config.auth else "")
    # Graceful shutdown waits at most 5 s for open streams (a browser keeps one open per tab).
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                                           timeout_graceful_shutdown=5))
    server.run()
