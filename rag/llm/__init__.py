"""Language-model backends: a small base class, one file per backend, and a parser.

``parse_llm_spec(spec)`` understands:

- ``openai:BASE_URL#MODEL``: an OpenAI-compatible chat-completions server, e.g.
  ``openai:http://127.0.0.1:8080/v1#qwen`` for llama.cpp's ``llama-server``;
- ``llama-cpp:PATH``: a GGUF file run in-process (needs llama-cpp-python: ``make run-llm``);
- ``local``: the bundled local model (:data:`rag.llm.local_model.DEFAULT_MODEL`, from the
  ``local-llm`` extra's packages), joined into the cache on first use;
  ``local:NAME`` another of :data:`rag.llm.local_model.MODELS`; ``local:PATH.gguf`` any GGUF file.

Nothing here opens a connection or loads a model until a backend is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.llm.base import LLM, Message

if TYPE_CHECKING:
    from rag.llm.llama_cpp import LlamaCppLLM, PackagedLlamaLLM
    from rag.llm.openai_compat import OpenAICompatibleLLM

__all__ = ["LLM", "LlamaCppLLM", "Message", "OpenAICompatibleLLM", "PackagedLlamaLLM", "SPEC_FORMS",
           "parse_llm_spec"]

SPEC_FORMS = ("openai:BASE_URL#MODEL (e.g. openai:http://127.0.0.1:8080/v1#qwen)", "llama-cpp:PATH (a .gguf file)",
              "local (the bundled model), local:NAME or local:PATH.gguf")

# httpx costs ~100 ms to import; only pay it when the backend is used.
_LAZY = {
    "OpenAICompatibleLLM": "rag.llm.openai_compat",
    "LlamaCppLLM": "rag.llm.llama_cpp",
    "PackagedLlamaLLM": "rag.llm.llama_cpp",
}


def parse_llm_spec(spec: str, *, timeout: float = 60.0) -> LLM:
    """Build (but do not load or contact) the language model that ``spec`` names.

    Args:
        spec: ``openai:BASE_URL#MODEL``, ``llama-cpp:PATH``, ``local``, ``local:NAME`` or ``local:PATH.gguf``.
        timeout: seconds without an answer before giving up (``openai:``), or seconds
            a local model may take for a whole reply.

    Returns:
        An :class:`LLM`.

    Raises:
        ConfigError: ``spec`` has none of these forms, lacks the model or path, or names a
            bad URL, a missing model file or an unknown local model.
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

        return LlamaCppLLM(rest, timeout=timeout)
    if scheme == "local":
        from rag.llm.llama_cpp import LlamaCppLLM, PackagedLlamaLLM

        if colon and not rest:
            raise ConfigError(f"language model {spec!r} needs a model name or a .gguf path after 'local:' "
                              "(or just 'local' for the bundled model)")
        if not colon or "/" not in rest and not rest.lower().endswith(".gguf"):
            return PackagedLlamaLLM(rest or None, timeout=timeout)
        llm = LlamaCppLLM(rest, timeout=timeout)
        llm.name = f"local:{llm.model_path}"
        return llm
    raise ConfigError(f"unknown language model {spec!r}: use {', '.join(SPEC_FORMS[:-1])} or {SPEC_FORMS[-1]}")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag.llm' has no attribute {name!r}")
