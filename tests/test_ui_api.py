"""The web app's API, through gradio_client against the real app (app.py) on a real index;
and, first, the parts of ``rag.ui`` that need no server (uploads, rendering, settings)."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import threading
import time

import pytest

import rag
from rag import ui
from ui_server import APP, app_env, start_app

gradio_client = pytest.importorskip("gradio_client", reason="gradio_client is a dev dependency")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError, AuthenticationError  # noqa: E402

COALITION = "who coordinates the coalition?"


# -- rag.ui without a server (hash embedder: fast) ------------------------------------


@pytest.fixture
def backend(hash_config, seed_dir):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([seed_dir])
    b = ui.Backend(index, max_upload_bytes=2000)
    yield b
    index.close()


def uploads_of(backend):
    d = backend.index.path / "uploads"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_upload_is_copied_under_a_clean_unique_name(backend, tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("Harbour news\n\nThe harbour of Brest reopened on Monday after the storm.\n", encoding="utf-8")
    report = backend.add_uploads([f], names=["../../etc/passwd <b>.txt"])
    assert len(report.added) == 1
    [name] = uploads_of(backend)
    assert re.fullmatch(r"[0-9a-f]{12}-passwd-b\.txt", name)
    article = backend.index.get_article(report.added[0])
    assert article.origin == str(backend.index.path / "uploads" / name)
    assert ui.safe_upload_name("..\\..\\win.md", ".md").endswith("-win.md")
    assert ui.safe_upload_name("....md", ".md").endswith("-upload.md")


@pytest.mark.parametrize("name, content, message", [
    ("big.txt", "Title\n\n" + "word " * 1000, "the limit is"),
    ("notes.pdf", "Title\n\nbody", "unsupported file type"),
    ("archive.json.gz", "Title\n\nbody", "unsupported file type"),
    ("empty.md", "", "is empty"),
    ("bad.json", '[{"title": "t", "text": "fine"}, {"title": "no text"}]', "record 2"),
])
def test_bad_upload_is_refused_and_changes_nothing(backend, tmp_path, name, content, message):
    f = tmp_path / "upload"
    f.write_text(content, encoding="utf-8")
    before = backend.articles()
    with pytest.raises(rag.InputError, match=re.escape(message)):
        backend.add_uploads([f], names=[name])
    assert backend.articles() == before
    assert uploads_of(backend) == []


def test_one_bad_file_among_good_ones_adds_nothing(backend, tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("Good\n\nA fine article body.\n", encoding="utf-8")
    bad.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(rag.InputError, match="bad.txt"):
        backend.add_uploads([good, bad])
    assert len(backend.articles()) == 1 and uploads_of(backend) == []


def test_library_filter_and_remove(backend):
    article, report = backend.add_text("Ferry strike", "The Roscoff ferry crews went on strike.", "2025-06-12",
                                       "Ouest Tribune")
    assert report.added == [article.id]
    assert [r["id"] for r in backend.articles("ouest trib")] == [article.id]
    assert [r["id"] for r in backend.articles(article.id[:6])] == [article.id]
    assert backend.articles("no such thing") == []
    assert backend.remove(article.id) and not backend.remove(article.id)
    with pytest.raises(rag.InputError, match="id"):
        backend.remove("  ")


def test_settings_are_checked(backend):
    with pytest.raises(rag.InputError, match="ISO date"):
        ui.make_filters("09/08/2025", None)
    with pytest.raises(rag.InputError, match="ends"):
        ui.make_filters("2025-08-10", "2025-08-01")
    assert ui.make_filters(" ", "") is None
    assert ui.make_filters("2025-01-01", None).date_from == "2025-01-01"
    with pytest.raises(rag.InputError, match="from 1 to"):
        next(backend.stream("who coordinates the coalition?", k=0))
    with pytest.raises(rag.InputError, match="--llm"):
        backend.assistant("llm")
    assert backend.assistant("extractive") is backend.assistant("extractive")
    assert backend.assistant("extractive").config.k == 6


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("  ", None), ("ann:pw", ("ann", "pw")), ("ann:p:w", ("ann", "p:w")),
])
def test_parse_auth(value, expected):
    assert ui.parse_auth(value) == expected


@pytest.mark.parametrize("value", ["ann", "ann:", ":pw", " :pw"])
def test_parse_auth_rejects_malformed(value):
    with pytest.raises(rag.ConfigError, match="RAG_AUTH must be user:password"):
        ui.parse_auth(value)


def test_rendering_escapes_article_text_and_marks_the_quote():
    from rag.types import Answer, Article, Citation, Hit

    text = "First <b>para</b>.\nSecond <script>alert(1)</script> says & quotes. Third sentence.\nLast."
    quote = "Second <script>alert(1)</script> says & quotes."
    start = text.index(quote)
    art = Article("a1", "T <img src=x onerror=alert(2)>", text, "2025-01-02", "S&P", "javascript:alert(3)")
    cit = Citation(1, "a1", art.title, art.date, art.source, art.url, quote, start, start + len(quote))
    answer = Answer(question="q?", text=f"« {quote} » [1]", citations=[cit], timings_ms={"total": 12.0})
    out = ui.render_sources(answer, {"a1": art}.get, show_timings=True)
    assert "<script" not in out and "<img" not in out and "javascript:" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "S&amp;P" in out
    assert "<mark>Second &lt;script&gt;alert(1)&lt;/script&gt; says &amp; quotes.</mark> Third sentence." in out
    assert "rag-timings" in out and "total 12 ms" in out and "first token" not in out
    generated = Answer(question="q?", text="x [1]", citations=[cit], generated_tokens=41,
                       timings_ms={"answer": 5000.0, "first_token": 1000.0, "total": 5200.0})
    shown = ui.render_sources(generated, {"a1": art}.get, show_timings=True)
    assert "first token 1000 ms" in shown and "10.0 tokens/s" in shown  # 40 tokens after the first, in 4 s
    assert ui.render_answer(answer) == ui.esc(answer.text)
    refused = Answer(question="q", text="Not there.", refused=True,
                     related=[Hit("a1", art.title, None, None, None, 1, 0.5, "<i>x</i>", 0, 8)])
    assert "rag-refused" in ui.render_answer(refused) and "Not in the articles" in ui.render_answer(refused)
    related = ui.render_sources(refused, {"a1": art}.get, show_timings=False)
    assert "rag-related" in related and "&lt;i&gt;x&lt;/i&gt;" in related and "<mark>" not in related
    assert "rag-timings" not in related
    rewritten = Answer(question="Et quand <b>?", text="« x » [1]", standalone_question="Et quand <b>? (coalition)")
    shown = ui.render_answer(rewritten)
    assert "Searched for: Et quand &lt;b&gt;? (coalition)" in shown and "<b>" not in shown


@pytest.mark.parametrize("value, language, shown", [
    ("2025-08-10", "en", "10 Aug 2025"), ("2025-08-10", "fr", "10 août 2025"), ("2025-03-01", "fr", "1er mars 2025"),
    ("2025-03-01", "en", "1 Mar 2025"), ("2025-12-24T10:05:00+00:00", "fr", "24 déc. 2025"),
    ("2025-02-30x", "en", "2025-02-30x"), ("hier", "fr", "hier"), (None, "en", ""), ("2025-13-01", "en", "2025-13-01"),
])
def test_dates_are_shown_as_people_write_them(value, language, shown):
    from rag.ui.render import human_date

    assert human_date(value, language) == shown


def test_source_cards_have_ids_for_the_markers_to_link_to():
    from rag.types import Answer, Article, Citation

    text = "The council met on 2 May 2025. It voted for the bridge."
    art = Article("a1", "Bridge", text, "2025-05-02", "Gazette", None)
    cits = [Citation(1, "a1", "Bridge", "2025-05-02", "Gazette", None, text[:30], 0, 30),
            Citation(2, "a1", "Bridge", "2025-05-02", "Gazette", None, text[31:], 31, len(text))]
    answer = Answer(question="q", text="« It met » [1] and « voted » [2].", citations=cits, language="fr")
    cards = ui.render_sources(answer, {"a1": art}.get, show_timings=False, key="k1")
    assert "id='rag-src-k1-1'" in cards and "id='rag-src-k1-2'" in cards
    assert "2 mai 2025 · Gazette" in cards and "2025-05-02" not in cards
    # the answer stays text (the browser links its markers), and without a key the cards have no ids
    assert ui.render_answer(answer) == ui.esc(answer.text)
    assert "id=" not in ui.render_sources(answer, {"a1": art}.get, show_timings=False)


def test_importing_rag_ui_does_not_import_gradio():
    code = "import sys, rag, rag.ui; assert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the real app, through gradio_client -----------------------------------------------


@pytest.fixture(scope="module")
def server(e5_index, model_cache, tmp_path_factory):
    srv = start_app(e5_index, tmp_path_factory.mktemp("ui-api"), model_cache)
    yield srv
    srv.stop()


def client(url: str, **kw) -> Client:
    return Client(url, verbose=False, download_files=False, analytics_enabled=False, **kw)


@pytest.fixture(scope="module")
def api(server):
    return client(server.url)


@pytest.mark.slow
def test_endpoints_are_named(api):
    named = api.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/ask", "/add_article", "/search"} <= set(named)
    # UI-only events (chat, library) are not part of the API.
    assert len(named) == 3


@pytest.mark.slow
def test_ask_answers_the_coalition_question_with_citations(api):
    r = api.predict(COALITION, api_name="/ask")
    assert not r["refused"]
    assert "France" in r["text"] and "Royaume-Uni" in r["text"]
    assert "[1]" in r["text"]
    c = r["citations"][0]
    assert c["n"] == 1 and "coordination conjointe" in c["quote"]
    assert c["title"].startswith("«Coalition des volontaires»")
    assert c["end"] - c["start"] == len(c["quote"])
    assert set(r["timings_ms"]) >= {"retrieve", "answer", "total"}


@pytest.mark.slow
def test_ask_takes_settings_by_name(api):
    r = api.predict(question="Qui a annoncé la création de la coalition ?", k=3, api_name="/ask")
    assert "Keir Starmer" in r["text"] and r["citations"]


@pytest.mark.slow
def test_ask_takes_a_history_for_follow_ups(api):
    first = api.predict(COALITION, api_name="/ask")
    follow_up = "and when was it created?"
    for history in ([[COALITION, first["text"]]],
                    [{"role": "user", "content": COALITION}, {"role": "assistant", "content": first["text"]}]):
        r = api.predict(question=follow_up, history=history, api_name="/ask")
        assert not r["refused"], r
        assert r["standalone_question"].startswith(follow_up) and "coalition" in r["standalone_question"]
        assert "mars" in r["text"] and r["citations"]
    # without a history (as before), the same words name nothing
    alone = api.predict(question=follow_up, api_name="/ask")
    assert alone["refused"] and not alone["citations"]


def test_check_history_takes_pairs_and_messages_and_refuses_the_rest():
    from rag.ui.layout import MAX_HISTORY_TURNS, check_history

    assert check_history(None) == [] and check_history([]) == []
    assert check_history([["q", "a"]]) == [("q", "a")]
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "name": "x"}]
    assert check_history(msgs) == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert len(check_history([["q", "a"]] * (3 * MAX_HISTORY_TURNS))) == 2 * MAX_HISTORY_TURNS
    for bad, message in (("q", "must be a list"), ([["q"]], "turn 1"), ([["q", 3]], "turn 1"),
                         ([["q", "a"], {"role": "system", "content": "x"}], "turn 2"),
                         ([{"role": "user"}], "turn 1")):
        with pytest.raises(rag.InputError, match=message):
            check_history(bad)


@pytest.mark.slow
def test_ask_refuses_what_the_articles_do_not_say(api):
    r = api.predict("What is the capital of Peru?", api_name="/ask")
    assert r["refused"] and not r["citations"]
    assert r["related"], "a refusal lists the closest passages"


@pytest.mark.slow
def test_add_article_then_ask_finds_it(api):
    report = api.predict(
        "Ferry strike in Brittany",
        "Crews of the Roscoff ferry company went on strike on 12 June 2025 over night-shift pay. "
        "The strike cancelled the crossings to Plymouth for three days, the union CGT said.",
        "2025-06-12", "Ouest Tribune", "https://example.org/ferry",
        api_name="/add_article",
    )
    assert len(report["added"]) == 1 and report["chunks_added"] >= 1 and not report["problems"]
    r = api.predict("Why did the Roscoff ferry crews go on strike?", api_name="/ask")
    assert not r["refused"]
    assert any(c["article_id"] == report["article_id"] for c in r["citations"])
    cited = next(c for c in r["citations"] if c["article_id"] == report["article_id"])
    assert cited["source"] == "Ouest Tribune" and cited["date"] == "2025-06-12"
    # Adding it again changes nothing.
    again = api.predict("Ferry strike in Brittany", "Crews of the Roscoff ferry company went on strike on 12 June "
                        "2025 over night-shift pay. The strike cancelled the crossings to Plymouth for three days, "
                        "the union CGT said.", "2025-06-12", "Ouest Tribune", "https://example.org/ferry",
                        api_name="/add_article")
    assert again["unchanged"] == [report["article_id"]] and not again["added"]


@pytest.mark.slow
def test_search_returns_passages(api):
    hits = api.predict("coalition des volontaires", 3, api_name="/search")
    assert 1 <= len(hits) <= 3
    assert all({"title", "text", "score", "start", "end"} <= set(h) for h in hits)


@pytest.mark.slow
@pytest.mark.parametrize("args, endpoint, message", [
    (("",), "/ask", "empty"),
    (("   \n\t ",), "/ask", "empty"),
    (("x" * 20_000,), "/ask", "20,000 characters"),
    ((COALITION, "llm"), "/ask", "unknown answerer"),
    ((COALITION, "extractive", 6, "last tuesday"), "/ask", "ISO date"),
    ((COALITION, "extractive", 6, "", "", None, "", [["q"]]), "/ask", "history turn 1"),
    (("", ""), "/add_article", "empty"),
    (("A title", "   "), "/add_article", "text is empty"),
    (("x", 5), "/search", None),
])
def test_bad_input_gives_a_message_not_a_crash(api, args, endpoint, message):
    if message is None:  # a valid call among the bad ones: the server keeps serving
        assert api.predict(*args, api_name=endpoint)
        return
    with pytest.raises(AppError) as info:
        api.predict(*args, api_name=endpoint)
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


@pytest.mark.slow
def test_server_still_answers_after_bad_input(api):
    assert not api.predict(COALITION, api_name="/ask")["refused"]


@pytest.mark.slow
def test_concurrent_clients(server, capsys):
    questions = [COALITION, "Qui a annoncé la création de la coalition ?", "When will Putin and Trump meet?",
                 "Combien de pays compte la coalition des volontaires ?", "What does Russia say about foreign troops?"]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            c = client(server.url)
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread that hit it
            with lock:
                errors.append(f"client {i}: {exc!r}")
            return
        for q in questions:
            t0 = time.perf_counter()
            try:
                r = c.predict(q, api_name="/ask")
                assert r["text"], "empty answer"
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"client {i}, {q!r}: {exc!r}")
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)

    alone = []
    c = client(server.url)
    for q in questions:
        t0 = time.perf_counter()
        c.predict(q, api_name="/ask")
        alone.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - t0
    assert not errors, errors[:5]
    assert len(latencies) == 16 * 5
    q = statistics.quantiles(latencies, n=100)
    with capsys.disabled():
        print(f"\n/ask, 16 clients x 5 questions (--concurrency 2): p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p95 {q[94] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, {len(latencies) / wall:.1f} answers/s; "
              f"one client alone: median {statistics.median(alone) * 1000:.0f} ms")


def test_malformed_rag_auth_is_a_clear_error(tmp_path, model_cache):
    proc = subprocess.run([sys.executable, str(APP), "--index", str(tmp_path / "none")], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path,
                          env=app_env(tmp_path, model_cache, {"RAG_AUTH": "just-a-user"}))
    assert proc.returncode == 2
    assert "RAG_AUTH must be user:password" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_index_is_a_clear_error(tmp_path, model_cache):
    proc = subprocess.run([sys.executable, str(APP), "--index", str(tmp_path / "none")], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env=app_env(tmp_path, model_cache))
    assert proc.returncode == 1
    assert "no index at" in proc.stderr and "rag index add" in proc.stderr


@pytest.mark.slow
def test_login_from_rag_auth(e5_index, model_cache, tmp_path):
    srv = start_app(e5_index, tmp_path / "auth", model_cache, env={"RAG_AUTH": "editor:s3cret pass"})
    try:
        with pytest.raises(AuthenticationError):
            client(srv.url)
        with pytest.raises(ValueError, match="Could not login"):
            client(srv.url, auth=("editor", "wrong"))
        r = client(srv.url, auth=("editor", "s3cret pass")).predict(COALITION, api_name="/ask")
        assert not r["refused"]
    finally:
        srv.stop()


def test_login_is_throttled_and_locks_a_name_out_after_repeated_failures():
    from rag.ui.backend import LoginGuard

    now = [0.0]
    slept = []
    guard = LoginGuard("editor", "s3cret", max_failures=3, window=60, lockout=120,
                       clock=lambda: now[0], sleep=slept.append)
    assert guard("editor", "s3cret")
    assert not guard("editor", "wrong") and not guard("editor", "nope")
    assert slept == [0.25, 0.5]  # each failure waits longer
    assert not guard("editor", "again")  # third failure within the window: locked
    assert not guard("editor", "s3cret")  # even the right password, while locked
    now[0] += 121
    assert guard("editor", "s3cret")
    assert not guard("someone", "s3cret")


def test_the_app_refuses_an_article_too_long_for_one_call_and_says_what_to_run(tmp_path, hash_config):
    from rag.ui.backend import Backend

    backend = Backend(rag.Index.create(hash_config.index_dir, hash_config), max_article_chars=1_000)
    with pytest.raises(rag.InputError, match="rag index add"):
        backend.add_text("Long", "Une phrase assez longue pour compter. " * 100)
    big = tmp_path / "big.txt"
    big.write_text("Titre\n" + "Une phrase assez longue pour compter. " * 100, encoding="utf-8")
    with pytest.raises(rag.InputError, match="up to 1,000"):
        backend.add_uploads([big])
    assert backend.counts() == (0, 0)
    assert not list((hash_config.index_dir / "uploads").glob("*"))
