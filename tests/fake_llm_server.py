"""A small OpenAI-compatible chat-completions server for tests, on 127.0.0.1.

    with FakeChatServer("Paris is the capital.") as server:
        llm = OpenAICompatibleLLM(server.base_url, "fake")
        assert llm.complete([Message("user", "capital?")]) == "Paris is the capital."
        assert server.requests[0]["stream"] is True

It speaks HTTP/1.1 like llama-server: streamed replies use chunked transfer
encoding, and every response closes its connection. Waits (``delay``, stalls)
end early when the server shuts down, so leaving the ``with`` block is quick and
leaves no thread running and no port open.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

_PATH = "/v1/chat/completions"


class FakeChatServer:
    """An OpenAI-compatible chat server answering a fixed (or computed) reply.

    Args:
        reply: the assistant's reply, or a function of the request's JSON body that returns it.
        status: the HTTP status to answer; >= 400 sends an OpenAI-style error JSON.
        delay: seconds to wait before answering (status line included).
        stall_after_first_chunk: seconds to wait after the first content chunk of a stream.
        stream_chunk_chars: characters of the reply per streamed chunk.
        error_body: with ``status`` >= 400, sent verbatim instead of the OpenAI-style error JSON.
        ignore_stream: answer one JSON completion even when asked to stream, as some servers do.
        stream_body: when streaming, send this verbatim as the event stream (to test malformed
            streams) instead of chunks of ``reply``.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``.
        requests: the JSON bodies received, in order.
        headers: the headers of each request (lower-case names), in the same order.
    """

    def __init__(
        self,
        reply: str | Callable[[dict], str] = "",
        *,
        status: int = 200,
        delay: float = 0.0,
        stall_after_first_chunk: float = 0.0,
        stream_chunk_chars: int = 8,
        error_body: str | None = None,
        ignore_stream: bool = False,
        stream_body: str | None = None,
    ):
        if stream_chunk_chars < 1:
            raise ValueError(f"stream_chunk_chars must be >= 1, got {stream_chunk_chars}")
        self.reply = reply
        self.status = status
        self.delay = delay
        self.stall_after_first_chunk = stall_after_first_chunk
        self.stream_chunk_chars = stream_chunk_chars
        self.error_body = error_body
        self.ignore_stream = ignore_stream
        self.stream_body = stream_body
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._closing = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """The API root; still readable after the server stopped (then nothing listens there)."""
        if self._base_url is None:
            raise RuntimeError("the fake server was never started")
        return self._base_url

    def start(self) -> FakeChatServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        host, port = self._httpd.server_address[:2]
        self._base_url = f"http://{host}:{port}/v1"
        # A short poll so that shutdown() returns within a few ms, not 0.5 s.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-llm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._closing.set()  # wakes handlers in delay/stall waits
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the handler threads (block_on_close)
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; False if the server is shutting down meanwhile."""
        return seconds <= 0 or not self._closing.wait(seconds)


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, so server_close() joins them all.
    daemon_threads = False
    block_on_close = True
    fake: FakeChatServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        logger.debug("fake llm server: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802
        self._send_json(404, _error_json(f"no route GET {self.path}", "not_found", 404))

    def do_POST(self) -> None:  # noqa: N802
        fake = self.server.fake
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path != _PATH:
                self._send_json(404, _error_json(f"no route POST {self.path}", "not_found", 404))
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as exc:
                self._send_json(400, _error_json(f"request body is not JSON: {exc}", "invalid_request_error", 400))
                return
            fake.requests.append(body)
            fake.headers.append({k.lower(): v for k, v in self.headers.items()})
            if not fake.wait(fake.delay):
                return
            if fake.status >= 400:
                if fake.error_body is not None:
                    self._send(fake.status, _content_type(fake.error_body), fake.error_body.encode())
                else:
                    self._send_json(fake.status, _error_json(
                        f"fake server says: {_phrase(fake.status)}", "server_error", fake.status))
                return
            reply = fake.reply(body) if callable(fake.reply) else fake.reply
            if body.get("stream") and not fake.ignore_stream:
                self._stream(body, reply)
            else:
                self._send_json(fake.status, _completion(body, reply))
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing left to answer.
            logger.debug("fake llm server: client went away")

    def _stream(self, body: dict[str, Any], reply: str) -> None:
        fake = self.server.fake
        self.send_response(fake.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        if fake.stream_body is not None:
            self._write_chunk(fake.stream_body.encode())
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        created = int(time.time())
        model = body.get("model", "fake")
        n = fake.stream_chunk_chars
        # Like OpenAI: a role-only first chunk, content chunks, a finish chunk, [DONE].
        deltas: list[tuple[dict[str, str], str | None]] = [({"role": "assistant", "content": ""}, None)]
        deltas += [({"content": reply[i:i + n]}, None) for i in range(0, len(reply), n)]
        deltas.append(({}, "stop"))
        for number, (delta, finish) in enumerate(deltas):
            chunk = {
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            if number == 1 and not fake.wait(fake.stall_after_first_chunk):
                return
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(payload).encode())

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _completion(body: dict[str, Any], reply: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _content_type(body: str) -> str:
    try:
        json.loads(body)
    except json.JSONDecodeError:
        return "text/plain; charset=utf-8"
    return "application/json"


def _error_json(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
