"""The Gradio page over a :class:`~rag.ui.backend.Backend`: Chat and Library tabs, handlers, and the API.

Gradio is imported inside the functions that build the app, so importing
``rag.ui`` (and this module) stays cheap. The page's style is ``style.css`` in
this package, read when the app is launched.
"""

import logging
import re
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path

from rag.errors import InputError, RagError
from rag.serve.chats import Turn, title_from_question
from rag.types import AddReport, Answer, Article, Citation, Hit
from rag.ui.backend import MAX_SOURCES, RECENCY, UPLOAD_SUFFIXES, Backend, UIConfig, fmt_bytes
from rag.ui.render import (add_progress_text, describe_report, esc, render_answer, render_error, render_first_token,
                           render_question, render_sources, render_status)

log = logging.getLogger(__name__)

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


#: Run in the browser once an answer is complete: the chat had followed the answer to its end;
#: bring the question back to the top of the view, so a long answer is read from its start.
SCROLL_TO_QUESTION = """() => {
  const chat = document.getElementById('rag-chat');
  const lift = () => {
    const users = chat ? chat.querySelectorAll('[data-testid="user"]') : [];
    const last = users[users.length - 1];
    if (!last) return;
    const row = last.closest('.message-row') || last;
    let box = row.parentElement;
    while (box && box !== chat && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
    if (!box || box === chat) return;  // the conversation fits: nothing to scroll
    // only when the view is still at the answer's end (where the chat's autoscroll put it), not
    // when the reader has scrolled elsewhere meanwhile
    if (box.scrollHeight - box.scrollTop - box.clientHeight > 40) return;
    box.scrollTo({top: row.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop - 8,
                  behavior: 'instant'});
  };
  // the chat scrolls to the end after it renders the last update: lift after it, more than once
  for (const ms of [60, 300, 900, 1500]) setTimeout(lift, ms);
}"""


#: Run in the browser after an answer or a reopened conversation: each [n] of an answer becomes a
#: link to card n under it. Done here, not in the answer's HTML, so that the chat's copy button
#: still copies the answer as plain text.
LINK_MARKERS = """() => {
  const bots = [...document.querySelectorAll('#rag-chat [data-testid="bot"]')];
  bots.forEach((bubble, i) => {
    const next = bots[i + 1];
    if (bubble.querySelector('.rag-sources') || !next || !next.querySelector('.rag-sources')) return;
    const ids = {};
    next.querySelectorAll('.rag-card[id]').forEach(card => {
      const n = card.querySelector('.rag-n');
      if (n) ids[n.textContent.trim()] = card.id;
    });
    const walker = document.createTreeWalker(bubble, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) {
      const node = walker.currentNode;
      if (/\\[\\d{1,2}\\]/.test(node.nodeValue) && !node.parentElement.closest('a, .rag-searched')) nodes.push(node);
    }
    for (const node of nodes) {
      const frag = document.createDocumentFragment();
      let last = 0;
      node.nodeValue.replace(/\\[(\\d{1,2})\\]/g, (m, n, at) => {
        if (!ids[n]) return m;
        frag.append(node.nodeValue.slice(last, at));
        const a = document.createElement('a');
        a.className = 'rag-ref'; a.href = '#' + ids[n]; a.textContent = m;
        frag.append(a);
        last = at + m.length;
        return m;
      });
      if (last) { frag.append(node.nodeValue.slice(last)); node.replaceWith(frag); }
    }
  });
}"""


def user_of(request) -> str | None:
    """The logged-in user of a request (None without a login: the anonymous user)."""
    return getattr(request, "username", None) or None


#: turns of history ``/ask`` takes (the oldest are dropped past it: a follow-up refers to recent ones)
MAX_HISTORY_TURNS = 50


def check_history(history) -> list:
    """The ``history`` of an ``/ask`` call as the assistant takes it: [question, answer] pairs or
    role/content messages, the last :data:`MAX_HISTORY_TURNS` of them.

    Raises:
        InputError: not a list, or a turn that is neither form (the message says which).
    """
    if history is None or history == "":
        return []
    if not isinstance(history, (list, tuple)):
        raise InputError(f"history must be a list of [question, answer] pairs or of role/content messages, "
                         f"got {type(history).__name__}")
    out = []
    for i, turn in enumerate(history[-2 * MAX_HISTORY_TURNS:]):
        if isinstance(turn, dict):
            if turn.get("role") not in ("user", "assistant") or not isinstance(turn.get("content"), str):
                raise InputError(f"history turn {i + 1}: a message needs a role (user or assistant) and a text "
                                 f"content")
            out.append({"role": turn["role"], "content": turn["content"]})
        elif (isinstance(turn, (list, tuple)) and len(turn) == 2 and all(isinstance(x, str) for x in turn)):
            out.append((turn[0], turn[1]))
        else:
            raise InputError(f"history turn {i + 1}: expected a [question, answer] pair of texts or a "
                             f"{{'role': ..., 'content': ...}} message")
    return out


def export_name(title: str) -> str:
    """A file name for a conversation's Markdown export: its title reduced to safe characters."""
    return re.sub(r"[^\w-]+", "-", title, flags=re.UNICODE).strip("-_")[:60] or "conversation"


# -- the Gradio app ---------------------------------------------------------------


def launch_kwargs(config: UIConfig) -> dict:
    """The bind address, login, upload cap and style, as ``Blocks.launch`` and ``gr.mount_gradio_app``
    both take them (:func:`rag.serve.server.create_app` passes them to the latter)."""
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
    def respond(question, chat, turns, chat_id, answerer, k, date_from, date_to, sources, recent, show_timings,
                request: gr.Request):
        from rag.retriever import clean_query

        try:
            question = clean_query(question or "")
            stream = backend.stream(question, list(turns or []), answerer=answerer, k=int(k),
                                    date_from=date_from, date_to=date_to, sources=sources, recent=recent)
        except RagError as exc:
            raise fail(exc) from None
        chat = list(chat or []) + [{"role": "user", "content": render_question(question)},
                                   {"role": "assistant", "content": "…"}]
        skip = gr.skip()
        yield "", chat, turns, skip, skip, skip
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
                    yield "", chat, turns, skip, skip, skip
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render_error(str(exc))}
            yield "", chat, turns, skip, skip, skip
            return
        key = uuid.uuid4().hex[:10]  # the cards' ids, unique in the page: the browser links [n] to them
        answer_html = render_answer(answer)
        chat[-1] = {"role": "assistant", "content": answer_html}
        sources = render_sources(answer, backend.index.get_article, show_timings=bool(show_timings), key=key)
        if sources:
            chat.append({"role": "assistant", "content": sources})
        turns = list(turns or []) + [(question, answer.text)]
        user = user_of(request)
        title = gr.skip()
        try:
            if not chat_id:
                title = title_from_question(question)
                chat_id = backend.chats.create(user, title)
            backend.chats.append(user, chat_id, Turn(question, answer_to_dict(answer), answer_html, sources))
        except RagError as exc:  # the answer is shown all the same; only saving it failed
            log.warning("the conversation could not be saved: %s", exc)
            gr.Warning(f"This answer was not saved: {exc}")
            yield "", chat, turns, skip, skip, skip
            return
        yield "", chat, turns, chat_id, chat_list_update(user, chat_id), title

    def new_chat():
        return [], [], "", None, gr.update(value=None), "", gr.update(value=None, visible=False)

    # -- saved conversations ---------------------------------------------------
    def chat_list_update(user, selected=None):
        choices = [(c.title, c.id) for c in backend.chats.list(user)]
        return gr.update(choices=choices, value=selected if any(v == selected for _, v in choices) else None)

    def list_chats(request: gr.Request):
        try:
            return chat_list_update(user_of(request))
        except RagError as exc:
            log.warning("the saved conversations cannot be read: %s", exc)
            return gr.update(choices=[], value=None)

    def open_chat(chat_id, request: gr.Request):
        try:
            saved = backend.chats.get(user_of(request), chat_id)
        except RagError as exc:
            raise fail(exc) from None
        messages, turns = [], []
        for t in saved.turns:
            messages.append({"role": "user", "content": render_question(t.question)})
            messages.append({"role": "assistant", "content": t.answer_html or esc(t.answer.get("text"))})
            if t.sources_html:
                messages.append({"role": "assistant", "content": t.sources_html})
            turns.append((t.question, str(t.answer.get("text") or "")))
        return messages, turns, saved.id, saved.title, gr.update(value=None, visible=False)

    def rename_chat(chat_id, title, request: gr.Request):
        user = user_of(request)
        try:
            if not chat_id:
                raise InputError("open a saved conversation (or ask a question) before renaming it")
            backend.chats.rename(user, chat_id, title)
        except RagError as exc:
            raise fail(exc) from None
        return chat_list_update(user, chat_id)

    def delete_chat(chat_id, request: gr.Request):
        user = user_of(request)
        try:
            if not chat_id:
                raise InputError("open a saved conversation before deleting it")
            backend.chats.delete(user, chat_id)
        except RagError as exc:
            raise fail(exc) from None
        return [], [], None, chat_list_update(user), "", gr.update(value=None, visible=False)

    def export_chat(chat_id, request: gr.Request):
        try:
            if not chat_id:
                raise InputError("open a saved conversation (or ask a question) before exporting it")
            user = user_of(request)
            text = backend.chats.export_markdown(user, chat_id)
            title = backend.chats.get(user, chat_id).title
        except RagError as exc:
            raise fail(exc) from None
        path = export_dir / chat_id / f"{export_name(title)}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return gr.update(value=str(path), visible=True)

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
            date_to: str = "", sources: list[str] | None = None, recent: str = "",
            history: list | None = None) -> dict:
        """Answer a question from the indexed articles; with history, as a follow-up in that conversation.

        Filters: date_from/date_to (YYYY-MM-DD), sources (names), recent (7d, 2w, 3m, 1y).
        history: the earlier turns, oldest first, as [question, answer] pairs or as
        {"role": "user"|"assistant", "content": text} messages (none: a question on its own).
        Returns the answer text with [n] markers, its citations (quote, article, offsets),
        whether it was refused, the related passages when it was, the question searched
        for (a follow-up rewritten), and stage timings.
        """
        try:
            return answer_to_dict(backend.ask(question, history=check_history(history), answerer=answerer, k=k,
                                              date_from=date_from, date_to=date_to, sources=sources,
                                              recent=recent))
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

    export_dir = Path(tempfile.mkdtemp(prefix="rag-chat-exports-"))

    with gr.Blocks(title="News QA", delete_cache=(3600, 3600)) as demo:
        turns = gr.State([])
        chat_id = gr.State(None)
        gr.Markdown("## News QA\nAsk the indexed news articles, in English or French. "
                    "Answers quote the articles; each [n] points to a source card under the answer.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=220, elem_id="rag-chats-box"):
                        gr.Markdown("### Conversations")
                        chat_list = gr.Radio([], value=None, label="Saved conversations", show_label=False,
                                             elem_id="rag-chat-list", info="newest first")
                        chat_title = gr.Textbox(label="Title", placeholder="open or start a conversation",
                                                elem_id="rag-chat-title")
                        with gr.Row():
                            rename_btn = gr.Button("Rename", size="sm", min_width=60, elem_id="rag-chat-rename")
                            delete_btn = gr.Button("Delete", size="sm", variant="stop", min_width=60,
                                                   elem_id="rag-chat-delete")
                        export_btn = gr.Button("Export as Markdown", size="sm", elem_id="rag-chat-export")
                        export_file = gr.File(label="Markdown export", visible=False, interactive=False,
                                              elem_id="rag-chat-file")
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
                # under the forms: their progress bar and result show where the button was pressed
                status = gr.HTML(elem_id="rag-status")
                with gr.Accordion("Feeds", open=False, elem_id="rag-feeds-box"):
                    feeds_info = gr.Markdown(elem_id="rag-feeds-info")
                    feeds = gr.Dataframe(headers=["Feed", "URL", "Last read", "Last success", "Articles", "Last error"],
                                         datatype=["str", "str", "str", "str", "number", "str"], interactive=False,
                                         wrap=True, elem_id="rag-feeds", max_height=260)
                with gr.Row():
                    remove_id = gr.Textbox(label="Remove an article: its id (click a row to fill it in)",
                                           scale=4, elem_id="rag-remove-id")
                    remove_btn = gr.Button("Remove", variant="stop", scale=1, min_width=90, elem_id="rag-remove")

        chat_inputs = [question, chatbot, turns, chat_id, answerer, k, date_from, date_to, sources, recent,
                       show_timings]
        for trigger in (question.submit, ask_btn.click):
            trigger(respond, chat_inputs, [question, chatbot, turns, chat_id, chat_list, chat_title],
                    show_progress="minimal", **private).then(
                None, js=f"() => {{ for (const ms of [50, 400, 1000]) setTimeout({LINK_MARKERS}, ms); "
                         f"({SCROLL_TO_QUESTION})(); }}", **private)
        new_btn.click(new_chat, None, [chatbot, turns, question, chat_id, chat_list, chat_title, export_file],
                      queue=False, **private)
        chatbot.clear(lambda: ([], None, gr.update(value=None)), None, [turns, chat_id, chat_list], queue=False,
                      **private)
        demo.load(list_chats, None, chat_list, show_progress="hidden", **private)
        chat_list.input(open_chat, chat_list, [chatbot, turns, chat_id, chat_title, export_file], **private).then(
            None, js=f"() => {{ for (const ms of [50, 400, 1000]) setTimeout({LINK_MARKERS}, ms); }}", **private)
        rename_btn.click(rename_chat, [chat_id, chat_title], chat_list, **private)
        chat_title.submit(rename_chat, [chat_id, chat_title], chat_list, **private)
        delete_btn.click(delete_chat, chat_id, [chatbot, turns, chat_id, chat_list, chat_title, export_file],
                         **private)
        export_btn.click(export_chat, chat_id, export_file, **private)

        demo.load(refresh, filter_box, [articles, info], **private)
        library_tab.select(refresh, filter_box, [articles, info], **private)
        refresh_btn.click(refresh, filter_box, [articles, info], **private)
        for trigger in (demo.load, library_tab.select, refresh_btn.click):
            trigger(feeds_view, None, [feeds, feeds_info], show_progress="hidden", **private)
            trigger(source_choices, None, sources, show_progress="hidden", **private)
        filter_box.change(table, filter_box, articles, show_progress="hidden", **private)
        articles.select(pick_row, None, remove_id, **private)
        # One progress bar, over the status line, not one over each field the handler clears.
        add_files_btn.click(add_files, [files, filter_box], [articles, info, status, files], show_progress_on=status,
                            **private, **write).then(
            source_choices, None, sources, show_progress="hidden", **private)
        add_text_btn.click(add_pasted, [p_title, p_text, p_date, p_source, p_url, filter_box],
                           [articles, info, status, p_title, p_text, p_date, p_source, p_url], show_progress_on=status,
                           **private, **write).then(
            source_choices, None, sources, show_progress="hidden", **private)
        remove_btn.click(remove, [remove_id, filter_box], [articles, info, status, remove_id], **private, **write)

        gr.api(ask, api_name="ask")
        gr.api(add_article, api_name="add_article", **write)
        gr.api(search, api_name="search")
    return demo
