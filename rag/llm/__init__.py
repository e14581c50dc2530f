"""Language-model backends: a small base class, one file per backend, and a parser.

``parse_llm_spec(spec)`` understands:

- ``openai:BASE_URL#MODEL``: an OpenAI-compatible chat-completions server, e.g.
  ``openai:http://127.0.0.1:8080/v1#qwen`` for llama.cpp's ``llama-server``;
- ``llama-cpp:PATH``: a GGUF file run in-process (needs ``pip install 'rag-news[llm]'``).

Nothing here opens a connection or loads a model until a backend is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.llm.base import LLM, Message

if TYPE_CHECKING:
    from rag.llm.llama_cpp import LlamaCppLLM
    from rag.llm.openai_compat import OpenAICompatibleLLM

__all__ = ["LLM", "LlamaCppLLM", "Message", "OpenAICompatibleLLM", "SPEC_FORMS", "parse_llm_spec"]

SPEC_FORMS = ("openai:BASE_URL#MODEL (e.g. openai:http://127.0.0.1:8080/v1#qwen)", "llama-cpp:PATH (a .gguf file)")

# httpx costs ~100 ms to import; only pay it when the backend is used.
_LAZY = {
    "OpenAICompatibleLLM": "rag.llm.openai_compat",
    "LlamaCppLLM": "rag.llm.llama_cpp",
}


def parse_llm_spec(spec: str, *, timeout: float = 60.0) -> LLM:
    """Build (but do not load or contact) the language model that ``spec`` names.

    Args:
        spec: ``openai:BASE_URL#MODEL`` or ``llama-cpp:PATH``.
        timeout: for ``openai:``, seconds without an answer before giving up.

    Returns:
        An :class:`LLM`.

    Raises:
        ConfigError: ``spec`` has neither form, lacks the model or path, or names a
            bad URL or a missing model file.
    """
    text = spec.strip() if isinstance(spec, str) else ""
    scheme, colon, rest = text.partition(":")
    scheme, rest = scheme.strip().lower(), rest.strip()
    if colon and scheme == "openai":
        base_url, _, model = rest.partition("#")
        if not base_url.strip() or not model.strip():
            raise ConfigError(f"language model {spec!r} needs a base URL and a model: "
                              f"openai:BASE_URL#MODEL, e.g. openai:http://127.0.0.1:8080/v1#qwen")
        from rag.llm.openai_compat import OpenAICompatibleLLM

        return OpenAICompatibleLLM(base_url, model, timeout=timeout)
    if colon and scheme == "llama-cpp":
        if not rest:
            raise ConfigError(f"language model {spec!r} needs the path of a .gguf file: llama-cpp:PATH")
        from rag.llm.llama_cpp import LlamaCppLLM

        return LlamaCppLLM(rest)
    raise ConfigError(f"unknown language model {spec!r}: use {SPEC_FORMS[0]} or {SPEC_FORMS[1]}")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag.llm' has no attribute {name!r}")
