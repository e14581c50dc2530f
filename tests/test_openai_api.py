"""``rag serve`` and its OpenAI-compatible API: the official ``openai`` client against the real
server on a real e5 index of the seed article (streamed and not, follow-ups, refusals, a
login), raw HTTP for malformed requests, and first the request/response translation alone."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zipfile

import pytest

import rag
from rag.serve.openai_compat import APIError, answer_text, model_ids, parse_body, parse_chat_request, sources_block
from rag.serve.openai_routes import credentials
from rag.types import Answer, Citation, Copy
from test_startup import loaded, loaded_modules
from ui_server import RAG_SERVE, ROOT, app_env, start_app

openai = pytest.importorskip("openai", reason="openai is a dev dependency")

COALITION = "who coordinates the coalition?"
FOLLOW_UP = "and when was it created?"
MODELS = model_ids([("Extractive (quotes the articles)", "extractive")])


# -- the translation, without a server ---------------------------------------------------


def user(text):
    return {"role": "user", "content": text}


def test_a_conversation_becomes_the_question_and_its_history():
    req = parse_chat_request({"model": "rag-extractive", "messages": [
        {"role": "system", "content": "You are helpful."}, user(COALITION),
        {"role": "assistant", "content": "« ... » [1]\n\nSources: ..."},
        {"role": "user", "content": [{"type": "text", "text": "and when"},
                                     {"type": "text", "text": "was it created?"}]},
    ], "temperature": 0.2, "max_tokens": 50, "stream": True, "k": 4, "sources": "Le Monde", "recent": "1y"}, MODELS)
    assert req.question == "and when\nwas it created?"
    assert req.history == [user(COALITION), {"role": "assistant", "content": "« ... » [1]\n\nSources: ..."}]
    assert req.stream and req.k == 4 and req.sources == ("Le Monde",) and req.recent == "1y"
    assert req.backend_kwargs()["answerer"] == "extractive"
    assert parse_chat_request({"messages": [user("x")]}, MODELS).model == "rag-extractive"  # model is optional


@pytest.mark.parametrize("body, status, param, code", [
    ({}, 400, "messages", "missing_required_parameter"),
    ({"messages": []}, 400, "messages", "empty_array"),
    ({"messages": "who?"}, 400, "messages", "invalid_type"),
    ({"messages": ["who?"]}, 400, "messages[0]", "invalid_type"),
    ({"messages": [{"content": "who?"}]}, 400, "messages[0].role", "invalid_type"),
    ({"messages": [{"role": "wizard", "content": "who?"}]}, 400, "messages[0].role", "invalid_value"),
    ({"messages": [user("who?"), {"role": "assistant", "content": "x"}]}, 400, "messages[1].role", "invalid_value"),
    ({"messages": [user(" \n\t ")]}, 400, "messages[0].content", "empty_string"),
    ({"messages": [user("x" * 20_001)]}, 400, "messages[0].content", "string_above_max_length"),
    ({"messages": [{"role": "user", "content": 42}]}, 400, "messages[0].content", "invalid_type"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400,
     "messages[0].content[0]", "invalid_value"),
    ({"messages": [user("x")] * 501}, 400, "messages", "array_above_max_length"),
    ({"model": "gpt-4o", "messages": [user("x")]}, 404, "model", "model_not_found"),
    ({"model": 3, "messages": [user("x")]}, 400, "model", "invalid_type"),
    ({"messages": [user("x")], "stream": "yes"}, 400, "stream", "invalid_type"),
    ({"messages": [user("x")], "n": 2}, 400, "n", "invalid_value"),
    ({"messages": [user("x")], "k": "6"}, 400, "k", "invalid_type"),
    ({"messages": [user("x")], "k": 0}, 400, "k", "invalid_value"),
    ({"messages": [user("x")], "k": True}, 400, "k", "invalid_type"),
    ({"messages": [user("x")], "date_from": "last week"}, 400, "date_from", "invalid_value"),
    ({"messages": [user("x")], "date_from": "2025-09-01", "date_to": "2025-08-01"}, 400, None, "invalid_value"),
    ({"messages": [user("x")], "recent": "soon"}, 400, "recent", "invalid_value"),
    ({"messages": [user("x")], "sources": [1, 2]}, 400, "sources", "invalid_type"),
])
def test_bad_requests_are_refused_naming_the_field(body, status, param, code):
    with pytest.raises(APIError) as info:
        parse_chat_request(body, MODELS)
    err = info.value
    assert (err.status, err.param, err.code) == (status, param, code)
    assert set(err.to_dict()["error"]) == {"message", "type", "param", "code"}
    assert err.message and err.type == "invalid_request_error"


@pytest.mark.parametrize("raw, status", [(b"{bad", 400), (b"[]", 400), (b'"text"', 400), (b"\xff\xfe", 400),
                                         (b" " * 1_000_001, 413)])
def test_a_body_that_is_not_a_json_object_is_refused(raw, status):
    with pytest.raises(APIError) as info:
        parse_body(raw)
    assert info.value.status == status


def test_the_text_carries_a_readable_sources_block():
    quote = "Placée sous la coordination conjointe de la France et du Royaume-Uni."
    c = Citation(1, "a1", "Coalition", "2025-09-02", "Le Monde", "https://example.org/a", quote, 10, 10 + len(quote),
                 also_published_by=(Copy("a2", "Coalition", source="Libération"),))
    answer = Answer(question="q", text=f"« {quote} » [1]", citations=[c], notice="Quoted in French.")
    text = answer_text(answer)
    assert text.startswith(f"« {quote} » [1]\n\n(Quoted in French.)\n\nSources:\n\n")
    head = "[1] Coalition · Le Monde · 2025-09-02 · https://example.org/a (also published by Libération)"
    assert f"{head}\n> {quote}" in text
    refused = Answer(question="q", text="The articles do not contain the answer to this question.", refused=True)
    assert answer_text(refused) == refused.text and sources_block([]) == ""


@pytest.mark.parametrize("header, expected", [
    ("Bearer ann:s3cret pass", ("ann", "s3cret pass")),
    ("bearer ann:p:w", ("ann", "p:w")),
    ("Basic " + base64.b64encode(b"ann:pw").decode(), ("ann", "pw")),
    ("Basic not-base64!", None), ("Bearer sk-no-colon", None), ("Bearer :pw", None), ("Token ann:pw", None),
    ("", None), (None, None),
])
def test_credentials_from_the_authorization_header(header, expected):
    assert credentials(header) == expected


def test_serve_help_imports_no_server_or_model_library():
    for args in (["cli", "--help"], ["cli", "serve", "--help"]):
        modules = loaded_modules(*args)
        assert [m for m in ("gradio", "fastapi", "uvicorn", "torch", "openai") if loaded(modules, m)] == [], args
    done = subprocess.run([sys.executable, "-m", "rag.cli", "serve", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0
    for flag in ("--index", "--host", "--port", "--llm", "--auth", "--concurrency", "--refresh-feeds", "/v1"):
        assert flag in done.stdout
    listed = subprocess.run([sys.executable, "-m", "rag.cli", "--help"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert "serve" in listed.stdout


@pytest.mark.parametrize("env, args, code, message", [
    ({"RAG_AUTH": "just-a-user"}, [], 2, "RAG_AUTH must be user:password"),
    ({}, ["--auth", "just-a-user"], 2, "--auth must be user:password"),
    ({}, ["--refresh-feeds", "often"], 2, "not a duration"),
    ({}, [], 1, "no index at"),
])
def test_bad_settings_are_clear_errors(tmp_path, model_cache, env, args, code, message):
    proc = subprocess.run([*RAG_SERVE, "--index", str(tmp_path / "none"), *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=app_env(tmp_path, model_cache, env))
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_refused_start_in_process_leaves_logging_as_it_was(tmp_path, capsys):
    import logging

    from rag.serve.cli import main

    before = logging.getLogger("rag").level
    assert main(["--index", str(tmp_path / "none"), "--refresh-feeds", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err
    assert logging.getLogger("rag").level == before


@pytest.mark.slow
def test_the_wheel_holds_the_serve_package(tmp_path):
    """What a plain ``pip install .`` installs: the wheel built from a copy of this checkout (pip
    builds in the source folder, so the copy keeps build/ and *.egg-info out of the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "rag", src / "rag", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), "-q"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("rag_news-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("__init__", "cli", "server", "openai_routes", "openai_compat"):
        assert f"rag/serve/{module}.py" in names
    assert "rag/ui/style.css" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "rag = rag.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# -- the real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(e5_index, model_cache, tmp_path_factory):
    srv = start_app(e5_index, tmp_path_factory.mktemp("serve"), model_cache, command=RAG_SERVE)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "v1", api_key="not-needed", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def article_text(e5_index):
    index = rag.Index.open(e5_index)
    try:
        [row] = index.articles()
        return row["id"], index.get_article(row["id"]).text
    finally:
        index.close()


def check_citations(citations, article_text):
    article_id, text = article_text
    assert citations, "a cited answer"
    for c in citations:
        assert c["article_id"] == article_id
        assert text[c["start"]:c["end"]] == c["quote"]  # the quote is the article's own text, at its offsets
        assert c["title"].startswith("«Coalition des volontaires»")
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))


@pytest.mark.slow
def test_models_are_listed(client):
    assert [m.id for m in client.models.list()] == ["rag-extractive"]
    assert client.models.retrieve("rag-extractive").owned_by == "rag"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("rag-llm")  # no --llm given


@pytest.mark.slow
def test_a_cited_answer(client, article_text):
    r = client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)])
    assert r.object == "chat.completion" and r.model == "rag-extractive"
    [choice] = r.choices
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    text = choice.message.content
    assert "France" in text and "Royaume-Uni" in text and "[1]" in text
    assert "\n\nSources:\n\n[1] «Coalition des volontaires»" in text
    citations = r.model_extra["citations"]
    check_citations(citations, article_text)
    assert "coordination conjointe" in citations[0]["quote"]
    assert f"> {citations[0]['quote']}" in text
    meta = r.model_extra["rag"]
    assert meta["refused"] is False and meta["answerer"] == "extractive" and meta["timings_ms"]["total"] > 0


@pytest.mark.slow
def test_a_streamed_cited_answer(client, article_text):
    chunks = list(client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)], stream=True))
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Royaume-Uni" in text and "[1]" in text and "\n\nSources:\n\n[1] " in text
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and not last.choices[0].delta.content
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    check_citations(last.model_extra["citations"], article_text)
    assert all("citations" not in (c.model_extra or {}) for c in chunks[:-1])
    # The same text as the answer given whole.
    whole = client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)])
    assert text == whole.choices[0].message.content


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_a_follow_up_is_answered_from_the_conversation(client, stream):
    first = client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)])
    convo = [user(COALITION), {"role": "assistant", "content": first.choices[0].message.content}, user(FOLLOW_UP)]
    if stream:
        chunks = list(client.chat.completions.create(model="rag-extractive", messages=convo, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        extra = chunks[-1].model_extra
    else:
        r = client.chat.completions.create(model="rag-extractive", messages=convo)
        text, extra = r.choices[0].message.content, r.model_extra
    meta = extra["rag"]
    assert not meta["refused"]
    assert meta["standalone_question"].startswith(FOLLOW_UP) and "coalition" in meta["standalone_question"]
    assert "mars" in text and "création" in text and extra["citations"]  # "sa création a été annoncée en mars"
    # Alone, the same words name nothing: the assistant asks what "it" is.
    alone = client.chat.completions.create(model="rag-extractive", messages=[user(FOLLOW_UP)])
    assert alone.model_extra["rag"]["refused"] and not alone.model_extra["citations"]
    assert "refer to" in alone.choices[0].message.content


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_an_off_topic_question_is_refused_as_a_normal_message(client, stream):
    messages = [user("Who won the 2018 World Cup?")]
    if stream:
        chunks = list(client.chat.completions.create(model="rag-extractive", messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish, extra = chunks[-1].choices[0].finish_reason, chunks[-1].model_extra
    else:
        r = client.chat.completions.create(model="rag-extractive", messages=messages)
        text, finish, extra = r.choices[0].message.content, r.choices[0].finish_reason, r.model_extra
        assert r.choices[0].message.refusal is None
    assert finish == "stop" and extra["rag"]["refused"] and extra["citations"] == []
    assert "do not contain the answer" in text and "Sources:" not in text


@pytest.mark.slow
def test_filters_and_k_are_request_fields(client):
    r = client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)],
                                       extra_body={"k": 2, "sources": ["No Such Paper"]})
    assert r.model_extra["rag"]["refused"]  # the only article has no source: nothing is left to answer from
    r = client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)], extra_body={"k": 2})
    assert not r.model_extra["rag"]["refused"]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)],
                                       extra_body={"date_to": "yesterday"})
    assert info.value.status_code == 400 and info.value.body["param"] == "date_to"


def post(url: str, data: bytes, headers: dict | None = None, method: str = "POST"):
    """(status, parsed JSON body) of a raw request."""
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
@pytest.mark.parametrize("data, status, param", [
    (b"{not json", 400, None),
    (b"[1, 2]", 400, None),
    (b"{}", 400, "messages"),
    (json.dumps({"messages": []}).encode(), 400, "messages"),
    (json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}).encode(), 400, "messages[0].role"),
    (json.dumps({"messages": [user("")]}).encode(), 400, "messages[0].content"),
    (json.dumps({"messages": [user(COALITION)], "model": "gpt-4o"}).encode(), 404, "model"),
    (json.dumps({"messages": [user(COALITION)], "stream": 1}).encode(), 400, "stream"),
    (json.dumps({"messages": [user("x" * 30_000)]}).encode(), 400, "messages[0].content"),
    (json.dumps({"messages": [user("x" * 1_100_000)]}).encode(), 413, None),
])
def test_malformed_requests_get_openai_error_objects(server, data, status, param):
    for stream in (False, True):  # a streamed request is refused before its stream starts
        body = data
        if stream and data.startswith(b'{"messages": [{') and b'"stream"' not in data:
            body = data[:-1] + b', "stream": true}'
        got, payload = post(server.url + "v1/chat/completions", body)
        assert got == status, payload
        assert set(payload) == {"error"} and set(payload["error"]) == {"message", "type", "param", "code"}
        assert payload["error"]["param"] == param and payload["error"]["message"]


@pytest.mark.slow
def test_unknown_routes_and_methods_are_openai_errors_too(server):
    status, payload = post(server.url + "v1/embeddings", b"{}")
    assert status == 404 and payload["error"]["code"] == "unknown_url"
    status, payload = post(server.url + "v1/chat/completions", None, method="GET")
    assert status == 405 and payload["error"]["type"] == "invalid_request_error"


@pytest.mark.slow
def test_the_same_server_serves_the_page_and_the_gradio_api(server):
    with urllib.request.urlopen(server.url, timeout=30) as r:
        assert r.status == 200 and "<html" in r.read(2000).decode().lower()
    gradio_client = pytest.importorskip("gradio_client")
    api = gradio_client.Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
    assert not api.predict(COALITION, api_name="/ask")["refused"]


@pytest.mark.slow
def test_concurrent_clients_all_get_their_answers(client):
    questions = [COALITION, "Qui a annoncé la création de la coalition ?", "Who won the 2018 World Cup?"]
    results: dict[int, tuple] = {}

    def ask(i: int) -> None:
        q = questions[i % len(questions)]
        try:
            if i % 2:
                chunks = list(client.chat.completions.create(model="rag-extractive", messages=[user(q)], stream=True))
                results[i] = (q, chunks[-1].model_extra["rag"]["refused"])
            else:
                r = client.chat.completions.create(model="rag-extractive", messages=[user(q)])
                results[i] = (q, r.model_extra["rag"]["refused"])
        except Exception as exc:  # noqa: BLE001 (reported below)
            results[i] = (q, exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == 12
    assert {q: refused for q, refused in results.values()} == {questions[0]: False, questions[1]: False,
                                                               questions[2]: True}


# -- with a login ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(e5_index, model_cache, tmp_path_factory):
    srv = start_app(e5_index, tmp_path_factory.mktemp("serve-auth"), model_cache, command=RAG_SERVE,
                    env={"RAG_AUTH": "editor:s3cret pass"})
    yield srv
    srv.stop()


@pytest.mark.slow
def test_with_a_login_an_unauthenticated_call_is_refused(auth_server):
    url = auth_server.url + "v1"
    for key in ("not-needed", "editor:wrong", "someone:s3cret pass"):
        bad = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
        with pytest.raises(openai.AuthenticationError) as info:
            bad.chat.completions.create(model="rag-extractive", messages=[user(COALITION)])
        assert info.value.status_code == 401 and info.value.body["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    status, payload = post(url + "/chat/completions", json.dumps({"messages": [user(COALITION)]}).encode())
    assert status == 401 and set(payload["error"]) == {"message", "type", "param", "code"}
    good = openai.OpenAI(base_url=url, api_key="editor:s3cret pass", max_retries=0, timeout=120)
    assert not good.chat.completions.create(model="rag-extractive",
                                            messages=[user(COALITION)]).model_extra["rag"]["refused"]
    basic = "Basic " + base64.b64encode(b"editor:s3cret pass").decode()
    status, payload = post(url + "/chat/completions", json.dumps({"messages": [user(COALITION)]}).encode(),
                           {"Authorization": basic})
    assert status == 200 and payload["citations"]
    # The page keeps its own login.
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(auth_server.url + "config", timeout=30)
    assert info.value.code == 401


# -- with a language model ----------------------------------------------------------------------

LLM_REPLY = "The coalition is jointly coordinated by France and the United Kingdom"
UNSUPPORTED = "Bananas are rich in potassium and grow in tropical countries"


def llm_reply(body: dict) -> str:
    """A model that cites the source with the answer (by the number the prompt gave it), then
    adds a sentence no source supports."""
    prompt = body["messages"][-1]["content"]
    n = next((b.lstrip("[").split("]")[0] for b in prompt.split("\n\n[") if "coordination conjointe" in b), "1")
    return f"{LLM_REPLY} [{n}]. {UNSUPPORTED} [{n}]."


@pytest.fixture(scope="module")
def llm_client(e5_index, model_cache, tmp_path_factory):
    from fake_llm_server import FakeChatServer

    with FakeChatServer(llm_reply) as fake:
        srv = start_app(e5_index, tmp_path_factory.mktemp("serve-llm"), model_cache, command=RAG_SERVE,
                        args=["--llm", f"openai:{fake.base_url}#fake-model"])
        try:
            yield openai.OpenAI(base_url=srv.url + "v1", api_key="unused", max_retries=0, timeout=120)
        finally:
            srv.stop()


@pytest.mark.slow
def test_a_language_model_is_a_second_model_and_streams_only_its_verified_text(llm_client, article_text):
    assert [m.id for m in llm_client.models.list()] == ["rag-extractive", "rag-llm"]
    r = llm_client.chat.completions.create(model="rag-llm", messages=[user(COALITION)])
    text = r.choices[0].message.content
    assert LLM_REPLY in text and UNSUPPORTED not in text  # verification removed the unsupported sentence
    assert r.model_extra["rag"]["answerer"].endswith("#fake-model")
    check_citations(r.model_extra["citations"], article_text)
    chunks = list(llm_client.chat.completions.create(model="rag-llm", messages=[user(COALITION)], stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == text  # the model's raw words (with the dropped sentence) were never sent
    extractive = llm_client.chat.completions.create(model="rag-extractive", messages=[user(COALITION)])
    assert LLM_REPLY not in extractive.choices[0].message.content
