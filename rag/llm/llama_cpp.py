"""A backend that runs a GGUF model in-process with llama-cpp-python.

llama-cpp-python is an optional extra (``pip install 'rag-news[llm]'``) because it
compiles llama.cpp on install. It is imported, and the model loaded, on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, LLMError
from rag.llm.base import LLM, Message, check_request

__all__ = ["LlamaCppLLM", "INSTALL_HINT"]

logger = logging.getLogger(__name__)

INSTALL_HINT = ("the llama-cpp backend needs the optional extra: pip install 'rag-news[llm]' "
                "(compiles llama.cpp, about 8 minutes)")
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
    ):
        self.model_path = Path(model_path).expanduser()
        _check_gguf(self.model_path)
        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 1:
            raise ConfigError(f"n_ctx must be a positive integer, got {n_ctx!r}")
        if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be a positive integer or None, got {n_threads!r}")
        if chat_format is not None and (not isinstance(chat_format, str) or not chat_format.strip()):
            raise ConfigError(f"chat_format must be a non-empty name or None, got {chat_format!r}")
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.chat_format = chat_format
        self.name = f"llama-cpp:{self.model_path}"
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
            pieces = 0
            try:
                for chunk in model.create_chat_completion(
                    messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature
                ):
                    piece = _delta_content(chunk)
                    if piece:
                        pieces += 1
                        yield piece
            except (ValueError, RuntimeError, OSError) as exc:
                # e.g. "Requested tokens (5000) exceed context window of 4096"
                raise LLMError(f"llama.cpp failed on {self.model_path}: {exc}") from exc
            logger.debug("%s answered in %.2f s (%d pieces)", self.name, time.perf_counter() - started, pieces)

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
        _check_gguf(self.model_path)  # it may have gone since __init__
        started = time.perf_counter()
        try:
            model = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                chat_format=self.chat_format,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise LLMError(f"llama.cpp cannot load {self.model_path}: {exc}") from exc
        logger.info("loaded %s in %.1f s", self.model_path, time.perf_counter() - started)
        return model


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
