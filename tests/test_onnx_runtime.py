"""The ONNX Runtime path serves the same vectors and reader logits as the torch reference.

An index built by one runtime is searched by the other: if they drifted apart, the
scores of an old index would silently change. The export is checked when it is built;
these tests check it again from the outside, on strings chosen to be awkward.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rag.embedding.onnx_runtime import mean_pool

VARIED = [
    "Qui coordonne la coalition des volontaires ?",
    "who coordinates the coalition?",
    "Le PIB a progressé de 0,7 % au 3e trimestre 2024, soit 1 234,56 milliards d'euros.",
    "Œuvre, cœur, naïve — « guillemets » et points de suspension…",
    "東京は日本の首都です。 Москва — столица России.",
    "I love this! 😀🎉",
    "x",
    "",
    "mot " * 700,  # longer than the model reads: both runtimes truncate at the same token
]


def test_mean_pool_ignores_padding():
    states = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    assert mean_pool(states, mask).tolist() == [[2.0, 3.0]]


@pytest.fixture(scope="module")
def runtimes(model_cache):
    from rag.embedding import get_embedder

    return (get_embedder("e5-small", cache_dir=model_cache, runtime="onnx"),
            get_embedder("e5-small", cache_dir=model_cache, runtime="torch"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_onnx_vectors_match_sentence_transformers(runtimes, kind):
    onnx, torch_ = runtimes
    a, b = onnx.embed_batch(VARIED, kind=kind), torch_.embed_batch(VARIED, kind=kind)
    assert a.shape == b.shape == (len(VARIED), 384)
    assert float(np.sum(a * b, axis=1).min()) >= 0.9999
    assert onnx.model_id == torch_.model_id  # an index records one id for both
    assert onnx.count_tokens(VARIED) == torch_.count_tokens(VARIED)
    assert onnx.max_tokens == torch_.max_tokens


@pytest.mark.slow
def test_onnx_reader_logits_match_torch(runtimes):
    from rag.reader.cross import CrossEncoder, OnnxCrossEncoder, pair

    onnx, torch_ = runtimes
    a, b = CrossEncoder.for_embedder(onnx), CrossEncoder.for_embedder(torch_)
    assert isinstance(a, OnnxCrossEncoder) and isinstance(b, CrossEncoder)
    pairs = [pair("Qui coordonne la coalition ?", "Coalition", "La France et le Royaume-Uni en assurent la coordination."),
             pair("When did it start?", "", "Le mouvement a débuté le 5 décembre 2019."),
             pair("x", "", "mot " * 400)]
    assert np.allclose(a.logits(pairs), b.logits(pairs), atol=1e-3)


@pytest.mark.slow
def test_an_index_built_with_torch_is_served_by_onnx(tmp_path, seed_dir, model_cache):
    import rag
    from rag.config import Config

    path = tmp_path / "index"
    config = Config(index_dir=path, cache_dir=model_cache, runtime="torch")
    index = rag.Index.create(path, config)
    index.add([seed_dir])
    index.close()
    question = "Qui coordonne la coalition ?"
    results = {}
    for runtime in ("torch", "onnx"):
        opened = rag.Index.open(path, config.with_(runtime=runtime))
        results[runtime] = [(h.chunk_id, round(h.score, 4)) for h in opened.retriever().retrieve(question, k=4)]
        opened.close()
    assert results["onnx"] == results["torch"]


@pytest.mark.slow
def test_the_query_path_imports_no_torch(tmp_path, model_cache):
    """A cold `rag ask` over an e5 index never imports torch, transformers or sentence-transformers
    once the model is prepared (preparing it is the one step that needs torch)."""
    import subprocess

    from rag.embedding import get_embedder

    get_embedder("e5-small", cache_dir=model_cache).warm_up()  # materialize and export, in this process
    code = (
        "import sys, rag\n"
        "from rag.config import Config\n"
        f"idx = rag.Index.create({str(tmp_path / 'i')!r}, Config(index_dir={str(tmp_path / 'i')!r}, cache_dir={str(model_cache)!r}))\n"
        "idx.add([rag.Article(id='a', title='Coalition', text='La France et le Royaume-Uni coordonnent la coalition des volontaires.')])\n"
        "ans = rag.Assistant(idx.retriever()).ask('Qui coordonne la coalition ?')\n"
        "assert ans.citations, ans.text\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'llama_index') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_onnx_pools_sentence_spans_as_sentence_transformers_does(runtimes):
    onnx, torch_ = runtimes
    texts = ["Coalition\nLe Royaume-Uni et la France coordonnent la coalition. Elle compte 31 pays.",
             "Titre\nUne phrase. " + "mot " * 600 + "Fin."]  # the last span is truncated away: embedded apart
    spans = [[(10, 58), (59, 80)], [(6, 17), (len(texts[1]) - 4, len(texts[1]))]]
    (a, pa), (b, pb) = onnx.embed_passages_with_spans(texts, spans), torch_.embed_passages_with_spans(texts, spans)
    assert float(np.sum(a * b, axis=1).min()) >= 0.9999
    for x, y in zip(pa, pb):
        assert x.shape == y.shape == (2, 384)
        assert float(np.sum(x * y, axis=1).min()) >= 0.9999
