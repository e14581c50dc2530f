"""The cross-encoder half of the reader: question and sentence read *together*.

A bi-encoder compares two vectors made apart, so it cannot tell the sentence that
holds the asked date from a sentence about the same event. A cross-encoder reads the
pair in one pass. None is installable offline, so we make one from the embedding
model we already load: multilingual-e5-small's bottom layers are used as they are
(shared with the embedder, no second copy in memory), its top layers are fine-tuned
on PIAF (``rag reader train``) and shipped with a small head as
``cross-v1.safetensors``: their difference from the base layers, int8 per row.

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

WEIGHTS = Path(__file__).with_name("cross-v1.safetensors")
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
    def for_embedder(cls, embedder, path: str | Path | None = None) -> "CrossEncoder | None":
        """The cross-encoder over ``embedder``'s model, or None when it is not the e5 model
        the weights were trained on (another embedder keeps the feature reader alone)."""
        path = Path(path) if path else WEIGHTS
        if not path.exists() or BASE_MODEL not in getattr(embedder, "model_id", ""):
            return None
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
            mask, _ = self.base._create_attention_masks(attention_mask=batch["attention_mask"],
                                                        encoder_attention_mask=None, embedding_output=h,
                                                        encoder_hidden_states=None, cache=None)
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
