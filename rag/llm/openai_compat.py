"""A backend for any server that speaks the OpenAI chat-completions API.

That covers llama.cpp's ``llama-server``, vLLM, Ollama (``/v1``), LM Studio and
OpenAI itself. One request per call: ``POST {base_url}/chat/completions`` with
``"stream": true``; the reply is read as Server-Sent Events, or as one JSON
completion when the server ignores ``stream``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from rag.errors import ConfigError, LLMError, LLMTimeoutError
from rag.llm.base import LLM, Message, check_request

__all__ = ["OpenAICompatibleLLM"]

logger = logging.getLogger(__name__)

# Enough of an error reply to say what went wrong, short enough for one line.
_ERROR_CHARS = 300
_SSE_FIELDS = ("data", "event", "id", "retry")


class OpenAICompatibleLLM(LLM):
    """A chat model behind an OpenAI-compatible HTTP server.

    Args:
        base_url: the API root, used as given: ``http://127.0.0.1:8080/v1`` for
            llama-server, ``https://api.openai.com/v1`` for OpenAI. ``/v1`` is not added.
        model: the model name sent in each request.
        api_key_env: the environment variable holding the API key, read at each
            request; when set and non-empty it is sent as ``Authorization: Bearer``.
            ``None`` never sends a key.
        timeout: seconds without a byte from the server (before or during the
            reply) after which the request fails with :class:`LLMTimeoutError`.
        connect_timeout: seconds to open the connection.
        extra_headers: headers added to every request; they win over the key's
            ``Authorization`` header.

    Raises:
        ConfigError: a bad ``base_url``, ``model``, timeout or header, named.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        extra_headers: dict | None = None,
    ):
        self.base_url = _check_base_url(base_url)
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"the language model name is empty (base URL {self.base_url})")
        self.model = model.strip()
        if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
            raise ConfigError(f"api_key_env must be an environment variable name or None, got {api_key_env!r}")
        self.api_key_env = api_key_env
        for label, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigError(f"{label} must be a positive number of seconds, got {value!r}")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        extra_headers = dict(extra_headers or {})
        for key, value in extra_headers.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigError(f"extra_headers must map strings to strings, got {key!r}: {type(value).__name__}")
        self.extra_headers = extra_headers
        self.url = f"{self.base_url}/chat/completions"
        self.name = f"openai:{self.base_url}#{self.model}"

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": check_request(messages, max_tokens, temperature),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        return self._request(body)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream, application/json"}
        key = os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        headers.update(self.extra_headers)
        return headers

    def _request(self, body: dict[str, Any]) -> Iterator[str]:
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        started = time.perf_counter()
        pieces = 0
        logger.debug("POST %s model=%s messages=%d max_tokens=%d", self.url, self.model,
                     len(body["messages"]), body["max_tokens"])
        try:
            # A client per call: nothing stays open between answers, and no state is
            # shared between threads (the UI answers several questions at once).
            with httpx.Client(timeout=timeout, follow_redirects=False, verify=_ssl_context()) as client:
                with client.stream("POST", self.url, json=body, headers=self._headers()) as response:
                    if not response.is_success:
                        raise self._status_error(response)
                    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if content_type == "application/json":
                        text = self._read_json(response.read())
                        pieces = 1 if text else 0
                        if text:
                            yield text
                    else:
                        for piece in self._read_events(response):
                            pieces += 1
                            yield piece
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc, pieces) from exc
        except httpx.ConnectError as exc:
            raise LLMError(f"cannot reach the language model at {self.base_url}: {exc}") from exc
        except httpx.TransportError as exc:
            raise LLMError(f"the connection to the language model at {self.base_url} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
        logger.debug("%s answered in %.2f s (%d pieces)", self.name, time.perf_counter() - started, pieces)

    def _timeout_error(self, exc: httpx.TimeoutException, pieces: int) -> LLMTimeoutError:
        if isinstance(exc, httpx.ConnectTimeout):
            return LLMTimeoutError(f"cannot reach the language model at {self.base_url}: "
                                   f"no connection within {self.connect_timeout:g} s")
        where = f" (stopped mid-answer after {pieces} piece{'s' if pieces != 1 else ''})" if pieces else ""
        return LLMTimeoutError(
            f"the language model at {self.base_url} did not answer within {self.timeout:g} s{where}")

    def _status_error(self, response: httpx.Response) -> LLMError:
        raw = response.read()
        message = _error_message(raw)
        error = f"the language model at {self.base_url} answered HTTP {response.status_code}"
        if message:
            error += f": {message}"
        if response.status_code in (401, 403) and self.api_key_env:
            # Say whether a key went out, never what it was.
            sent = bool(os.environ.get(self.api_key_env, "").strip())
            error += (f" (an API key from ${self.api_key_env} was sent)" if sent
                      else f" (no API key was sent: ${self.api_key_env} is not set)")
        elif response.status_code == 404:
            error += f" (is {self.url} the chat-completions endpoint? check the base URL and model)"
        return LLMError(error)

    def _read_json(self, raw: bytes) -> str:
        payload = self._decode(raw.decode("utf-8", errors="replace"), "reply")
        if "error" in payload:
            raise LLMError(f"the language model at {self.base_url} answered with an error: "
                           f"{_clip(_error_text(payload['error']))}")
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"the language model at {self.base_url} sent a reply without "
                           f"choices[0].message.content: {_clip(raw.decode('utf-8', 'replace'))}") from exc
        return _content(content, self.base_url)

    def _read_events(self, response: httpx.Response) -> Iterator[str]:
        """Parse Server-Sent Events and yield each chunk's ``choices[0].delta.content``."""
        response.encoding = "utf-8"  # SSE is UTF-8 whatever the header says
        finished = False
        for event in self._events(response):
            if event.strip() == "[DONE]":
                return
            piece, done = self._read_chunk(event)
            finished = finished or done
            if piece:
                yield piece
        if not finished:
            logger.warning("the stream from %s ended without [DONE] or finish_reason; "
                           "the answer may be cut short", self.name)

    def _events(self, response: httpx.Response) -> Iterator[str]:
        """The data of each Server-Sent Event, including a last one the server did not end with a blank line."""
        data: list[str] = []
        for line in response.iter_lines():
            if line:
                if line.startswith(":"):  # a comment (keep-alive)
                    continue
                field, colon, value = line.partition(":")
                if not colon or field not in _SSE_FIELDS:
                    raise LLMError(f"the language model at {self.base_url} sent a malformed event "
                                   f"stream (content-type {response.headers.get('content-type')!r}): "
                                   f"{_clip(line)}")
                if field == "data":
                    data.append(value[1:] if value.startswith(" ") else value)
            elif data:  # a blank line ends an event
                yield "\n".join(data)
                data = []
        if data:
            yield "\n".join(data)

    def _read_chunk(self, event: str) -> tuple[str, bool]:
        """One chunk's text and whether it carries a ``finish_reason``."""
        payload = self._decode(event, "stream chunk")
        if "error" in payload:
            raise LLMError(f"the language model at {self.base_url} failed mid-answer: "
                           f"{_clip(_error_text(payload['error']))}")
        choices = payload.get("choices")
        if not isinstance(choices, list):
            raise LLMError(f"the language model at {self.base_url} sent a stream chunk without "
                           f"choices: {_clip(event)}")
        if not choices:  # e.g. the usage-only chunk some servers send last
            return "", False
        choice = choices[0]
        if not isinstance(choice, dict):
            raise LLMError(f"the language model at {self.base_url} sent a malformed stream chunk: "
                           f"{_clip(event)}")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise LLMError(f"the language model at {self.base_url} sent a malformed stream chunk: "
                           f"{_clip(event)}")
        return _content(delta.get("content"), self.base_url), bool(choice.get("finish_reason"))

    def _decode(self, text: str, what: str) -> dict[str, Any]:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LLMError(f"the language model at {self.base_url} sent a {what} that is not JSON "
                           f"({exc.msg}): {_clip(text)}") from exc
        if not isinstance(payload, dict):
            raise LLMError(f"the language model at {self.base_url} sent a {what} that is not a "
                           f"JSON object: {_clip(text)}")
        return payload


@functools.cache
def _ssl_context():
    # Building the default context (loading the CA bundle) is most of the cost of a
    # new client; the context itself is safe to share between clients and threads.
    return httpx.create_ssl_context()


def _check_base_url(base_url: str) -> str:
    if not isinstance(base_url, str):
        raise ConfigError(f"the language model base URL must be a string, got {base_url!r}")
    url = base_url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ConfigError(f"the language model base URL {base_url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ConfigError(f"the language model base URL must be an http(s) URL such as "
                          f"http://127.0.0.1:8080/v1, got {base_url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"the language model base URL {base_url!r} must not have a query or fragment")
    return url


def _content(content: Any, base_url: str) -> str:
    if content is None:
        return ""
    if not isinstance(content, str):
        raise LLMError(f"the language model at {base_url} sent content that is not text: {_clip(repr(content))}")
    return content


def _error_message(raw: bytes) -> str:
    """The server's error message from an error reply's body, clipped."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return _clip(text)
    if isinstance(payload, dict):
        # OpenAI and llama-server: {"error": {"message": ...}}; FastAPI servers: {"detail": ...}.
        for key in ("error", "detail", "message"):
            if key in payload:
                return _clip(_error_text(payload[key]))
    return _clip(text)


def _error_text(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return error if isinstance(error, str) else json.dumps(error)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"
