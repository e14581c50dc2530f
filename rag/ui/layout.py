"""The Gradio page over a :class:`~rag.ui.backend.Backend`: Chat and Library tabs, handlers, and the API.

Gradio is imported inside the functions that build the app, so importing
``rag.ui`` (and this module) stays cheap. The page's style is ``style.css`` in
this package, read when the app is launched.
"""

import time
from importlib import resources
from pathlib import Path

from rag.errors import RagError
from rag.types import AddReport, Answer, Article, Citation, Hit
from rag.ui.backend import MAX_SOURCES, RECENCY, UPLOAD_SUFFIXES, Backend, UIConfig, fmt_bytes
from rag.ui.render import (add_progress_text, describe_report, esc, render_answer, render_error, render_first_token,
                           render_question, render_sources, render_status)

EXAMPLES = [
    "Who coordinates the coalition?",
    "Qui a annoncé la création de la coalition ?",
    "When will Putin and Trump meet?",
    "Combien de pays compte la coalition des volontaires ?",
    "What does Russia say about foreign troops in Ukraine?",
]


# -- JSON for the API ------------------------------------------------------------


def answer_to_dict(answer: Answer) -> dict:
    """What ``/ask`` returns: the answer text, its citations and how it was made (JSON-safe)."""
    return {
        "question": answer.question,
        "text": answer.text,
        "refused": bool(answer.refused),
        "confidence": float(answer.confidence),
        "answerer": answer.answerer,
        "notice": answer.notice,
        "standalone_question": answer.standalone_question,
        "citations": [_citation_dict(c) for c in answer.citations],
        "related": [hit_to_dict(h) for h in answer.related],
        "timings_ms": {k: float(v) for k, v in answer.timings_ms.items()},
    }


def _citation_dict(c: Citation) -> dict:
    d = c.to_dict()
    d["chunk_id"] = None if c.chunk_id is None else int(c.chunk_id)
    return d


def hit_to_dict(h: Hit) -> dict:
    d = h.to_dict()
    d["chunk_id"], d["score"] = int(h.chunk_id), round(float(h.score), 4)
    return d


def report_to_dict(report: AddReport, article: Article | None = None) -> dict:
    d = report.to_dict()
    d["seconds"] = round(d["seconds"], 3)
    if article is not None:
        d["article_id"] = article.id
        d["title"] = article.title
    return d


def _when(iso: str | None) -> str:
    """``2025-09-02T10:05:00+00:00`` as ``2025-09-02 10:05 UTC`` ("never" when None)."""
    if not iso:
        return "never"
    return iso[:16].replace("T", " ") + (" UTC" if iso.endswith("+00:00") else "")


# -- the Gradio app ---------------------------------------------------------------


def launch_kwargs(config: UIConfig) -> dict:
    """Arguments for ``Blocks.launch`` (bind address, login, upload cap, style)."""
    from rag.ui.backend import LoginGuard

    return dict(server_name=config.host, server_port=config.port, auth=LoginGuard(*config.auth) if config.auth else None,
                auth_message="Log in to ask the news articles." if config.auth else None,
                max_file_size=config.max_upload_bytes, css=_css(), theme=_theme(), footer_links=["api"])



def _css() -> str:
    return resources.files(__package__).joinpath("style.css").read_text(encoding="utf-8")


def _theme():
    import gradio as gr

    # System fonts: the default Google font would be fetched from the internet by every browser.
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                          font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Consolas", "monospace"])


def build_app(backend: Backend):
    """The Gradio Blocks page over ``backend``: Chat and Library tabs, and the API.

    API endpoints (for ``gradio_client``): ``/ask``, ``/add_article``, ``/search``.
    Every handler turns :class:`RagError` into ``gr.Error`` (a message, not a traceback).
    """
    import gradio as gr

    def fail(exc: Exception):
        return gr.Error(str(exc), title="Cannot do that", print_exception=False)

    # -- chat ----------------------------------------------------------------
    def respond(question, chat, turns, answerer, k, date_from, date_to, sources, recent, show_timings):
        from rag.retriever import clean_query

        try:
            question = clean_query(question or "")
            stream = backend.stream(question, list(turns or []), answerer=answerer, k=int(k),
                                    date_from=date_from, date_to=date_to, sources=sources, recent=recent)
        except RagError as exc:
            raise fail(exc) from None
        chat = list(chat or []) + [{"role": "user", "content": render_question(question)},
                                   {"role": "assistant", "content": "…"}]
        yield "", chat, turns
        text, answer = "", None
        started, first = time.perf_counter(), None
        try:
            for item in stream:
                if isinstance(item, Answer):
                    answer = item
                else:
                    first = time.perf_counter() - started if first is None else first
                    text += item
                    shown = esc(text) + (render_first_token(first) if answerer == "llm" else "")
                    chat[-1] = {"role": "assistant", "content": shown}
                    yield "", chat, turns
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render_error(str(exc))}
            yield "", chat, turns
            return
        chat[-1] = {"role": "assistant", "content": render_answer(answer)}
        sources = render_sources(answer, backend.index.get_article, show_timings=bool(show_timings))
        if sources:
            chat.append({"role": "assistant", "content": sources})
        yield "", chat, list(turns or []) + [(question, answer.text)]

    def new_chat():
        return [], [], ""

    # -- library ---------------------------------------------------------------
    def table(query: str = ""):
        rows = backend.articles(query)
        return [[r["title"], r["date"] or "", r["source"] or "", int(r["chunks"]), r["id"]] for r in rows]

    def index_info():
        n_articles, n_chunks = backend.counts()
        return f"Index: {n_articles} article(s), {n_chunks} chunks · embedder {backend.index.config.embedder}"

    def refresh(query):
        return table(query), index_info()

    def source_choices():
        return gr.update(choices=backend.sources())

    def feeds_view():
        rows = [[f["title"] or f["url"], f["url"], _when(f["last_checked"]), _when(f["last_ok"]), int(f["articles"]),
                 f["last_error"] or ""] for f in backend.feeds()]
        return rows, backend.feeds_schedule()

    def add_files(files, query, progress=gr.Progress()):
        files = [f for f in (files or []) if f]
        if not files:
            return gr.skip(), gr.skip(), render_status("Choose one or more files first.", ok=False), gr.skip()
        names = [Path(f).name for f in files]
        progress(0, desc=f"Reading {len(files)} file(s)")
        try:
            report = backend.add_uploads(files, names=names, progress=lambda p: progress(
                (p.done, p.total) if p.total else None, desc=add_progress_text(p), unit="articles"))
        except RagError as exc:
            return gr.skip(), gr.skip(), render_status(str(exc), ok=False), gr.skip()
        msg = describe_report(report, f"{', '.join(names)}: ")
        return table(query), index_info(), render_status(msg, ok=True), None

    def add_pasted(title, text, date, source, url, query, progress=gr.Progress()):
        progress(0.2, desc="Embedding and indexing")
        try:
            article, report = backend.add_text(title, text, date, source, url)
        except RagError as exc:
            return gr.skip(), gr.skip(), render_status(str(exc), ok=False), *([gr.skip()] * 5)
        msg = describe_report(report, f"“{article.title}” (id {article.id}): ")
        return table(query), index_info(), render_status(msg, ok=True), "", "", "", "", ""

    def remove(article_id, query):
        try:
            removed = backend.remove(article_id)
        except RagError as exc:
            return gr.skip(), gr.skip(), render_status(str(exc), ok=False), gr.skip()
        if not removed:
            missing = render_status(f"No article has the id {article_id.strip()!r}.", ok=False)
            return gr.skip(), gr.skip(), missing, gr.skip()
        return table(query), index_info(), render_status(f"Removed article {article_id.strip()}.", ok=True), ""

    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[4] if len(row) > 4 else gr.skip()

    # -- API ---------------------------------------------------------------------
    def ask(question: str, answerer: str = "extractive", k: int = 6, date_from: str = "",
            date_to: str = "", sources: list[str] | None = None, recent: str = "") -> dict:
        """Answer one question (no conversation) from the indexed articles.

        Filters: date_from/date_to (YYYY-MM-DD), sources (names), recent (7d, 2w, 3m, 1y).
        Returns the answer text with [n] markers, its citations (quote, article, offsets),
        whether it was refused, the related passages when it was, and stage timings.
        """
        try:
            return answer_to_dict(backend.ask(question, answerer=answerer, k=k, date_from=date_from,
                                              date_to=date_to, sources=sources, recent=recent))
        except RagError as exc:
            raise fail(exc) from None

    def add_article(title: str, text: str, date: str = "", source: str = "", url: str = "") -> dict:
        """Index one article (title and text; date, source and url optional). Returns what was done."""
        try:
            article, report = backend.add_text(title, text, date, source, url)
        except RagError as exc:
            raise fail(exc) from None
        return report_to_dict(report, article)

    def search(query: str, k: int = 5, date_from: str = "", date_to: str = "", sources: list[str] | None = None,
               recent: str = "") -> list[dict]:
        """The k passages closest to the query, best first (filters as for /ask)."""
        try:
            return [hit_to_dict(h) for h in backend.search(query, k, date_from=date_from, date_to=date_to,
                                                           sources=sources, recent=recent)]
        except RagError as exc:
            raise fail(exc) from None

    private = dict(api_visibility="private")
    write = dict(concurrency_id="index-write", concurrency_limit=1)

    with gr.Blocks(title="News QA", delete_cache=(3600, 3600)) as demo:
        turns = gr.State([])
        gr.Markdown("## News QA\nAsk the indexed news articles, in English or French. "
                    "Answers quote the articles; each [n] points to a source card under the answer.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4):
                        chatbot = gr.Chatbot(
                            elem_id="rag-chat", label="Conversation", show_label=False, height=620,
                            buttons=["copy", "copy_all"],
                            render_markdown=False, sanitize_html=True, allow_tags=False, latex_delimiters=[],
                            feedback_options=None, group_consecutive_messages=False, layout="bubble",
                            placeholder="Ask a question about the articles, or pick an example below.",
                        )
                        with gr.Row():
                            question = gr.Textbox(show_label=False, placeholder="Ask a question… (Enter to send)",
                                                  scale=6, elem_id="rag-question", autofocus=True)
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-ask")
                            new_btn = gr.Button("New chat", scale=1, min_width=100, elem_id="rag-new")
                        gr.Examples([[q] for q in EXAMPLES], inputs=[question], label="Examples")
                    with gr.Column(scale=1, min_width=240):
                        gr.Markdown("### Settings")
                        answerer = gr.Radio(backend.answerers, value="extractive", label="Answerer",
                                            info=None if backend.llm_name
                                            else "Start with --llm SPEC for a language model.")
                        k = gr.Slider(1, MAX_SOURCES, value=backend.default_k, step=1, label="Sources to retrieve")
                        recent = gr.Dropdown(RECENCY, value="", label="Published", elem_id="rag-recent")
                        date_from = gr.Textbox(label="From date", placeholder="YYYY-MM-DD")
                        date_to = gr.Textbox(label="To date", placeholder="YYYY-MM-DD")
                        # Custom values allowed: a source removed since the list was read is
                        # still a valid (empty) filter, not an error.
                        sources = gr.Dropdown(backend.sources(), value=[], multiselect=True, label="Sources",
                                              info="none chosen: all sources", allow_custom_value=True,
                                              elem_id="rag-sources")
                        show_timings = gr.Checkbox(value=True, label="Show timings")
                        info = gr.Markdown(elem_id="rag-index-info")
            with gr.Tab("Library", id="library") as library_tab:
                with gr.Row():
                    filter_box = gr.Textbox(label="Search the library", placeholder="title, source, date or id",
                                            scale=4, elem_id="rag-filter")
                    refresh_btn = gr.Button("Refresh", scale=1, min_width=90)
                articles = gr.Dataframe(headers=["Title", "Date", "Source", "Chunks", "ID"],
                                        datatype=["str", "str", "str", "number", "str"], interactive=False,
                                        wrap=True, column_widths=["46%", "12%", "14%", "8%", "20%"],
                                        elem_id="rag-articles", max_height=360)
                status = gr.HTML(elem_id="rag-status")
                with gr.Row(equal_height=False):
                    with gr.Column():
                        gr.Markdown(f"### Add files\n{', '.join(UPLOAD_SUFFIXES)} · up to "
                                    f"{fmt_bytes(backend.max_upload_bytes)} each")
                        files = gr.File(file_count="multiple", file_types=list(UPLOAD_SUFFIXES),
                                        label="Article files", elem_id="rag-files")
                        add_files_btn = gr.Button("Index the files", variant="primary", elem_id="rag-add-files")
                    with gr.Column():
                        gr.Markdown("### Paste an article")
                        p_title = gr.Textbox(label="Title", elem_id="rag-p-title")
                        p_text = gr.Textbox(label="Text", lines=6, elem_id="rag-p-text")
                        with gr.Row():
                            p_date = gr.Textbox(label="Date (optional)", placeholder="YYYY-MM-DD")
                            p_source = gr.Textbox(label="Source (optional)")
                        p_url = gr.Textbox(label="URL (optional)")
                        add_text_btn = gr.Button("Add the article", variant="primary", elem_id="rag-add-text")
                with gr.Accordion("Feeds", open=False, elem_id="rag-feeds-box"):
                    feeds_info = gr.Markdown(elem_id="rag-feeds-info")
                    feeds = gr.Dataframe(headers=["Feed", "URL", "Last read", "Last success", "Articles", "Last error"],
                                         datatype=["str", "str", "str", "str", "number", "str"], interactive=False,
                                         wrap=True, elem_id="rag-feeds", max_height=260)
                with gr.Row():
                    remove_id = gr.Textbox(label="Remove an article: its id (click a row to fill it in)",
                                           scale=4, elem_id="rag-remove-id")
                    remove_btn = gr.Button("Remove", variant="stop", scale=1, min_width=90, elem_id="rag-remove")

        chat_inputs = [question, chatbot, turns, answerer, k, date_from, date_to, sources, recent, show_timings]
        for trigger in (question.submit, ask_btn.click):
            trigger(respond, chat_inputs, [question, chatbot, turns], show_progress="minimal", **private)
        new_btn.click(new_chat, None, [chatbot, turns, question], queue=False, **private)
        chatbot.clear(lambda: [], None, turns, queue=False, **private)

        demo.load(refresh, filter_box, [articles, info], **private)
        library_tab.select(refresh, filter_box, [articles, info], **private)
        refresh_btn.click(refresh, filter_box, [articles, info], **private)
        for trigger in (demo.load, library_tab.select, refresh_btn.click):
            trigger(feeds_view, None, [feeds, feeds_info], show_progress="hidden", **private)
            trigger(source_choices, None, sources, show_progress="hidden", **private)
        filter_box.change(table, filter_box, articles, show_progress="hidden", **private)
        articles.select(pick_row, None, remove_id, **private)
        add_files_btn.click(add_files, [files, filter_box], [articles, info, status, files], **private, **write).then(
            source_choices, None, sources, show_progress="hidden", **private)
        add_text_btn.click(add_pasted, [p_title, p_text, p_date, p_source, p_url, filter_box],
                           [articles, info, status, p_title, p_text, p_date, p_source, p_url], **private, **write).then(
            source_choices, None, sources, show_progress="hidden", **private)
        remove_btn.click(remove, [remove_id, filter_box], [articles, info, status, remove_id], **private, **write)

        gr.api(ask, api_name="ask")
        gr.api(add_article, api_name="add_article", **write)
        gr.api(search, api_name="search")
    return demo
