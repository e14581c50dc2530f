"""The OpenAI-compatible API (``/v1/chat/completions``, ``/v1/models``) as a FastAPI app.

This module imports FastAPI; only :mod:`rag.serve.server` imports it, when the server is built.

:func:`create_openai_api` builds the app that :mod:`rag.serve.server` mounts at ``/v1``.
Answers come from the same :class:`rag.ui.Backend` as the web chat. Answering runs in
worker threads, at most ``concurrency`` at once (the others wait their turn), so the
event loop keeps serving the page and other requests meanwhile.

Authentication: when the server has a login (``--auth`` or ``RAG_AUTH=user:password``),
every request must carry the same credentials, as ``Authorization: Bearer user:password``
(the OpenAI clients' API key) or HTTP Basic; otherwise the answer is a 401 error object.
Failed attempts are throttled and lock a name out as the web login does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import threading
import time
from collections.abc import AsyncIterator

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from rag.errors import InputError, RagError
from rag.serve.openai_compat import (
    APIError,
    ChatRequest,
    answer_text,
    chunk,
    completion,
    extensions,
    model_ids,
    model_object,
    models_list,
    new_id,
    parse_body,
    parse_chat_request,
    sse,
    too_large,
)
from rag.types import Answer

log = logging.getLogger(__name__)

#: seconds between SSE comments sent while an answer is being prepared (keeps proxies from closing)
KEEP_ALIVE_SECONDS = 10.0
#: login checks run at once (each failed one sleeps up to 2 s)
LOGIN_THREADS = 4


def create_openai_api(backend, *, auth: tuple[str, str] | None, concurrency: int):
    """The ``/v1`` app over ``backend`` (a :class:`rag.ui.Backend`).

    Args:
        auth: (user, password) every request must present, or None for no login.
        concurrency: answers computed at once; further requests wait.
    """
    from rag.ui.backend import LoginGuard

    api = FastAPI(title="rag: OpenAI-compatible chat completions", docs_url=None, redoc_url=None, openapi_url=None)
    limiter = anyio.CapacityLimiter(concurrency)
    guard = LoginGuard(*auth) if auth else None
    models = model_ids(backend.answerers)
    created = int(time.time())
    tasks: set[asyncio.Task] = set()  # the producers of open streams (kept from the garbage collector)

    def error_response(exc: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="rag"'} if exc.status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @api.exception_handler(APIError)
    async def on_api_error(request: Request, exc: APIError):
        return error_response(exc)

    @api.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return error_response(APIError(404, f"no such route: {request.method} {request.url.path} (this server "
                                                "has POST /v1/chat/completions and GET /v1/models)",
                                           code="unknown_url"))
        if exc.status_code == 405:
            return error_response(APIError(405, f"{request.method} is not allowed on {request.url.path}",
                                           code="method_not_allowed"))
        return error_response(APIError(exc.status_code, str(exc.detail)))

    @api.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        return error_response(APIError(400, f"bad request: {exc.errors()[:1]}"))

    @api.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(APIError(500, "the server failed to answer (its log says why)", type="server_error"))

    # A failed login sleeps (throttling) in a thread of its own pool: a flood of bad keys delays
    # other API logins, not the threads the web app and the answers run in.
    login_limiter = anyio.CapacityLimiter(LOGIN_THREADS)

    async def authenticate(request: Request) -> None:
        if guard is None:
            return
        user_pass = credentials(request.headers.get("authorization"))
        if user_pass is None:
            raise APIError(401, "this server needs a login: send 'Authorization: Bearer USER:PASSWORD' (the "
                                "OpenAI clients' API key) or HTTP Basic, with the app's user and password",
                           code="invalid_api_key")
        if not await anyio.to_thread.run_sync(guard, *user_pass, limiter=login_limiter):
            raise APIError(401, "wrong user or password (or too many failed attempts: wait a few minutes)",
                           code="invalid_api_key")

    secured = [Depends(authenticate)]

    @api.get("/models", dependencies=secured)
    async def list_models():
        return models_list(models, created)

    @api.get("/models/{model}", dependencies=secured)
    async def get_model(model: str):
        if model not in models:
            raise APIError(404, f"the model {model!r} does not exist", param="model", code="model_not_found")
        return model_object(model, models[model][1], created)

    @api.post("/chat/completions", dependencies=secured)
    async def chat_completions(request: Request):
        req = parse_chat_request(parse_body(await read_body(request)), models)
        log.debug("chat completion (%s%s, %d earlier turns): %.80r", req.model, ", streamed" if req.stream else "",
                  len(req.history), req.question)
        if not req.stream:
            try:
                answer = await anyio.to_thread.run_sync(lambda: backend.ask(req.question, history=req.history,
                                                                             **req.backend_kwargs()),
                                                        limiter=limiter)
            except RagError as exc:
                raise answering_error(exc) from None
            return completion(answer, req.model)
        stream_pieces = backend.assistant(req.answerer).generative is None
        items, stop = start_producer(req)
        first = await items.get()  # an error before any text is still an HTTP error status
        if isinstance(first, BaseException):
            stop.set()
            raise answering_error(first)
        return StreamingResponse(events(req, first, items, stop, stream_pieces), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def start_producer(req: ChatRequest) -> tuple[asyncio.Queue, threading.Event]:
        """Run ``backend.stream`` in a worker thread (within the limiter) that puts each piece,
        then the Answer (or the exception raised), then None on the returned queue."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def put(item) -> None:
            loop.call_soon_threadsafe(items.put_nowait, item)

        def produce() -> None:
            try:
                for item in backend.stream(req.question, req.history, **req.backend_kwargs()):
                    if stop.is_set():  # the client went away
                        return
                    put(item)
            except BaseException as exc:  # noqa: BLE001 (handed to the request, which reports it)
                put(exc)
            finally:
                put(None)

        task = asyncio.ensure_future(anyio.to_thread.run_sync(produce, limiter=limiter))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return items, stop

    async def events(req: ChatRequest, first, items: asyncio.Queue, stop: threading.Event,
                     stream_pieces: bool) -> AsyncIterator[bytes]:
        """The SSE body. Extractive pieces are sent as they come; a language model's raw words
        are not (verification may drop some), its verified text is sent at the end."""
        cid, created_at = new_id(), int(time.time())
        sent = ""
        try:
            yield sse(chunk(cid, created_at, req.model, {"role": "assistant", "content": ""}))
            item = first
            while True:
                if item is None or isinstance(item, BaseException):  # after the 200: an error event, as OpenAI's
                    err = answering_error(item or RuntimeError("the answer stream ended without an answer"))
                    yield sse(err.to_dict())
                    break
                if isinstance(item, Answer):
                    full = answer_text(item)
                    if not full.startswith(sent):
                        log.warning("the streamed pieces are not the start of the final answer; sending it whole")
                        sent, full = "", "\n\n" + full
                    if full[len(sent):]:
                        yield sse(chunk(cid, created_at, req.model, {"content": full[len(sent):]}))
                    yield sse(chunk(cid, created_at, req.model, {}, "stop", **extensions(item)))
                    break
                text = item
                while isinstance(item, str) and not items.empty():  # pieces already there go as one chunk
                    item = items.get_nowait()
                    if isinstance(item, str):
                        text += item
                if stream_pieces and text:
                    sent += text
                    yield sse(chunk(cid, created_at, req.model, {"content": text}))
                if isinstance(item, str):
                    item = await next_item(items)
                    while item is KEEP_ALIVE:
                        yield b": keep-alive\n\n"
                        item = await next_item(items)
            yield sse("[DONE]")
        finally:
            stop.set()

    return api


KEEP_ALIVE = object()


async def next_item(items: asyncio.Queue):
    """The producer's next item, or :data:`KEEP_ALIVE` after :data:`KEEP_ALIVE_SECONDS` without one."""
    try:
        return await asyncio.wait_for(items.get(), KEEP_ALIVE_SECONDS)
    except asyncio.TimeoutError:
        return KEEP_ALIVE


#: a body announced up to this many times the limit is read (and dropped) before the 413, so a
#: client still sending it gets the answer instead of a broken pipe; a larger one is not read
DRAIN_FACTOR = 8


async def read_body(request: Request) -> bytes:
    """The request body, refused past :data:`~rag.serve.openai_compat.MAX_BODY_BYTES`; never more
    than :data:`DRAIN_FACTOR` times that is read."""
    from rag.serve.openai_compat import MAX_BODY_BYTES

    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES * DRAIN_FACTOR:
        raise too_large()
    body = bytearray()
    seen = 0
    async for part in request.stream():
        seen += len(part)
        if seen > MAX_BODY_BYTES * DRAIN_FACTOR:
            raise too_large()
        if seen <= MAX_BODY_BYTES:
            body += part
    if seen > MAX_BODY_BYTES:
        raise too_large()
    return bytes(body)


def credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from ``Bearer user:password`` or ``Basic base64(user:password)``; None if
    absent or unreadable."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    user, colon, password = value.partition(":")
    return (user, password) if colon and user else None


def answering_error(exc: BaseException) -> APIError:
    """What a failure while answering becomes: the user's fault (400) or the server's (500)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, InputError):
        return APIError(400, str(exc), code="invalid_value")
    if isinstance(exc, RagError):
        log.warning("answering failed: %s", exc)
        return APIError(500, str(exc), type="server_error")
    log.error("answering failed", exc_info=exc)
    return APIError(500, "the server failed to answer (its log says why)", type="server_error")

