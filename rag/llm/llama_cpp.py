"""A backend that runs a GGUF model in-process with llama-cpp-python.

llama-cpp-python is an optional extra (``rag-news[local-llm]``, or ``[llm]`` without
a bundled model) because it compiles llama.cpp on install. It is imported, and the
model loaded, on first use.

Build it without ``GGML_NATIVE`` and with the instruction sets named (``make run-llm``
does): a native build crashed in ``llama_decode`` on these virtual CPUs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, LLMError, LLMTimeoutError
from rag.llm.base import LLM, Message, check_request

__all__ = ["LlamaCppLLM", "PackagedLlamaLLM", "INSTALL_HINT", "CMAKE_ARGS"]

logger = logging.getLogger(__name__)

#: the build that runs here (the pin is in pyproject.toml's ``local-llm`` extra)
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
INSTALL_HINT = ("a local model needs llama-cpp-python: make run-llm, or "
                f"CMAKE_ARGS=\"{CMAKE_ARGS}\" pip install -e '.[local-llm]' "
                "(compiles llama.cpp: about 8 minutes on 2 idle cores)")
_GGUF_MAGIC = b"GGUF"


class LlamaCppLLM(LLM):
    """A chat model in a local GGUF file, run by llama.cpp.

    One model instance answers one request at a time: concurrent calls wait
    for each other (a llama.cpp context holds a single conversation).

    Args:
        model_path: the ``.gguf`` file.
        n_ctx: context window in tokens (prompt plus reply).
        n_threads: CPU threads; ``None`` lets llama.cpp choose.
        chat_format: a llama-cpp-python chat format name (``"chatml"``, ``"llama-3"``...);
            ``None`` uses the template stored in the GGUF file.
        timeout: seconds a reply may take, from the request to its last token; past it
            generation stops with :class:`~rag.errors.LLMTimeoutError` (checked between
            tokens: a prompt being read is not interrupted). ``None``: no limit.

    Attributes:
        last_stats: of the last reply: ``prompt_tokens``, ``completion_tokens``,
            ``first_token_s`` (request to first token) and ``total_s``.

    Raises:
        ConfigError: the file is missing or not a GGUF file, or a setting is invalid.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        chat_format: str | None = None,
        timeout: float | None = None,
    ):
        self.model_path = Path(model_path).expanduser()
        self._check_path()
        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 1:
            raise ConfigError(f"n_ctx must be a positive integer, got {n_ctx!r}")
        if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be a positive integer or None, got {n_threads!r}")
        if chat_format is not None and (not isinstance(chat_format, str) or not chat_format.strip()):
            raise ConfigError(f"chat_format must be a non-empty name or None, got {chat_format!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ConfigError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.chat_format = chat_format
        self.timeout = timeout
        self.name = f"llama-cpp:{self.model_path}"
        self.last_stats: dict[str, float] = {}
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def warm_up(self) -> None:
        """Import llama-cpp-python and load the model, if not done yet.

        Raises:
            LLMError: llama-cpp-python is not installed, or the model cannot be loaded.
        """
        self._get_model()

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        return self._generate(check_request(messages, max_tokens, temperature), max_tokens, temperature)

    def _generate(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]:
        model = self._get_model()
        with self._run_lock:
            started = time.perf_counter()
            first = None
            tokens = 0
            try:
                # A chunk is one token (its text may be empty: half of a multi-byte character).
                for chunk in model.create_chat_completion(
                    messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature
                ):
                    tokens += 1
                    if first is None:
                        first = time.perf_counter() - started
                    piece = _delta_content(chunk)
                    if piece:
                        yield piece
                    if self.timeout is not None and time.perf_counter() - started > self.timeout:
                        raise LLMTimeoutError(f"the local model did not finish within {self.timeout:g} s "
                                              f"({tokens} tokens written)")
            except (ValueError, RuntimeError, OSError) as exc:
                # e.g. "Requested tokens (5000) exceed context window of 4096"
                raise LLMError(f"llama.cpp failed on {self.model_path}: {exc}") from exc
            finally:
                total = time.perf_counter() - started
                # The context holds the prompt then the reply: its length less the reply is the prompt.
                n_ctx_tokens = int(getattr(model, "n_tokens", 0) or 0)
                self.last_stats = {"prompt_tokens": max(0, n_ctx_tokens - tokens), "completion_tokens": tokens,
                                   "first_token_s": first if first is not None else total, "total_s": total}
            logger.debug("%s answered in %.2f s (%d tokens, first after %.2f s)", self.name, total, tokens,
                         self.last_stats["first_token_s"])

    def _get_model(self) -> Any:
        with self._load_lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        try:
            import llama_cpp
        except ImportError as exc:
            raise LLMError(INSTALL_HINT) from exc
        path = self._resolve()
        started = time.perf_counter()
        # llama-cpp-python's default is half the cores: one thread of two here.
        threads = self.n_threads or len(os.sched_getaffinity(0))
        try:
            model = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                chat_format=self.chat_format,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise LLMError(f"llama.cpp cannot load {self.model_path}: {exc}") from exc
        logger.info("loaded %s in %.1f s (%d threads)", path, time.perf_counter() - started, threads)
        return model

    def _check_path(self) -> None:
        _check_gguf(self.model_path)

    def _resolve(self) -> Path:
        """The GGUF file to load (checked again: it may have gone since ``__init__``)."""
        _check_gguf(self.model_path)
        return self.model_path


class PackagedLlamaLLM(LlamaCppLLM):
    """A model of :data:`rag.llm.local_model.MODELS`, joined from its PyPI parts on first load.

    Args:
        model: a key of ``MODELS`` (``None``: the default model).
        cache_dir: where the joined file goes (default: the rag cache).
        Other arguments as :class:`LlamaCppLLM`.

    Raises:
        ConfigError: no such model, or a bad setting.
    """

    def __init__(self, model: str | None = None, *, cache_dir: Path | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None, timeout: float | None = None):
        from rag.config import default_cache_dir
        from rag.llm.local_model import get_model

        self.model = get_model(model)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        super().__init__(self.cache_dir / "llm" / self.model.filename, n_ctx=n_ctx, n_threads=n_threads,
                         timeout=timeout)
        self.name = f"local:{self.model.name}"
        #: read by :class:`rag.answering.GenerativeAnswerer` (see ``PartedModel.not_found_rule``)
        self.not_found_rule = self.model.not_found_rule

    def _check_path(self) -> None:
        pass  # joined on first load

    def _resolve(self) -> Path:
        from rag.llm.local_model import ensure_model

        return ensure_model(self.model.name, self.cache_dir)


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"the llama-cpp model file {path} does not exist"
                          + (" (it is a folder)" if path.is_dir() else ""))
    try:
        with path.open("rb") as f:
            magic = f.read(len(_GGUF_MAGIC))
    except OSError as exc:
        raise ConfigError(f"the llama-cpp model file {path} cannot be read: {exc}") from exc
    if magic != _GGUF_MAGIC:
        raise ConfigError(f"the llama-cpp model file {path} is not a GGUF file (it does not start with 'GGUF')")


def _delta_content(chunk: Any) -> str:
    try:
        content = chunk["choices"][0]["delta"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LLMError(f"llama.cpp returned a chunk without choices[0].delta: {str(chunk)[:300]}") from exc
    if content is not None and not isinstance(content, str):
        raise LLMError(f"llama.cpp returned content that is not text: {content!r:.300}")
    return content or ""
