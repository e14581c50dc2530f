"""The OpenAI chat-completions format, both ways, without a web framework.

A request body is checked into a :class:`ChatRequest` (the last user message is the
question, the earlier turns its history); an :class:`~rag.types.Answer` becomes a
``chat.completion`` object or a run of ``chat.completion.chunk`` objects. What the
OpenAI format has no field for travels in two documented extension fields at the top
level of the completion (and of the last streamed chunk):

``citations``
    one object per ``[n]`` marker of the text: ``n``, ``article_id``, ``title``,
    ``source``, ``date``, ``url``, ``quote`` (the exact sentences quoted), ``start`` and
    ``end`` (the quote's character offsets in the article's text), ``also_published_by``
    (other copies of the story).
``rag``
    how the answer was made: ``refused``, ``confidence``, ``answerer``,
    ``standalone_question`` (a follow-up rewritten with what it refers to), ``notice``,
    ``related`` (the closest passages of a refusal) and ``timings_ms``.

The text itself ends with a readable "Sources" block, so a client that ignores the
extensions still shows where each quote comes from. Bad requests raise
:class:`APIError`, which carries the HTTP status and OpenAI's error object.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.errors import InputError
from rag.retriever import MAX_QUERY_CHARS
from rag.types import Answer, Citation, Hit

MODEL_PREFIX = "rag-"
DEFAULT_MODEL = "rag-extractive"
#: the largest request body read, in bytes (a question is at most 20,000 characters)
MAX_BODY_BYTES = 1_000_000
MAX_MESSAGES = 500
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
#: the request fields of our own that narrow the search (see :func:`rag.ui.make_filters`)
FILTER_FIELDS = ("date_from", "date_to", "sources", "recent")


class APIError(Exception):
    """A request the API refuses, as OpenAI's error object and an HTTP status.

    Attributes:
        status: 400 bad request, 401 no or wrong credentials, 404 unknown model or path,
            405 wrong method, 413 body too large, 500 the server failed.
    """

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def to_dict(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ChatRequest:
    """A checked ``/v1/chat/completions`` request: what :meth:`rag.ui.Backend.stream` needs."""

    model: str
    answerer: str
    question: str
    #: the turns before the question, as ``{"role", "content"}`` dicts (user and assistant only)
    history: list[dict] = field(default_factory=list)
    stream: bool = False
    k: int | None = None
    date_from: str | None = None
    date_to: str | None = None
    sources: tuple[str, ...] = ()
    recent: str | None = None

    def backend_kwargs(self) -> dict:
        return dict(answerer=self.answerer, k=self.k, date_from=self.date_from, date_to=self.date_to,
                    sources=list(self.sources), recent=self.recent)


def model_ids(answerers: Sequence[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """``{model id: (answerer, label)}`` for the answerers on offer: ``rag-extractive``, ``rag-llm``."""
    return {MODEL_PREFIX + value: (value, label) for label, value in answerers}


def parse_body(raw: bytes) -> dict:
    """The JSON object of a request body.

    Raises:
        APIError: 413 when over :data:`MAX_BODY_BYTES`, 400 when not a JSON object.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise too_large()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {_kind(body)}")
    return body


def too_large() -> APIError:
    return APIError(413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes", code="request_too_large")


def parse_chat_request(body: dict, models: dict[str, tuple[str, str]]) -> ChatRequest:
    """Check a chat-completions body; the fields we do not use (temperature, max_tokens...) are ignored.

    Args:
        models: what :func:`model_ids` returns for the server's backend.
    Raises:
        APIError: 404 for an unknown model, 400 for anything else wrong, naming the field.
    """
    model = body.get("model", DEFAULT_MODEL)
    if model is None:
        model = DEFAULT_MODEL
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    if model not in models:
        raise APIError(404, f"the model {model!r} does not exist: use {' or '.join(map(repr, models))} "
                            "(GET /v1/models lists them)", param="model", code="model_not_found")
    messages = body.get("messages")
    if messages is None:
        raise APIError(400, "missing required parameter: 'messages' (the conversation, ending with the "
                            "user's question)", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise APIError(400, "'messages' is empty: send at least the user's question", param="messages",
                       code="empty_array")
    if len(messages) > MAX_MESSAGES:
        raise APIError(400, f"'messages' holds {len(messages):,} messages; the limit is {MAX_MESSAGES:,}",
                       param="messages", code="array_above_max_length")
    turns = [_message(m, i) for i, m in enumerate(messages)]
    role, question = turns[-1]
    last = f"messages[{len(turns) - 1}]"
    if role != "user":
        raise APIError(400, f"the last message must be the user's question, got a message from {role!r}",
                       param=f"{last}.role", code="invalid_value")
    if not question.strip():
        raise APIError(400, "the question (the last message's content) is empty", param=f"{last}.content",
                       code="empty_string")
    if len(question) > MAX_QUERY_CHARS:
        raise APIError(400, f"the question is {len(question):,} characters long; the limit is {MAX_QUERY_CHARS:,}",
                       param=f"{last}.content", code="string_above_max_length")
    history = [{"role": r, "content": c} for r, c in turns[:-1] if r in ("user", "assistant")]

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid_type("stream", "a boolean", stream)
    n = body.get("n", 1)
    if n is not None and (isinstance(n, bool) or n != 1):
        raise APIError(400, f"only one answer is given per request: 'n' must be 1, got {n!r}", param="n",
                       code="invalid_value")
    k = body.get("k")
    if k is not None:
        from rag.ui.backend import MAX_SOURCES

        if isinstance(k, bool) or not isinstance(k, int):
            raise invalid_type("k", "an integer", k)
        if not 1 <= k <= MAX_SOURCES:
            raise APIError(400, f"'k' (passages to read) must be from 1 to {MAX_SOURCES}, got {k}", param="k",
                           code="invalid_value")
    texts = {}
    for name in ("date_from", "date_to", "recent"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid_type(name, "a string", value)
        texts[name] = value
    sources = body.get("sources")
    if isinstance(sources, str):
        sources = [sources]
    if sources is not None and not (isinstance(sources, list) and all(isinstance(s, str) for s in sources)):
        raise invalid_type("sources", "a string or an array of strings", sources)
    sources = tuple(s.strip() for s in sources or () if s.strip())
    _check_filters(texts, sources)
    return ChatRequest(model=model, answerer=models[model][0], question=question, history=history, stream=stream,
                       k=k, sources=sources, **texts)


def _message(m, i: int) -> tuple[str, str]:
    """(role, text) of ``messages[i]``; the text of a list of content parts is their text parts joined."""
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise invalid_type(where, "an object with 'role' and 'content'", m)
    role = m.get("role")
    if not isinstance(role, str):
        raise invalid_type(f"{where}.role", "a string", role)
    if role not in ROLES:
        raise APIError(400, f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}", param=f"{where}.role",
                       code="invalid_value")
    content = m.get("content")
    if content is None:  # an assistant turn that only called tools
        return role, ""
    if isinstance(content, str):
        return role, content
    if not isinstance(content, list):
        raise invalid_type(f"{where}.content", "a string or an array of content parts", content)
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise APIError(400, f"{where}.content[{j}] must be a text part ({{'type': 'text', 'text': ...}}): "
                                "only text is understood", param=f"{where}.content[{j}]", code="invalid_value")
        parts.append(part["text"])
    return role, "\n".join(parts)


def _check_filters(texts: dict, sources: tuple[str, ...]) -> None:
    from rag.ui.backend import make_filters

    try:
        make_filters(texts["date_from"], texts["date_to"], list(sources), texts["recent"])
    except InputError as exc:
        msg = str(exc)
        param = next((p for p in FILTER_FIELDS if msg.startswith(p)), None)
        raise APIError(400, msg, param=param, code="invalid_value") from None


def invalid_type(param: str, expected: str, value) -> APIError:
    return APIError(400, f"invalid type for {param!r}: expected {expected}, got {_kind(value)}", param=param,
                    code="invalid_type")


def _kind(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# -- answers as completions ------------------------------------------------------------


def citation_dict(c: Citation) -> dict:
    return {"n": c.n, "article_id": c.article_id, "title": c.title, "source": c.source, "date": c.date, "url": c.url,
            "quote": c.quote, "start": c.start, "end": c.end,
            "also_published_by": [{"article_id": x.article_id, "title": x.title, "source": x.source, "date": x.date,
                                   "url": x.url} for x in c.also_published_by]}


def _related(h: Hit) -> dict:
    return {"article_id": h.article_id, "title": h.title, "source": h.source, "date": h.date, "url": h.url,
            "text": h.text, "start": h.start, "end": h.end, "score": round(float(h.score), 4)}


def sources_block(citations: Sequence[Citation]) -> str:
    """The citations as text (Markdown that also reads as plain text), or "" when there are none::

        Sources:

        [1] «Title» · Le Monde · 2025-09-02 · https://...
        > the quoted sentence
    """
    if not citations:
        return ""
    lines = ["Sources:"]
    for c in citations:
        head = " · ".join(x for x in (c.title, c.source, c.date, c.url) if x)
        if c.also_published_by:
            from rag.types import published_by

            head += f" (also published by {published_by(c.also_published_by)})"
        lines += ["", f"[{c.n}] {head}", "> " + " ".join(c.quote.split())]
    return "\n".join(lines)


def answer_text(answer: Answer) -> str:
    """What the assistant message says: the answer with its ``[n]`` markers, the notice (if
    any), then the Sources block."""
    parts = [answer.text]
    if answer.notice:
        parts.append(f"({answer.notice})")
    block = sources_block(answer.citations)
    if block:
        parts.append(block)
    return "\n\n".join(parts)


def extensions(answer: Answer) -> dict:
    """The extension fields of a completion: ``citations`` and ``rag`` (see the module docstring)."""
    return {
        "citations": [citation_dict(c) for c in answer.citations],
        "rag": {"refused": bool(answer.refused), "confidence": round(float(answer.confidence), 4),
                "answerer": answer.answerer, "standalone_question": answer.standalone_question,
                "notice": answer.notice, "related": [_related(h) for h in answer.related],
                "timings_ms": {k: round(float(v), 1) for k, v in answer.timings_ms.items()}},
    }


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def completion(answer: Answer, model: str, *, id: str | None = None, created: int | None = None) -> dict:
    """A ``chat.completion`` object for ``answer`` (refusals are ordinary assistant messages)."""
    return {
        "id": id or new_id(), "object": "chat.completion", "created": created or int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_text(answer), "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": None,
        **extensions(answer),
    }


def chunk(id: str, created: int, model: str, delta: dict, finish_reason: str | None = None, **extra) -> dict:
    """One ``chat.completion.chunk``; ``extra`` adds top-level fields (the last chunk's extensions)."""
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}], **extra}


def sse(obj: dict | str) -> bytes:
    """One server-sent event: ``data: <json>`` (or ``data: [DONE]``) and a blank line."""
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode("utf-8")


def models_list(models: dict[str, tuple[str, str]], created: int) -> dict:
    return {"object": "list", "data": [model_object(m, label, created) for m, (_, label) in models.items()]}


def model_object(model: str, label: str, created: int) -> dict:
    return {"id": model, "object": "model", "created": created, "owned_by": "rag", "description": label}
