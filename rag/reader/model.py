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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.errors import ConfigError
from rag.reader.features import FEATURES, Candidate, answer_type_match, combination_logit, cosine_score, featurize

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
    """The reader the assistant uses. With the cross-encoder (when the index's embedder is
    the e5 model it was trained on), the ``top`` candidates by the cosine score are read
    together with the question, and a logistic combination, fitted on held-out questions,
    of the cross-encoder's logit, the cosine score and whether the sentence holds the kind
    of answer asked (:func:`~rag.reader.features.answer_type_match`) both orders them and
    is the probability that a sentence answers. Without it, the feature scorer ranks alone.

    Args:
        features: the :class:`Reader` over :mod:`rag.reader.features`.
        cross: a :class:`~rag.reader.cross.CrossEncoder`, or None (features alone).
        combine: ``(a, b, d, k)``: P = sigmoid(a * cross logit + b * cosine score + d * type match + k)
            for a question in the passages' language.
        combine_cross: the same for a question in another language (the cross-encoder was
            trained on French pairs only: its logits run lower across languages); defaults to ``combine``.
        top: how many candidates the cross-encoder reads.
    """

    def __init__(self, features: Reader, cross=None, combine: Sequence[float] | None = None, top: int = 6,
                 combine_cross: Sequence[float] | None = None):
        self.features = features
        self.cross = cross
        self.combine = tuple(combine) if combine is not None else None
        if self.combine is not None and len(self.combine) != 4:
            raise ConfigError(f"the reader's combination has {len(self.combine)} weights, this version needs 4: "
                              "retrain with `rag reader train`")
        self.combine_cross = tuple(combine_cross) if combine_cross is not None else self.combine
        self.top = top

    @classmethod
    def for_embedder(cls, embedder) -> "AnswerReader":
        """The bundled reader, with the cross-encoder when ``embedder`` can carry it."""
        from rag.reader.cross import CrossEncoder, load_meta

        cross = CrossEncoder.for_embedder(embedder)
        meta = load_meta() if cross is not None else {}
        return cls(default_reader(), cross, meta.get("combine"), int(meta.get("top", 6)), meta.get("combine_cross"))

    #: without the cross-encoder: weight of the feature scorer's logit next to the cosine score in the order
    RANK_WEIGHT = 0.015

    def read(self, question: str, q_lang: str, candidates: Sequence[Candidate], cross_lingual: bool
             ) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, order)``: P(answers) per candidate, and the score to order them by
        (higher first; ``-inf`` for a sentence that is itself a question, which never answers).

        The candidates the cross-encoder read come first, in the order of the combined
        logit; the others follow in cosine order, with half the lowest probability read.
        """
        p, order, _ = self.read_typed(question, q_lang, candidates, cross_lingual)
        return p, order

    #: candidates beyond :attr:`top` that hold what the question asks for (``also``) and are read too
    EXTRA = 3

    def read_typed(self, question: str, q_lang: str, candidates: Sequence[Candidate], cross_lingual: bool,
                   also: Callable[[str], bool] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`read`, and whether each candidate holds the kind of answer asked
        (:func:`~rag.reader.features.answer_type_match`). ``also`` tells a sentence that holds
        what the question sets its answer must hold (an age, an amount, a name: :mod:`rag.focus`);
        the first :attr:`EXTRA` such sentences beyond the cosine's ``top`` are read as well, so
        "l'homme de 57 ans" ranked tenth by the cosine gets the reader's probability."""
        if not candidates:
            empty = np.zeros(0, dtype=np.float32)
            return empty, empty, empty
        x = featurize(question, q_lang, candidates, cross_lingual)
        asks = x[:, FEATURES.index("is_question")] > 0
        base = cosine_score(x)
        typed = answer_type_match(x)
        if self.cross is None or self.combine is None:
            p = np.where(asks, 0.0, self.features.probabilities(x)).astype(np.float32)
            q = np.clip(p, 1e-6, 1 - 1e-6)
            order = np.where(asks, -np.inf, base + self.RANK_WEIGHT * np.log(q / (1 - q)))
            return p, order, typed
        from rag.reader.cross import pair

        by_cosine = [int(i) for i in np.argsort(-np.where(asks, -np.inf, base), kind="stable") if not asks[i]]
        read = by_cosine[: self.top]
        if also is not None:
            read += [i for i in by_cosine[self.top:] if also(candidates[i].text)][: self.EXTRA]
        if not read:
            return np.zeros(len(candidates), dtype=np.float32), np.full(len(candidates), -np.inf), typed
        c = self.cross.logits([pair(question, candidates[i].hit.title, candidates[i].text) for i in read])
        z = combination_logit(self.combine_cross if cross_lingual else self.combine, c, base[read], typed[read])
        p_read = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        p = np.where(asks, 0.0, float(p_read.min()) * 0.5)
        order = np.where(asks, -np.inf, float(z.min()) - 1.0 + (base - 2.0) * 1e-3)
        p[read] = p_read
        order[read] = z
        return p.astype(np.float32), order, typed

    def score(self, question: str, q_lang: str, candidates: Sequence[Candidate], cross_lingual: bool) -> np.ndarray:
        """P(answers) for each candidate (see :meth:`read`)."""
        return self.read(question, q_lang, candidates, cross_lingual)[0]
