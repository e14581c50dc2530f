"""Language-model backends, against a real HTTP server of the tests' own on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from rag.errors import ConfigError, LLMError, LLMTimeoutError
from rag.llm import LLM, Message, parse_llm_spec
from rag.llm.llama_cpp import INSTALL_HINT, LlamaCppLLM
from rag.llm.openai_compat import OpenAICompatibleLLM
from tests.fake_llm_server import FakeChatServer

REPLY = ("La coalition des volontaires se réunit à Paris ; "
         "elle est coordonnée par la France et le Royaume-Uni. ✓")
QUESTION = [Message("system", "Answer from the sources."), Message("user", "Qui coordonne la coalition ?")]


@pytest.fixture(autouse=True)
def _clean_env_and_threads(monkeypatch):
    """No key or proxy from the developer's shell; no thread outlives a test."""
    for name in ("OPENAI_API_KEY", "RAG_TEST_KEY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"threads left running: {left}"


def _llm(server: FakeChatServer, **kwargs) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "fake-model", **kwargs)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- OpenAI-compatible: replies ------------------------------------------------------------


def test_stream_yields_several_pieces_that_make_the_reply():
    with FakeChatServer(REPLY, stream_chunk_chars=8) as server:
        pieces = list(_llm(server).stream(QUESTION, max_tokens=64, temperature=0.2))
    assert "".join(pieces) == REPLY
    assert len(pieces) == -(-len(REPLY) // 8)
    assert all(pieces)


def test_request_body_carries_model_messages_and_stream():
    with FakeChatServer(lambda body: body["messages"][-1]["content"].upper()) as server:
        answer = _llm(server).complete(QUESTION, max_tokens=64, temperature=0.2)
        body = server.requests[0]
    assert answer == "QUI COORDONNE LA COALITION ?"
    assert body == {
        "model": "fake-model",
        "messages": [{"role": "system", "content": "Answer from the sources."},
                     {"role": "user", "content": "Qui coordonne la coalition ?"}],
        "max_tokens": 64,
        "temperature": 0.2,
        "stream": True,
    }


def test_non_streaming_json_reply_is_accepted():
    with FakeChatServer(REPLY, ignore_stream=True) as server:
        pieces = list(_llm(server).stream(QUESTION))
    assert pieces == [REPLY]


def test_empty_reply_gives_no_pieces():
    with FakeChatServer("") as server:
        assert list(_llm(server).stream(QUESTION)) == []


def test_base_url_is_used_as_given():
    with FakeChatServer(REPLY) as server:
        assert _llm(server).name == f"openai:{server.base_url}#fake-model"
        assert OpenAICompatibleLLM(server.base_url + "/", "m").complete(QUESTION) == REPLY
        # Without /v1 nothing is added: the server has no /chat/completions, says 404.
        root = server.base_url.removesuffix("/v1")
        with pytest.raises(LLMError, match="HTTP 404"):
            OpenAICompatibleLLM(root, "m").complete(QUESTION)


def test_stopping_early_closes_the_stream():
    with FakeChatServer(REPLY, stream_chunk_chars=4) as server:
        stream = _llm(server).stream(QUESTION)
        assert next(stream) == REPLY[:4]
        stream.close()


# --- OpenAI-compatible: API key ------------------------------------------------------------


def test_api_key_is_sent_as_bearer_when_the_variable_is_set(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    with FakeChatServer(REPLY) as server:
        _llm(server).complete(QUESTION)
    assert server.headers[0]["authorization"] == "Bearer sk-test-123"


def test_no_authorization_header_without_the_variable():
    with FakeChatServer(REPLY) as server:
        _llm(server).complete(QUESTION)
    assert "authorization" not in server.headers[0]


def test_api_key_env_names_the_variable_and_none_sends_nothing(monkeypatch):
    monkeypatch.setenv("RAG_TEST_KEY", "other-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    with FakeChatServer(REPLY) as server:
        _llm(server, api_key_env="RAG_TEST_KEY", extra_headers={"X-Trace": "1"}).complete(QUESTION)
        _llm(server, api_key_env=None).complete(QUESTION)
    assert server.headers[0]["authorization"] == "Bearer other-key"
    assert server.headers[0]["x-trace"] == "1"
    assert "authorization" not in server.headers[1]


def test_the_key_is_never_logged_nor_put_in_errors(monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-456")
    caplog.set_level(logging.DEBUG)
    with FakeChatServer(REPLY) as server:
        _llm(server).complete(QUESTION)
    with FakeChatServer(status=401) as server, pytest.raises(LLMError) as info:
        _llm(server).complete(QUESTION)
    assert "was sent" in str(info.value)
    assert "sk-secret-456" not in caplog.text + str(info.value) + repr(_llm(server))


# --- OpenAI-compatible: errors -------------------------------------------------------------


def test_http_500_names_status_and_server_message():
    with FakeChatServer(status=500) as server, pytest.raises(LLMError) as info:
        _llm(server).complete(QUESTION)
    assert not isinstance(info.value, LLMTimeoutError)
    message = str(info.value)
    assert "HTTP 500" in message and "fake server says: Internal Server Error" in message
    assert server.base_url in message


def test_http_401_names_status_message_and_missing_key():
    body = json.dumps({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}})
    with FakeChatServer(status=401, error_body=body) as server, pytest.raises(LLMError) as info:
        _llm(server).complete(QUESTION)
    message = str(info.value)
    assert "HTTP 401" in message and "Incorrect API key provided." in message
    assert "$OPENAI_API_KEY is not set" in message


def test_long_error_page_is_clipped_to_300_characters():
    with FakeChatServer(status=502, error_body="<html>" + "x" * 5000) as server, pytest.raises(LLMError) as info:
        _llm(server).complete(QUESTION)
    server_part = str(info.value).split("HTTP 502: ", 1)[1]
    assert server_part.startswith("<html>xxx") and len(server_part) <= 300


def test_no_answer_within_timeout_is_a_timeout_error():
    with FakeChatServer(REPLY, delay=5) as server:
        started = time.perf_counter()
        with pytest.raises(LLMTimeoutError, match=r"did not answer within 0.5 s"):
            _llm(server, timeout=0.5).complete(QUESTION)
        assert time.perf_counter() - started < 2


def test_stall_mid_stream_is_a_timeout_error():
    with FakeChatServer(REPLY, stall_after_first_chunk=5, stream_chunk_chars=8) as server:
        pieces = []
        started = time.perf_counter()
        with pytest.raises(LLMTimeoutError, match="mid-answer"):
            for piece in _llm(server, timeout=0.5).stream(QUESTION):
                pieces.append(piece)
        assert time.perf_counter() - started < 2
    assert pieces == [REPLY[:8]]


def test_connection_refused_says_the_model_cannot_be_reached():
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(LLMError, match=f"cannot reach the language model at {base_url}") as info:
        OpenAICompatibleLLM(base_url, "m").complete(QUESTION)
    assert not isinstance(info.value, LLMTimeoutError)


@pytest.mark.parametrize(
    ("stream_body", "expected"),
    [
        ("data: {not json\n\n", "not JSON"),
        ("<html>Bad gateway</html>\n", "malformed event stream"),
        ('data: {"object": "chat.completion.chunk"}\n\n', "without choices"),
        ('data: {"error": {"message": "the model crashed"}}\n\n', "failed mid-answer: the model crashed"),
        ('data: {"choices": [{"delta": {"content": 42}}]}\n\n', "not text"),
    ],
)
def test_malformed_stream_is_an_llm_error(stream_body, expected):
    with FakeChatServer(stream_body=stream_body) as server, pytest.raises(LLMError, match=expected):
        _llm(server).complete(QUESTION)


def test_malformed_json_reply_is_an_llm_error():
    with FakeChatServer(status=200, ignore_stream=True, reply="") as server:
        # A well-formed completion whose content is empty is fine...
        assert _llm(server).complete(QUESTION) == ""
    with FakeChatServer(stream_body="data: [DONE]\n\n") as server:
        # ...and so is a stream that ends at once.
        assert _llm(server).complete(QUESTION) == ""


@pytest.mark.parametrize("bad", ["", "localhost:8080/v1", "ftp://example.org/v1", "http://", "http://host:port/v1",
                                 "http://host/v1?x=1", "http://ho st/v1"])
def test_bad_base_url_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match="base URL") as info:
        OpenAICompatibleLLM(bad, "m")
    assert repr(bad) in str(info.value)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="model name is empty"):
        OpenAICompatibleLLM("http://127.0.0.1:1/v1", " ")
    with pytest.raises(ConfigError, match="timeout must be a positive number of seconds, got 0"):
        OpenAICompatibleLLM("http://127.0.0.1:1/v1", "m", timeout=0)


def test_bad_request_arguments_fail_before_anything_is_sent():
    with FakeChatServer(REPLY) as server:
        llm = _llm(server)
        with pytest.raises(ValueError, match="non-empty sequence"):
            llm.stream([])
        with pytest.raises(ValueError, match="max_tokens"):
            llm.stream(QUESTION, max_tokens=0)
        with pytest.raises(ValueError, match="temperature"):
            llm.stream(QUESTION, temperature=-1)
        with pytest.raises(ValueError, match="Message objects"):
            llm.stream([{"role": "user", "content": "hi"}])
    assert server.requests == []
    with pytest.raises(ValueError, match="role must be one of"):
        Message("User", "hi")


# --- parse_llm_spec ------------------------------------------------------------------------


def _gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(28))  # the magic is all a path check reads
    return path


def test_parse_openai_spec():
    llm = parse_llm_spec("openai:http://127.0.0.1:8080/v1#qwen2.5-1.5b", timeout=7)
    assert isinstance(llm, OpenAICompatibleLLM)
    assert (llm.base_url, llm.model, llm.timeout) == ("http://127.0.0.1:8080/v1", "qwen2.5-1.5b", 7.0)
    assert llm.name == "openai:http://127.0.0.1:8080/v1#qwen2.5-1.5b"


def test_parse_llama_cpp_spec(tmp_path):
    path = _gguf(tmp_path)
    llm = parse_llm_spec(f"llama-cpp:{path}")
    assert isinstance(llm, LlamaCppLLM) and isinstance(llm, LLM)
    assert llm.model_path == path and llm.name == f"llama-cpp:{path}"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "openai:BASE_URL#MODEL .*, llama-cpp:PATH .* or local"),
        ("gpt-4o", "openai:BASE_URL#MODEL .*, llama-cpp:PATH .* or local"),
        ("ollama:http://127.0.0.1:11434/v1#llama3", "openai:BASE_URL#MODEL .*, llama-cpp:PATH .* or local"),
        ("openai:http://127.0.0.1:8080/v1", "needs a base URL and a model"),
        ("openai:http://127.0.0.1:8080/v1#", "needs a base URL and a model"),
        ("openai:#qwen", "needs a base URL and a model"),
        ("openai:127.0.0.1:8080#qwen", "must be an http"),
        ("llama-cpp:", "needs the path of a .gguf file"),
        ("llama-cpp:/nowhere/model.gguf", "/nowhere/model.gguf does not exist"),
    ],
)
def test_parse_bad_specs(spec, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_llm_spec(spec)


def test_importing_rag_llm_opens_nothing_and_skips_httpx():
    code = "import sys, rag.llm; assert 'httpx' not in sys.modules and 'llama_cpp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- llama-cpp -----------------------------------------------------------------------------


def test_llama_cpp_missing_or_wrong_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="model.gguf does not exist"):
        LlamaCppLLM(tmp_path / "model.gguf")
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(ConfigError, match="notes.gguf is not a GGUF file"):
        LlamaCppLLM(text)


def test_llama_cpp_without_the_package_gives_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    llm = LlamaCppLLM(_gguf(tmp_path))  # nothing imported yet
    with pytest.raises(LLMError) as info:
        llm.complete(QUESTION)
    assert str(info.value) == INSTALL_HINT
    assert "make run-llm" in INSTALL_HINT and "pip install -e '.[local-llm]'" in INSTALL_HINT


def test_llama_cpp_plumbing_with_a_stand_in_module(tmp_path, monkeypatch):
    """How we call llama-cpp-python's API, checked without compiling it."""
    calls: dict = {}

    class Llama:
        def __init__(self, **kwargs):
            calls["init"] = kwargs

        def create_chat_completion(self, **kwargs):
            calls["chat"] = kwargs
            yield {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
            for word in ("Paris", " et", " Londres"):
                yield {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=Llama))
    path = _gguf(tmp_path)
    llm = LlamaCppLLM(path, n_ctx=2048, n_threads=2, chat_format="chatml")
    assert "init" not in calls
    assert list(llm.stream(QUESTION, max_tokens=32)) == ["Paris", " et", " Londres"]
    assert calls["init"] == {"model_path": str(path), "n_ctx": 2048, "n_threads": 2, "n_threads_batch": 2,
                             "chat_format": "chatml", "verbose": False}
    assert calls["chat"] == {"messages": [m.to_dict() for m in QUESTION], "stream": True,
                             "max_tokens": 32, "temperature": 0.0}


def test_llama_cpp_real_model_streams_text():
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.skip("llama-cpp-python not installed: make run-llm (or see INSTALL_HINT in rag/llm/llama_cpp.py)")
    gguf = os.environ.get("RAG_TEST_GGUF")
    if not gguf:
        pytest.skip("set RAG_TEST_GGUF to a small chat .gguf file to run the real llama-cpp test")
    llm = LlamaCppLLM(gguf, n_ctx=512)
    pieces = list(llm.stream([Message("user", "Say hello in one word.")], max_tokens=8))
    assert pieces and "".join(pieces).strip()
