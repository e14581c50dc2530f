"""The web app in a real browser: Debian's Chromium driven by Playwright against the real app.py.

Screenshots go to $RAG_TEST_ARTIFACTS (default <repo>/test-artifacts, ignored by git). With
RAG_UPDATE_SCREENSHOT=1 the coalition answer also replaces docs/screenshot-coalition.png, the
README's picture; otherwise a test run leaves the checkout as it was.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ui_server import ROOT, start_app

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
expect = sync_api.expect

ARTIFACTS = Path(os.environ.get("RAG_TEST_ARTIFACTS") or ROOT / "test-artifacts")
DOCS_SCREENSHOT = ROOT / "docs" / "screenshot-coalition.png"
#: The library table's title cells, one per row shown (the Dataframe is a virtual grid, not <tr>s).
TITLE_CELLS = '#rag-articles [role="gridcell"][data-col="0"]'
VIEWPORT = {"width": 1360, "height": 940}
#: For page actions (context.set_default_timeout) and, below, for every `expect` assertion,
#: whose own 5 s default is what failed on a busy 2-core CI machine (issue 10, finding 9).
TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)

COMET_TXT = """Lindholm Observatory finds a new comet

The Lindholm Observatory in northern Sweden discovered a new comet, named C/2025 K7, on 14 May 2025.
Astronomers there said the comet will be visible with binoculars from the Nordic countries in October.
"""

HOSTILE_TITLE = 'Zorblax council <script>window.__pwned=1</script> <img src=x onerror="window.__pwned=2">'
HOSTILE_TEXT = (
    "The Zorblax council voted on 4 May 2025 to build a glass bridge over the Vltava river. "
    "<script>window.__pwned=1; alert('script ran')</script> "
    "The glass bridge will cost 40 million euros, the council said. "
    "<img src=x onerror=\"window.__pwned=2; alert('onerror ran')\"> "
    "[click me](javascript:alert('markdown link ran')) ![pixel](http://127.0.0.1:9/pixel.png) $$x^2$$"
)


@pytest.fixture(scope="module")
def server(e5_index, model_cache, tmp_path_factory):
    srv = start_app(e5_index, tmp_path_factory.mktemp("ui-browser"), model_cache)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def open_page(browser, url: str):
    """A page in a fresh context on ``url`` that records every dialog (alert, confirm) a script opens."""
    context = browser.new_context(viewport=VIEWPORT, permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.dialogs, pg.errors = [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(url)
    expect(pg.locator("#rag-index-info")).to_contain_text("article")
    return pg


@pytest.fixture
def page(browser, server):
    pg = open_page(browser, server.url)
    yield pg
    pg.context.close()
    assert pg.errors == [], "JavaScript errors in the page"


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def ask(page, question: str):
    """Ask in the chat; return the finished answer's bubble and its sources bubble."""
    done = page.locator("#rag-chat .rag-sources")
    before = done.count()
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")
    expect(done).to_have_count(before + 1)
    expect(box).to_have_value("")
    bots = page.locator('#rag-chat [data-testid="bot"]')
    return bots.nth(bots.count() - 2), done.last


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def add_pasted(page, title: str, text: str) -> str:
    open_tab(page, "Library")
    page.locator("#rag-p-title textarea, #rag-p-title input").first.fill(title)
    page.locator("#rag-p-text textarea").fill(text)
    page.locator("#rag-add-text").click()
    status = page.locator("#rag-status .rag-status")
    expect(status).to_contain_text("added 1 article")
    return status.inner_text()


def test_coalition_answer_follow_up_copy_and_new_chat(page):
    answer, sources = ask(page, "who coordinates the coalition?")
    expect(answer).to_contain_text("France")
    expect(answer).to_contain_text("Royaume-Uni")
    expect(answer).to_contain_text("[1]")
    card = sources.locator(".rag-card").first
    expect(card.locator(".rag-title")).to_contain_text("Coalition des volontaires")
    expect(card.locator(".rag-para mark")).to_contain_text("coordination conjointe de la France et du Royaume-Uni")
    # the quote sits in its paragraph, and the whole article is one click away
    expect(card.locator(".rag-para")).to_contain_text("rassemble plus de 30 pays")
    expect(card.locator("details .rag-article")).to_be_hidden()
    card.locator("details summary").click()
    expect(card.locator("details .rag-article")).to_contain_text("Sunday Times")
    card.locator("details summary").click()
    expect(sources.locator(".rag-timings")).to_contain_text("total")
    path = shot(page, "coalition")
    if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOT)

    # The chatbot's copy button copies the answer text, not markup.
    copy = page.locator('#rag-chat .message-row.bot-row:not(:has(.rag-sources)) + .message-buttons '
                        'button[aria-label="Copy message"]')
    copy.first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "coordination conjointe" in copied and "<" not in copied

    follow, sources2 = ask(page, "and when was it created?")
    expect(follow).to_contain_text("mars")
    expect(sources2.locator(".rag-para mark").first).to_contain_text("mars")
    shot(page, "follow-up")

    page.locator("#rag-new").click()
    expect(page.locator('#rag-chat [data-testid="bot"]')).to_have_count(0)
    # After "New chat" the question stands alone: nothing is carried over from the coalition.
    answer, _ = ask(page, "When will Putin and Trump meet?")
    expect(answer).to_contain_text("15 août")
    assert page.dialogs == []


def test_refused_answer_is_marked_and_shows_related_passages(page):
    answer, sources = ask(page, "What is the capital of Peru?")
    refused = answer.locator(".rag-refused")
    expect(refused).to_be_visible()
    expect(refused.locator(".rag-badge")).to_have_text(re.compile("Not in the articles", re.I))
    expect(sources.locator(".rag-label").first).to_contain_text("do not answer")
    assert sources.locator(".rag-card-related").count() >= 1
    expect(sources.locator(".rag-card-related mark")).to_have_count(0)
    page.locator('#rag-chat [data-testid="user"]').last.evaluate("e => e.scrollIntoView({block: 'start'})")
    shot(page, "refused")


def test_uploaded_article_is_cited_at_once_then_removed(page, server, tmp_path):
    upload = tmp_path / "comet report (draft) #1.txt"
    upload.write_text(COMET_TXT, encoding="utf-8")
    uploads = server.index_dir / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()

    open_tab(page, "Library")
    page.locator("#rag-files input[type=file]").set_input_files(str(upload))
    expect(page.locator("#rag-files")).to_contain_text("comet report")
    page.locator("#rag-add-files").click()
    status = page.locator("#rag-status .rag-status")
    expect(status).to_contain_text("added 1 article")
    expect(page.locator("#rag-articles")).to_contain_text("Lindholm Observatory finds a new comet")
    shot(page, "library-after-upload")

    # The file was copied into <index>/uploads/ under a new, clean name, and nowhere else in the index.
    new = set(uploads.iterdir()) - before
    assert len(new) == 1
    saved = new.pop()
    assert re.fullmatch(r"[0-9a-f]{12}-comet-report-draft-1\.txt", saved.name)
    assert saved.read_text(encoding="utf-8") == COMET_TXT

    # The library filter keeps only matching rows.
    page.locator("#rag-filter textarea, #rag-filter input").first.fill("lindholm")
    titles = page.locator(TITLE_CELLS)
    expect(titles).to_have_count(1)
    expect(titles.first).to_contain_text("Lindholm")

    open_tab(page, "Chat")
    answer, sources = ask(page, "Which observatory discovered comet C/2025 K7?")
    expect(answer).to_contain_text("Lindholm")
    expect(sources.locator(".rag-card .rag-title").first).to_contain_text("Lindholm Observatory finds a new comet")
    shot(page, "uploaded-article-answer")

    # Remove it: click its row (fills in the id), then Remove.
    open_tab(page, "Library")
    titles.first.click()
    expect(page.locator("#rag-remove-id textarea, #rag-remove-id input").first).to_have_value(re.compile(r"\w{8,}"))
    page.locator("#rag-remove").click()
    expect(status).to_contain_text("Removed article")
    expect(page.locator("#rag-articles")).not_to_contain_text("Lindholm")
    open_tab(page, "Chat")
    answer, sources = ask(page, "Which observatory discovered comet C/2025 K7?")
    expect(sources).not_to_contain_text("Lindholm Observatory finds a new comet")


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", b"", "is empty"),
    ("binary.txt", bytes(range(256)) * 40, "binary"),
    ("no-body.md", b"# Just a title\n", "no body text"),
    ("broken.jsonl", b'{"title": "ok", "text": "fine"}\n{not json\n', "invalid JSON"),
], ids=["empty", "binary", "title-only", "one-bad-record"])
def test_bad_upload_gives_a_message_and_changes_nothing(page, server, tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    uploads = server.index_dir / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()
    open_tab(page, "Library")
    table = page.locator("#rag-articles")
    expect(table).to_contain_text("Coalition des volontaires")
    rows_before = page.locator(TITLE_CELLS).count()
    page.locator("#rag-files input[type=file]").set_input_files(str(bad))
    expect(page.locator("#rag-files")).to_contain_text(name.split(".")[0])
    page.locator("#rag-add-files").click()
    status = page.locator("#rag-status .rag-status-error")
    expect(status).to_contain_text(message)
    expect(status).to_contain_text(name)
    assert page.locator(TITLE_CELLS).count() == rows_before
    assert (set(uploads.iterdir()) if uploads.exists() else set()) == before
    if name == "empty.txt":
        shot(page, "bad-upload")


def test_hostile_article_runs_nothing(page):
    add_pasted(page, HOSTILE_TITLE, HOSTILE_TEXT)
    expect(page.locator("#rag-articles")).to_contain_text("<script>window.__pwned=1</script>")

    open_tab(page, "Chat")
    answer, sources = ask(page, "How much will the Zorblax glass bridge cost?")
    expect(answer).to_contain_text("40 million euros")
    card = sources.locator(".rag-card").first
    # The markup is shown as text...
    expect(card.locator(".rag-title")).to_contain_text(HOSTILE_TITLE)
    card.locator("details summary").click()
    expect(card.locator(".rag-article")).to_contain_text("<script>window.__pwned=1; alert('script ran')</script>")
    expect(card.locator(".rag-article")).to_contain_text(
        """<img src=x onerror="window.__pwned=2; alert('onerror ran')">""")
    expect(card.locator(".rag-article")).to_contain_text("[click me](javascript:alert('markdown link ran'))")
    shot(page, "hostile-article")
    # ...and none of it became elements, ran, or opened a dialog.
    page.wait_for_timeout(500)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.dialogs == []
    assert page.locator('#rag-chat img[src="x"], #rag-chat img[src*="pixel"], #rag-chat script').count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    assert page.locator("#rag-chat .katex").count() == 0


LLM_REPLY = "The coalition is jointly coordinated by France and the United Kingdom"


def llm_reply(body: dict) -> str:
    """A model that cites, by the number the prompt gave it, the source with the answer."""
    prompt = body["messages"][-1]["content"]
    n = next((b.lstrip("[").split("]")[0] for b in prompt.split("\n\n[") if "coordination conjointe" in b), "1")
    return f"{LLM_REPLY} [{n}]."


@pytest.fixture(scope="module")
def fake_llm():
    from fake_llm_server import FakeChatServer

    with FakeChatServer(llm_reply) as fake:
        yield fake


@pytest.fixture(scope="module")
def llm_server(e5_index, model_cache, tmp_path_factory, fake_llm):
    srv = start_app(e5_index, tmp_path_factory.mktemp("ui-llm"), model_cache,
                    args=["--llm", f"openai:{fake_llm.base_url}#fake-model"])
    yield srv
    srv.stop()


def test_language_model_answer_and_failure_notice(browser, llm_server, fake_llm):
    page = open_page(browser, llm_server.url)
    try:
        page.get_by_label(re.compile("Language model")).check()
        answer, sources = ask(page, "who coordinates the coalition?")
        expect(answer).to_contain_text(LLM_REPLY)
        expect(answer).to_contain_text("[1]")
        expect(sources.locator(".rag-para mark").first).to_contain_text("coordination conjointe")
        expect(sources.locator(".rag-timings")).to_contain_text(re.compile(r"llm:openai:\S+#fake-model"))
        expect(sources.locator(".rag-notice")).to_have_count(0)

        fake_llm.status = 500  # the model now fails: the extractive answer, with a visible notice
        answer, sources = ask(page, "Qui a annoncé la création de la coalition ?")
        expect(sources.locator(".rag-notice")).to_contain_text("The language model failed")
        expect(answer).to_contain_text("Keir Starmer")
        shot(page, "llm-failure-notice")
    finally:
        fake_llm.status = 200
        page.context.close()


def test_conversation_survives_reload_and_restart_and_exports_as_markdown(browser, e5_index, model_cache, tmp_path):
    """Issue 13, item 4: a conversation is saved in the index folder, listed in the sidebar, reopened
    with its source cards after a reload and after a restart of the server, renamed, exported as
    Markdown with its sources, and deleted."""
    question = "When did the Lindholm Observatory discover comet C/2025 K7?"
    url = "https://example.org/science/lindholm-comet"
    chat_list = "#rag-chat-list label"
    first = start_app(e5_index, tmp_path / "first", model_cache)
    try:
        pg = open_page(browser, first.url)
        open_tab(pg, "Library")
        title, _, text = COMET_TXT.partition("\n\n")
        pg.locator("#rag-p-title textarea, #rag-p-title input").first.fill(title)
        pg.locator("#rag-p-text textarea").fill(text)
        pg.get_by_label("Date (optional)").fill("2025-05-15")
        pg.get_by_label("URL (optional)").fill(url)
        pg.locator("#rag-add-text").click()
        expect(pg.locator("#rag-status .rag-status")).to_contain_text("added 1 article")
        open_tab(pg, "Chat")
        answer, sources = ask(pg, question)
        expect(answer).to_contain_text("14 May 2025")
        expect(sources.locator(".rag-card .rag-title").first).to_contain_text("Lindholm Observatory")
        expect(sources.locator(".rag-card .rag-meta").first).to_contain_text("15 May 2025")  # not 2025-05-15
        # [1] links to its card
        card_id = sources.locator(".rag-card").first.get_attribute("id")
        answer.locator("a.rag-ref", has_text="[1]").click()
        expect(pg).to_have_url(re.compile(f"#{card_id}$"))
        expect(pg.locator(f"#{card_id}")).to_be_in_viewport()
        expect(pg.locator(chat_list)).to_have_count(1)
        expect(pg.locator(chat_list).first).to_contain_text(question)
        expect(pg.locator("#rag-chat-title input, #rag-chat-title textarea").first).to_have_value(question)

        pg.reload()
        expect(pg.locator("#rag-index-info")).to_contain_text("article")
        expect(pg.locator("#rag-chat .rag-card")).to_have_count(0)
        pg.locator(chat_list, has_text=question).click()
        expect(pg.locator("#rag-chat .rag-card .rag-title").first).to_contain_text("Lindholm Observatory")
        expect(pg.locator("#rag-chat .rag-card .rag-para mark").first).to_contain_text("14 May 2025")
        pg.context.close()
        assert pg.errors == []
    finally:
        first.stop()
    assert (first.index_dir / "chats.sqlite").is_file()

    # a new server process on the same index folder
    second = start_app(first.index_dir, tmp_path / "second", model_cache, copy=False)
    try:
        pg = open_page(browser, second.url)
        entry = pg.locator(chat_list, has_text=question)
        expect(entry).to_have_count(1)
        entry.click()
        expect(pg.locator("#rag-chat .rag-card .rag-title").first).to_contain_text("Lindholm Observatory")
        expect(pg.locator("#rag-chat .rag-card .rag-meta a")).to_have_attribute("href", url)
        card_id = pg.locator("#rag-chat .rag-card").first.get_attribute("id")
        expect(pg.locator("#rag-chat a.rag-ref").first).to_have_attribute("href", f"#{card_id}")  # reopened: linked
        # a follow-up goes on in the same conversation (it is not a new one)
        answer, _ = ask(pg, "Where will the comet be visible?")
        expect(answer).to_contain_text("Nordic")
        expect(pg.locator(chat_list)).to_have_count(1)

        title_box = pg.locator("#rag-chat-title input, #rag-chat-title textarea").first
        title_box.fill("Comet K7")
        pg.locator("#rag-chat-rename").click()
        expect(pg.locator(chat_list).first).to_have_text("Comet K7")

        pg.locator("#rag-chat-export").click()
        link = pg.locator("#rag-chat-file a[href]").first
        expect(link).to_have_attribute("download", "Comet-K7.md")
        md = pg.request.get(link.get_attribute("href")).text()
        assert md.startswith("# Comet K7\n")
        assert f"## {question}" in md
        assert "14 May 2025" in md and "Nordic" in md
        assert "**Lindholm Observatory finds a new comet** (2025-05-15)" in md
        assert f"<{url}>" in md
        assert re.search(r"^   > .*discovered a new comet", md, re.MULTILINE)
        shot(pg, "saved-conversation")

        pg.locator("#rag-chat-delete").click()
        expect(pg.locator(chat_list)).to_have_count(0)
        expect(pg.locator("#rag-chat .rag-card")).to_have_count(0)
        pg.context.close()
        assert pg.errors == []
    finally:
        second.stop()


#: The progress trackers the page shows (Gradio draws one over each component it is told to).
VISIBLE_TRACKERS = """() => [...document.querySelectorAll('[data-testid="status-tracker"]')]
    .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height > 0 && e.innerText.trim())
    .map(e => (e.closest('[id]') || {}).id || '?')"""


def test_indexing_an_article_shows_one_progress_bar(page):
    """Issue 13, item 5: one progress bar (under the form, where the button was pressed), not one
    over each of the seven fields the handler fills or clears."""
    open_tab(page, "Library")
    page.locator("#rag-p-title textarea, #rag-p-title input").first.fill("The harbour of Zorblax")
    text = "\n".join(f"Paragraph {i}: the harbour of Zorblax counted {i} ships and {2 * i} cranes in the spring."
                     for i in range(120))
    page.locator("#rag-p-text textarea").fill(text)
    page.locator("#rag-add-text").click()
    expect(page.locator('#rag-status [data-testid="status-tracker"]')).to_contain_text("Embedding and indexing")
    seen = page.evaluate(VISIBLE_TRACKERS)
    assert seen == ["rag-status"], seen
    expect(page.locator("#rag-status .rag-status")).to_contain_text("added 1 article")
    remove_id = page.locator("#rag-status .rag-status").inner_text().split("(id ")[1].split(")")[0]
    page.locator("#rag-remove-id textarea, #rag-remove-id input").first.fill(remove_id)
    page.locator("#rag-remove").click()
    expect(page.locator("#rag-status .rag-status")).to_contain_text("Removed article")


def test_after_a_long_answer_its_question_stays_in_view(page):
    """Issue 13, item 5: the chat followed a long answer to its end, out of sight of its question;
    once the answer is complete, the question is brought back to the top of the view."""
    filler = " ".join(f"In week {i} the Quillby ferry carried {100 + i} passengers between the two islands of the "
                      f"bay, the harbour office said." for i in range(40))
    add_pasted(page, "Quillby ferry record year",
               f"The Quillby ferry service began on 3 March 2024 with two boats. {filler}\nAnother paragraph.")
    open_tab(page, "Chat")
    question = "When did the Quillby ferry service begin?"
    answer, sources = ask(page, question)
    expect(answer).to_contain_text("3 March 2024")
    expect(sources).to_contain_text("week 39")  # the card holds the whole long paragraph
    box = page.evaluate("""() => { const c = document.querySelector('#rag-chat .bubble-wrap');
        return [c.scrollHeight, c.clientHeight]; }""")
    assert box[0] > box[1] + 200, "the answer is not long enough to test this"
    # the question's top comes within the chat's view, near its top (the chat had scrolled to the end)
    page.wait_for_function("""() => { const c = document.querySelector('#rag-chat .bubble-wrap');
        const u = [...c.querySelectorAll('[data-testid="user"]')].pop();
        const top = u.getBoundingClientRect().top - c.getBoundingClientRect().top;
        return top >= 0 && top <= 120; }""", timeout=5000)
    page.wait_for_timeout(1600)  # and it stays there (the chat does not scroll back to the end)
    expect(page.locator('#rag-chat [data-testid="user"]', has_text=question).last).to_be_in_viewport()


def test_with_a_login_conversations_belong_to_the_user(browser, e5_index, model_cache, tmp_path):
    import sqlite3

    from rag.serve.chats import ChatStore, Turn

    srv = start_app(e5_index, tmp_path / "app", model_cache, env={"RAG_AUTH": "editor:s3cret-pass"})
    try:
        # a conversation of the anonymous user, from before the login was set: not listed for editor
        with ChatStore(srv.index_dir) as store:
            store.append(None, store.create(None, "anonymous question"), Turn("anonymous question", {"text": "x"}))
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        pg = context.new_page()
        pg.goto(srv.url)
        pg.get_by_label("username").fill("editor")
        pg.get_by_label("password").fill("s3cret-pass")
        pg.get_by_role("button", name="Login").click()
        expect(pg.locator("#rag-index-info")).to_contain_text("article")
        expect(pg.locator("#rag-chat-list label")).to_have_count(0)
        ask(pg, "who coordinates the coalition?")
        expect(pg.locator("#rag-chat-list label")).to_have_count(1)
        context.close()
        db = sqlite3.connect(srv.index_dir / "chats.sqlite")
        rows = db.execute("SELECT user, title FROM chats ORDER BY created").fetchall()
        db.close()
        assert rows == [("", "anonymous question"), ("editor", "who coordinates the coalition?")]
    finally:
        srv.stop()
