"""The web UI: a chat with cited answers, a library of the indexed articles, and an API.

Three parts: :mod:`~rag.ui.backend` does the work (answering, adding and removing
articles, saving uploads) without knowing about Gradio; :mod:`~rag.ui.render`
turns answers and reports into escaped HTML; :mod:`~rag.ui.layout` lays out the
Gradio page (styled by ``style.css``) and wires handlers and named API endpoints
to the backend. Gradio is imported only inside layout's functions:
``from rag import ui`` is cheap.
"""

from rag.ui.backend import Backend, UIConfig, make_filters, parse_auth, safe_upload_name
from rag.ui.layout import build_app, launch_kwargs
from rag.ui.render import esc, render_answer, render_sources

__all__ = [
    "Backend",
    "UIConfig",
    "build_app",
    "esc",
    "launch_kwargs",
    "make_filters",
    "parse_auth",
    "render_answer",
    "render_sources",
    "safe_upload_name",
]
