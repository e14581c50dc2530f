"""The saved conversations of the web chat (rag.serve.chats): a real SQLite file under tmp_path."""

from __future__ import annotations

import re
import sqlite3

import pytest

from rag.errors import IndexCorruptError, InputError
from rag.serve.chats import (CHATS_DB, MAX_TITLE_CHARS, ChatNotFoundError, ChatStore, Turn, chat_markdown,
                             title_from_question)

ANSWER = {
    "text": "The coalition is coordinated by France and the United Kingdom [1].",
    "refused": False,
    "citations": [{
        "n": 1, "article_id": "a1", "title": "Coalition des volontaires", "date": "2025-09-02",
        "source": "Le Monde", "url": "https://example.org/coalition?id=1",
        "quote": "sous la coordination conjointe de la France et du Royaume-Uni", "start": 10, "end": 70,
    }],
}


class Clock:
    """Times one second apart, so the order of the list is certain."""

    def __init__(self):
        self.t = 0

    def __call__(self) -> str:
        self.t += 1
        return f"2026-01-01T00:00:{self.t:02d}.000000+00:00"


@pytest.fixture
def store(tmp_path):
    with ChatStore(tmp_path, clock=Clock()) as s:
        yield s


def snapshot(store: ChatStore) -> list:
    db = sqlite3.connect(store.path)
    try:
        return [db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in ("chats", "turns")]
    finally:
        db.close()


def test_create_append_get_list_rename_delete(store, tmp_path):
    first = store.create("ann", "who coordinates the coalition?")
    assert store.append("ann", first, Turn("who coordinates the coalition?", ANSWER, "<p>a</p>", "<div>cards</div>")) == 1
    assert store.append("ann", first, Turn("and when was it created?", {"text": "In 2025 [1].", "citations": []})) == 2
    second = store.create("ann", "second chat")
    listed = store.list("ann")
    assert [c.id for c in listed] == [second, first]
    assert [c.turns for c in listed] == [0, 2]
    # a new turn brings its conversation to the top
    store.append("ann", first, Turn("a third question", {"text": "x"}))
    assert [c.id for c in store.list("ann")] == [first, second]

    chat = store.get("ann", first)
    assert chat.title == "who coordinates the coalition?"
    assert [t.question for t in chat.turns] == ["who coordinates the coalition?", "and when was it created?",
                                                "a third question"]
    assert chat.turns[0].answer == ANSWER
    assert chat.turns[0].sources_html == "<div>cards</div>"

    store.rename("ann", first, "  The   coalition  ")
    assert store.get("ann", first).title == "The coalition"
    store.delete("ann", second)
    assert [c.id for c in store.list("ann")] == [first]
    with pytest.raises(ChatNotFoundError):
        store.get("ann", second)
    # the file is in the index folder, and a new store (a restarted server) reads the same
    assert store.path == tmp_path / CHATS_DB
    with ChatStore(tmp_path) as again:
        assert again.get("ann", first).turns[0].answer == ANSWER


def test_users_see_only_their_own(store):
    ann = store.create("ann", "ann's chat")
    anon = store.create(None, "anonymous chat")
    assert [c.title for c in store.list("ann")] == ["ann's chat"]
    assert [c.title for c in store.list(None)] == ["anonymous chat"]
    assert store.list("bob") == []
    before = snapshot(store)
    for call in (lambda: store.get("bob", ann), lambda: store.rename("bob", ann, "mine now"),
                 lambda: store.delete("bob", ann), lambda: store.append("bob", ann, Turn("q", ANSWER)),
                 lambda: store.export_markdown(None, ann), lambda: store.delete("ann", anon)):
        with pytest.raises(ChatNotFoundError, match="no saved conversation"):
            call()
    assert snapshot(store) == before


@pytest.mark.parametrize("title, message", [
    ("", "cannot be empty"), ("   \n\t ", "cannot be empty"), ("x" * (MAX_TITLE_CHARS + 1), "at most"),
    (None, "must be text"), (42, "must be text"),
])
def test_bad_titles_are_refused_and_change_nothing(store, title, message):
    chat = store.create("ann", "kept title")
    before = snapshot(store)
    with pytest.raises(InputError, match=message):
        store.rename("ann", chat, title)
    with pytest.raises(InputError, match=message):
        store.create("ann", title)
    assert snapshot(store) == before


@pytest.mark.parametrize("chat_id", ["", "nope", "0" * 32, "../../etc/passwd", None, 7, "x" * 10_000])
def test_unknown_ids_are_refused_and_change_nothing(store, chat_id):
    store.append("ann", store.create("ann", "kept"), Turn("q", ANSWER))
    before = snapshot(store)
    for call in (lambda: store.get("ann", chat_id), lambda: store.rename("ann", chat_id, "t"),
                 lambda: store.delete("ann", chat_id), lambda: store.append("ann", chat_id, Turn("q", ANSWER)),
                 lambda: store.export_markdown("ann", chat_id)):
        with pytest.raises(ChatNotFoundError) as info:
            call()
        assert len(str(info.value)) < 200  # a huge id is not echoed back
    assert snapshot(store) == before


def test_bad_turns_are_refused_and_change_nothing(store):
    chat = store.create("ann", "kept")
    before = snapshot(store)
    with pytest.raises(InputError, match="needs its question"):
        store.append("ann", chat, Turn("  ", ANSWER))
    with pytest.raises(InputError, match="must be a dict"):
        store.append("ann", chat, Turn("q", "text"))
    with pytest.raises(InputError, match="cannot be stored"):
        store.append("ann", chat, Turn("q", {"text": object()}))
    assert snapshot(store) == before


def test_a_long_first_question_makes_a_short_title():
    q = "what did " + "the president of the republic say " * 10 + "?"
    title = title_from_question(q)
    assert len(title) <= MAX_TITLE_CHARS and title.endswith("…") and title.startswith("what did the president")
    assert title_from_question("  who   coordinates?  ") == "who coordinates?"


def test_markdown_export_has_the_answer_quotes_and_sources(store):
    chat = store.create("ann", "who coordinates the coalition?")
    store.append("ann", chat, Turn("who coordinates the coalition?", ANSWER))
    store.append("ann", chat, Turn("who won the 1998 world cup?",
                                   {"text": "The articles do not say.", "refused": True, "citations": []}))
    md = store.export_markdown("ann", chat)
    assert md.startswith("# who coordinates the coalition?\n")
    assert "## who coordinates the coalition?" in md
    assert "The coalition is coordinated by France and the United Kingdom [1]." in md
    assert "1. **Coalition des volontaires** (Le Monde, 2025-09-02) <https://example.org/coalition?id=1>" in md
    assert "   > sous la coordination conjointe de la France et du Royaume-Uni" in md
    assert "**Not in the articles.** The articles do not say." in md


def test_markdown_export_does_not_carry_markup_from_articles(store):
    hostile = dict(ANSWER, text="See [1] and [x](javascript:alert(1)) <script>alert(2)</script>",
                   citations=[dict(ANSWER["citations"][0], title="<img src=x onerror=alert(3)>",
                                   url="javascript:alert(4)", quote="*bold* [link](http://evil.example)")])
    chat = store.create("ann", "# heading <b>")
    store.append("ann", chat, Turn("q", hostile))
    md = store.export_markdown("ann", chat)
    assert "[1]" in md
    for raw in ("<script>", "<img", "[x](", "[link](", "<b>"):
        assert not re.search(r"(?<!\\)" + re.escape(raw), md), raw
    assert "javascript:alert(4)" not in md  # a URL that is not http(s) is left out
    assert md.startswith("# \\# heading \\<b\\>")


def test_a_file_that_is_not_a_chat_store_is_an_error(tmp_path):
    db = sqlite3.connect(tmp_path / CHATS_DB)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    db.commit()
    db.close()
    with pytest.raises(IndexCorruptError, match="not a conversation store"):
        ChatStore(tmp_path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / CHATS_DB).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(IndexCorruptError, match="cannot read"):
        ChatStore(tmp_path / "junk")


def test_chat_markdown_of_an_empty_chat(store):
    chat = store.get("ann", store.create("ann", "empty"))
    assert chat_markdown(chat).splitlines()[0] == "# empty"


def test_rebuilding_the_index_keeps_the_conversations(hash_config, seed_dir):
    import rag
    from rag.articles import read_articles

    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([a for a in read_articles([seed_dir]) if isinstance(a, rag.Article)])
    store_files = sorted(p.name for p in hash_config.index_dir.iterdir())
    with ChatStore(hash_config.index_dir) as store:
        chat = store.create("ann", "kept through a rebuild")
        store.append("ann", chat, Turn("q", ANSWER))
    # the conversation store is a file of its own: the index's files are as they were
    assert sorted(p.name for p in hash_config.index_dir.iterdir()) == sorted(store_files + [CHATS_DB])
    index.close()
    # new chunks: the rebuild re-embeds into a new folder, which replaces the old one
    rag.Index.rebuild(hash_config.index_dir, hash_config.with_(chunk_size=48)).close()
    with ChatStore(hash_config.index_dir) as store:
        assert store.get("ann", chat).turns[0].answer == ANSWER
