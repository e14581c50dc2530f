"""The cross-encoder half of the reader: question and sentence read *together*.

A bi-encoder compares two vectors made apart, so it cannot tell the sentence that
holds the asked date from a sentence about the same event. A cross-encoder reads the
pair in one pass. None is installable offline, so we make one from the embedding
model we already load: multilingual-e5-small's bottom layers are used as they are
(shared with the embedder, no second copy in memory), its top layers are fine-tuned
on PIAF (``rag reader train``) and shipped with a small head as
``cross-v2.safetensors``: their difference from the base layers, int8 per row.

It only scores the few candidates the feature reader ranks first, so a question
costs one batched forward pass over a handful of short pairs.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).with_name("cross-v2.safetensors")
MAX_TOKENS = 128
#: the embedder this reader was trained on top of (its bottom layers are reused)
BASE_MODEL = "multilingual-e5-small"


def load_meta(path: str | Path | None = None) -> dict:
    """What was saved next to the weights: training settings, metrics and the calibrated combination."""
    path = Path(path) if path else WEIGHTS
    try:
        return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def pair(question: str, title: str, sentence: str) -> tuple[str, str]:
    """The two texts of one pair, in e5's own query/passage convention."""
    return f"query: {question}", (f"passage: {title}\n{sentence}" if title else f"passage: {sentence}")


class CrossEncoder:
    """Scores (question, title + sentence) pairs; a higher logit means "answers".

    Args:
        base: the e5 ``BertModel`` (its embeddings and bottom layers are used as they are).
        tokenizer: its tokenizer.
        top: fine-tuned copies of the top layers (``torch.nn.ModuleList``).
        head: ``torch.nn.Linear(hidden, 1)`` over the mean-pooled last layer.
    """

    def __init__(self, base, tokenizer, top, head):
        self.base = base
        self.tokenizer = tokenizer
        self.top = top
        self.head = head
        self._lock = threading.Lock()

    @classmethod
    def for_embedder(cls, embedder, path: str | Path | None = None):
        """The cross-encoder over ``embedder``'s model, or None when it is not the e5 model
        the weights were trained on (another embedder keeps the feature reader alone).

        With the ONNX Runtime embedder it is an :class:`OnnxCrossEncoder` sharing that
        model's bottom layers (exported once, the first time); with sentence-transformers,
        this torch one."""
        path = Path(path) if path else WEIGHTS
        if not path.exists() or BASE_MODEL not in getattr(embedder, "model_id", ""):
            return None
        from rag.embedding.onnx_runtime import OnnxEmbedder

        if isinstance(embedder, OnnxEmbedder):
            return OnnxCrossEncoder.for_model(embedder.model, embedder.source_dir, path)
        st = embedder.model
        base = st[0].auto_model
        return cls.load(base, st.tokenizer, path)

    @classmethod
    def load(cls, base, tokenizer, path: str | Path) -> "CrossEncoder":
        """The fine-tuned layers are stored as their difference from ``base``'s (int8 per row
        for matrices, fp16 for vectors): the difference is small, so this costs nothing in
        accuracy and halves the file."""
        import torch
        from safetensors.torch import load_file

        stored = load_file(str(path))
        meta = load_meta(path)
        first = int(meta["base_layers"])
        top = torch.nn.ModuleList(copy.deepcopy(layer) for layer in base.encoder.layer[first:])
        state = {}
        for name, value in top.state_dict().items():
            if f"top.{name}.q" in stored:
                value = value + stored[f"top.{name}.q"].float() * stored[f"top.{name}.scale"].float().unsqueeze(-1)
            elif f"top.{name}.d" in stored:
                value = value + stored[f"top.{name}.d"].float()
            elif f"top.{name}" in stored:  # whole weights (the first training runs wrote these)
                value = stored[f"top.{name}"].float()
            else:
                from rag.errors import ConfigError

                raise ConfigError(f"cross-encoder weights at {path} lack {name}: retrain with `rag reader train`")
            state[name] = value
        top.load_state_dict(state)
        head = torch.nn.Linear(base.config.hidden_size, 1)
        head.load_state_dict({k[5:]: v.float() for k, v in stored.items() if k.startswith("head.")})
        top.eval()
        head.eval()
        return cls(base, tokenizer, top, head)

    def save(self, path: str | Path, meta: dict) -> None:
        import torch
        from safetensors.torch import save_file

        first = self.base_layers
        base = {f"{i}.{k}": v for i, layer in enumerate(self.base.encoder.layer[first:]) for k, v in layer.state_dict().items()}
        state = {}
        for name, value in self.top.state_dict().items():
            delta = (value - base[name]).float()
            if delta.dim() == 2:
                scale = delta.abs().amax(dim=1).clamp(min=1e-12) / 127.0
                state[f"top.{name}.q"] = torch.round(delta / scale.unsqueeze(-1)).to(torch.int8).contiguous()
                state[f"top.{name}.scale"] = scale.contiguous()
            else:
                state[f"top.{name}.d"] = delta.half().contiguous()
        state.update({f"head.{k}": v.float().contiguous() for k, v in self.head.state_dict().items()})
        save_file(state, str(path))
        Path(path).with_suffix(".json").write_text(json.dumps({**meta, "base_layers": first}, indent=1,
                                                              ensure_ascii=False), encoding="utf-8")

    @property
    def base_layers(self) -> int:
        return len(self.base.encoder.layer) - len(self.top)

    def encode(self, pairs: Sequence[tuple[str, str]]):
        return self.tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation="only_second",
                              max_length=MAX_TOKENS, return_tensors="pt")

    def bottom(self, batch):
        """The shared bottom layers' output and the attention mask (no gradient)."""
        import torch

        with torch.no_grad():
            h = self.base.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
            masks = dict(attention_mask=batch["attention_mask"], encoder_attention_mask=None, embedding_output=h,
                         encoder_hidden_states=None, cache=None)
            if "position_ids" in _parameters(self.base._create_attention_masks):  # transformers >= 5.25
                masks["position_ids"] = None
            mask, _ = self.base._create_attention_masks(**masks)
            for layer in self.base.encoder.layer[: self.base_layers]:
                h = layer(h, mask)
        return h, mask

    def upper(self, h, mask, attention_mask):
        """The fine-tuned layers and the head: one logit per pair."""
        for layer in self.top:
            h = layer(h, mask)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One logit per (question, passage) pair."""
        import torch

        if not pairs:
            return np.zeros(0, dtype=np.float32)
        with self._lock, torch.inference_mode():
            batch = self.encode(pairs)
            h, mask = self.bottom(batch)
            return self.upper(h, mask, batch["attention_mask"]).float().numpy()


class OnnxCrossEncoder:
    """The cross-encoder run by ONNX Runtime: the embedder's lower graph, then ours.

    ``cross-<hash>.onnx`` (next to the embedder's export) holds the layers above the
    embedder's split (the fine-tuned ones) and the head; it is exported from the torch
    weights once, checked against them, and reused by every later process.
    """

    def __init__(self, model, session):
        self.model = model
        self._session = session

    @classmethod
    def for_model(cls, model, st_dir: Path, path: Path) -> "OnnxCrossEncoder":
        """Load (exporting first if needed) the ONNX cross-encoder over the ``OnnxModel`` ``model``."""
        onnx_path = cls.graph_path(model, path)
        if not onnx_path.is_file():
            export_cross_onnx(Path(st_dir), path, onnx_path, model)
        return cls(model, model.session(onnx_path))

    @staticmethod
    def graph_path(model, path: Path) -> Path:
        """Where the ONNX graph of the weights at ``path`` over ``model``'s split is kept."""
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return model.folder / f"cross-{digest}-split{model.split}.onnx"

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One logit per (question, passage) pair."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        encodings = self.model.encode(list(pairs), max_length=MAX_TOKENS, strategy="only_second")
        # Shortest first, a few at a time: a pair padded to the longest of its batch costs as
        # much as the longest, and pairs run 60 to 128 tokens (batches of 3 measured 13 % faster
        # than one batch of 7 on 2 cores; the logits are the same to 1e-7).
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.empty(len(encodings), dtype=np.float32)
        for lo in range(0, len(order), self.BATCH):
            rows = order[lo:lo + self.BATCH]
            ids, types, mask = self.model.batch([encodings[i] for i in rows])
            hidden = self.model.lower(ids, types, mask)
            out[rows] = np.ravel(self._session.run(None, {"hidden": hidden, "attention_mask": mask})[0])
        return out

    #: pairs per forward pass (sorted by length)
    BATCH = 3


#: pairs the ONNX cross-encoder is checked on against the torch one when it is exported
_CHECK_PAIRS = (
    ("Qui coordonne la coalition ?", "La coalition des volontaires", "Le Royaume-Uni et la France assurent une coordination conjointe."),
    ("When did the storm hit Corsica?", "Tempête Ciara", "La tempête a touché la Corse lundi 10 février, privant 20 000 foyers d'électricité."),
    ("Combien de morts ?", "", "Le bilan s'élève à cinq morts et onze blessés, selon la préfecture."),
    ("x", "Titre", "mot " * 300),
)


def export_cross_onnx(st_dir: Path, weights: Path, out: Path, model) -> Path:
    """Export the torch cross-encoder's layers above ``model.split`` and its head to ``out``
    (needs torch, once), after checking its logits against torch's (within 0.01)."""
    import os
    import tempfile

    import torch

    from rag.embedding.onnx_runtime import fuse, layer_stack, load_sentence_transformer, quiet_exporter
    from rag.errors import EmbedderError

    logging.getLogger("rag.setup").info("Exporting the answer reader to ONNX Runtime (first run only, about 10-30 s)…")
    st = load_sentence_transformer(st_dir)
    base = st[0].auto_model
    torch_cross = CrossEncoder.load(base, st.tokenizer, weights)
    if model.split > torch_cross.base_layers:
        raise EmbedderError(f"the embedder's ONNX split ({model.split} layers) is above the cross-encoder's "
                            f"shared layers ({torch_cross.base_layers}): re-export with a lower split")
    layers = torch.nn.ModuleList([*base.encoder.layer[model.split: torch_cross.base_layers], *torch_cross.top])
    stack = layer_stack(layers, torch_cross.head).eval()
    pairs = [pair(q, t, p) for q, t, p in _CHECK_PAIRS]
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        ids, types, mask = model.batch(model.encode(pairs, max_length=MAX_TOKENS, strategy="only_second"))
        hidden = torch.from_numpy(model.lower(ids, types, mask))
        with torch.no_grad(), quiet_exporter():
            torch.onnx.export(stack, (hidden, torch.from_numpy(mask)), tmp, input_names=["hidden", "attention_mask"],
                              output_names=["logits"], dynamic_shapes={"hidden": {0: batch, 1: seq},
                                                                       "attention_mask": {0: batch, 1: seq}},
                              dynamo=True, external_data=False, verbose=False)
        fuse(Path(tmp), heads=base.config.num_attention_heads, hidden=base.config.hidden_size)
        got = OnnxCrossEncoder(model, model.session(tmp)).logits(pairs)
        want = torch_cross.logits(pairs)
        if not np.allclose(got, want, atol=0.01):
            raise EmbedderError(f"the ONNX cross-encoder disagrees with torch: {got} vs {want}")
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users of a shared cache
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("reader cross-encoder exported to %s (logits within %.5f of torch)", out, float(np.abs(got - want).max()))
    return out


def _parameters(fn) -> frozenset:
    """The parameter names of ``fn`` (transformers' private mask helper gained one in 5.25)."""
    import inspect

    return frozenset(inspect.signature(fn).parameters)
