"""The answer reader: a small learned scorer of "this sentence answers the question".

A two-layer perceptron over :mod:`rag.reader.features`, trained by
``rag reader train`` (see :mod:`rag.reader.train` and ``MODEL_CARD.md``) and shipped
as a few kilobytes of NumPy weights inside the package. Its output is a probability,
calibrated on held-out questions, so the assistant can both pick the sentence to
quote and refuse when no sentence is likely to answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.errors import ConfigError
from rag.reader.features import FEATURES, Candidate, cosine_score, featurize

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).with_name("reader-v1.npz")
FORMAT = "rag-reader/1"


class Reader:
    """Scores candidate sentences; ``probabilities`` are calibrated P(sentence answers).

    Args:
        params: ``w1, b1, w2, b2`` (the perceptron), ``mean, scale`` (feature
            standardization), ``temp, bias`` (calibration of the logit).
        meta: what the weights were trained on (shown in the model card).
    """

    def __init__(self, params: dict[str, np.ndarray], meta: dict | None = None):
        self.params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
        self.meta = meta or {}
        if self.params["w1"].shape[0] != len(FEATURES):
            raise ConfigError(f"reader weights expect {self.params['w1'].shape[0]} features, "
                              f"this version computes {len(FEATURES)}: retrain with `rag reader train`")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Reader":
        """The bundled reader, or weights saved by :meth:`save` at ``path``.

        Raises:
            ConfigError: a missing or foreign file, or weights for other features.
        """
        path = Path(path) if path else DEFAULT_WEIGHTS
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                params = {k: z[k] for k in z.files if k != "meta"}
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot read reader weights at {path}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{path} is not a reader weights file ({FORMAT})")
        if meta.get("features") != list(FEATURES):
            raise ConfigError(f"reader weights at {path} were trained on other features: retrain with `rag reader train`")
        return cls(params, meta)

    def save(self, path: str | Path) -> None:
        from rag.fsutil import atomic_write

        meta = {**self.meta, "format": FORMAT, "features": list(FEATURES)}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **self.params)

        atomic_write(Path(path), write)

    def logits(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        z = (x - p["mean"]) / p["scale"]
        h = np.maximum(z @ p["w1"] + p["b1"], 0.0)
        return (h @ p["w2"] + p["b2"]).reshape(-1)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities_of_logits(self.logits(x))

    def probabilities_of_logits(self, logits: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of logits already computed by :meth:`logits`."""
        p = self.params
        z = logits * float(p["temp"]) + float(p["bias"])
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def score(self, question: str, q_lang: str, candidates: Sequence[Candidate], cross: bool) -> np.ndarray:
        """P(answers) for each candidate."""
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        return self.probabilities(featurize(question, q_lang, candidates, cross))


_DEFAULT: Reader | None = None


def default_reader() -> Reader:
    """The bundled reader, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Reader.load()
    return _DEFAULT


class AnswerReader:
    """The reader the assistant uses: the feature scorer ranks every candidate, the
    cross-encoder (when the index's embedder is the e5 model it was trained on) reads
    the ``top`` first ones with the question; a logistic combination of both logits,
    calibrated on held-out questions, is the probability that a sentence answers.

    Args:
        features: the :class:`Reader` over :mod:`rag.reader.features`.
        cross: a :class:`~rag.reader.cross.CrossEncoder`, or None (features alone).
        combine: ``(a, b, c)``: P = sigmoid(a * cross logit + b * feature logit + c).
        top: how many candidates the cross-encoder reads.
    """

    def __init__(self, features: Reader, cross=None, combine: Sequence[float] | None = None, top: int = 5):
        self.features = features
        self.cross = cross
        self.combine = tuple(combine) if combine is not None else None
        self.top = top

    @classmethod
    def for_embedder(cls, embedder) -> "AnswerReader":
        """The bundled reader, with the cross-encoder when ``embedder`` can carry it."""
        from rag.reader.cross import CrossEncoder, load_meta

        cross = CrossEncoder.for_embedder(embedder)
        meta = load_meta() if cross is not None else {}
        return cls(default_reader(), cross, meta.get("combine"), int(meta.get("top", 5)))

    #: weight of the reader's logit next to the cosine score when ordering sentences (see :meth:`read`)
    RANK_WEIGHT = 0.015

    def read(self, question: str, q_lang: str, candidates: Sequence[Candidate], cross_lingual: bool
             ) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, order)``: P(answers) per candidate, and the score to order them by.

        The order is the previous answer stage's cosine score (0.75 sentence + 0.25 chunk
        cosine + 0.15 lexical overlap) plus a small weight of the reader's logit. Measured
        on PIAF dev and XQuAD (README), the reader alone beats that cosine score on French
        questions but not across languages; together they beat both on the news gold set.
        """
        if not candidates:
            empty = np.zeros(0, dtype=np.float32)
            return empty, empty
        x = featurize(question, q_lang, candidates, cross_lingual)
        p = self._probabilities(question, candidates, x)
        base = cosine_score(x)
        q = np.clip(p, 1e-6, 1 - 1e-6)
        order = base + self.RANK_WEIGHT * np.log(q / (1 - q))
        order = np.where(p <= 0, -np.inf, order)  # questions never answer
        return p, order

    def score(self, question: str, q_lang: str, candidates: Sequence[Candidate], cross_lingual: bool) -> np.ndarray:
        """P(answers) for each candidate; the ``top`` read by the cross-encoder rank above the rest."""
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        return self._probabilities(question, candidates, featurize(question, q_lang, candidates, cross_lingual))

    def _probabilities(self, question: str, candidates: Sequence[Candidate], x: np.ndarray) -> np.ndarray:
        # A sentence that is itself a question never answers one (its successor may).
        asks = x[:, FEATURES.index("is_question")] > 0
        logits = self.features.logits(x)
        p_features = self.features.probabilities_of_logits(logits)
        if self.cross is None or self.combine is None:
            return np.where(asks, 0.0, p_features).astype(np.float32)
        from rag.reader.cross import pair

        f = np.where(asks, -1e9, logits)
        order = [i for i in np.argsort(-f, kind="stable")[: self.top] if not asks[i]]
        if not order:
            return np.zeros(len(candidates), dtype=np.float32)
        c = self.cross.logits([pair(question, candidates[i].hit.title, candidates[i].text) for i in order])
        a, b, k = self.combine
        p = 1.0 / (1.0 + np.exp(-np.clip(a * c + b * f[order] + k, -30, 30)))
        out = np.where(asks, 0.0, p_features * 0.5)
        out = np.minimum(out, float(p.min()) * 0.999)  # the cross-read candidates stay first
        out[order] = p
        return out.astype(np.float32)
