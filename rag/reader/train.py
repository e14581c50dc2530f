"""Training and measuring the answer reader (``rag reader train``).

Data: PIAF v1.0 (MIT), split **by Wikipedia article** into train and dev with a
fixed seed, so no dev question shares a page with a training one. For each
question the default retriever fetches the top chunks over the whole PIAF corpus
(every passage indexed); the candidates are their sentences, a sentence holding a
gold answer is a positive, the others (same passage, other retrieved passages) are
hard negatives. A second group per question leaves the answer-bearing passage out
(the rest of its page stays in), which is the near miss the reader must learn to
score low: the topic is covered, the fact is not.

XQuAD en->es and en->de are never trained on: they measure cross-lingual transfer.
The cosine-only baseline (the previous answer stage's score) is computed on the same
candidates, in the same run.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.analysis import detect_language
from rag.evaluation import GoldItem
from rag.reader.features import FEATURES

log = logging.getLogger(__name__)

#: retrieved chunks whose sentences are candidates (AnswerConfig.k's default)
K = 6


@dataclass
class Group:
    """One question's candidates."""

    dataset: str
    split: str  # train / dev / test
    qid: str
    variant: str  # "full" (answer passage kept) or "removed" (left out: a near miss)
    x: np.ndarray
    y: np.ndarray
    baseline: np.ndarray  # the cosine-only score of the previous answer stage
    passage_retrieved: bool
    sentences: list[str] = field(default_factory=list)


def split_pages(titles: Sequence[str], dev_share: float, seed: int) -> set[str]:
    """The page titles that go to dev."""
    pages = sorted(set(titles))
    random.Random(seed).shuffle(pages)
    return set(pages[: int(round(len(pages) * dev_share))])


def collect(index, items: Sequence[GoldItem], *, dataset: str, split_of: Callable[[GoldItem], str],
            variants: Sequence[str] = ("full", "removed"), progress: Callable[[], None] | None = None) -> list[Group]:
    """Candidates, features and labels for every item (see the module docstring)."""
    from rag.evaluation import contains_answer
    from rag.evidence import SentenceVectors
    from rag.reader.candidates import build_candidates
    from rag.reader.features import cosine_score, featurize
    from rag.retriever import Retriever

    retriever = Retriever(index)
    vectors = SentenceVectors(index.embedder, index, "title")
    groups = []
    for it in items:
        qvec = index.embedder.embed_query(it.question)
        hits = retriever.retrieve(it.question, k=2 * K, query_vector=qvec)
        q_lang = detect_language(it.question)
        gold = set(it.relevant)
        for variant in variants:
            hs = hits[:K] if variant == "full" else [h for h in hits if h.article_id not in gold][:K]
            cands = build_candidates(hs, qvec, vectors, lang=q_lang)
            if not cands:
                continue
            cross = detect_language(" ".join(c.text for c in cands[:3])) != q_lang
            x = featurize(it.question, q_lang, cands, cross)
            y = np.array([contains_answer(c.text, it.answers) for c in cands], dtype=np.float32)
            base = cosine_score(x)
            groups.append(Group(dataset, split_of(it), it.id, variant, x, y, base,
                                any(h.article_id in gold for h in hs), [c.text for c in cands]))
        if progress:
            progress()
    return groups


# -- the model --------------------------------------------------------------------------


def fit(groups: Sequence[Group], *, hidden: int = 32, epochs: int = 60, seed: int = 0, l2: float = 1e-4,
        listwise: float = 1.0) -> dict[str, np.ndarray]:
    """Train the perceptron: pointwise log-loss (absolute probabilities, for refusal)
    plus a listwise softmax term (the best sentence of each question first)."""
    import torch

    torch.manual_seed(seed)
    x = np.concatenate([g.x for g in groups])
    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    xs = [torch.tensor((g.x - mean) / scale) for g in groups]
    ys = [torch.tensor(g.y) for g in groups]
    w1 = torch.nn.Linear(len(FEATURES), hidden)
    w2 = torch.nn.Linear(hidden, 1)
    params = list(w1.parameters()) + list(w2.parameters())
    opt = torch.optim.Adam(params, lr=3e-3, weight_decay=l2)
    rng = random.Random(seed)
    order = list(range(len(groups)))
    for epoch in range(epochs):
        rng.shuffle(order)
        total = 0.0
        for b in range(0, len(order), 64):
            batch = order[b : b + 64]
            xb = torch.cat([xs[i] for i in batch])
            yb = torch.cat([ys[i] for i in batch])
            logits = w2(torch.relu(w1(xb))).squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yb)
            if listwise:
                off = 0
                lw = []
                for i in batch:
                    n = len(ys[i])
                    yi = ys[i]
                    if yi.sum() > 0:
                        li = logits[off : off + n]
                        lw.append(-(torch.log_softmax(li, 0) * (yi / yi.sum())).sum())
                    off += n
                if lw:
                    loss = loss + listwise * torch.stack(lw).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        if epoch % 10 == 0 or epoch == epochs - 1:
            log.info("epoch %d loss %.4f", epoch, total / max(1, len(order) // 64))
    return {
        "mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
        "w1": w1.weight.detach().numpy().T.copy(), "b1": w1.bias.detach().numpy().copy(),
        "w2": w2.weight.detach().numpy().T.copy(), "b2": w2.bias.detach().numpy().copy(),
        "temp": np.array(1.0, np.float32), "bias": np.array(0.0, np.float32),
    }


def calibrate(reader, groups: Sequence[Group]) -> None:
    """Platt scaling of the best candidate's logit on held-out groups: P(the top sentence answers)."""
    from scipy.optimize import minimize

    z, t = [], []
    for g in groups:
        lg = reader.logits(g.x)
        i = int(np.argmax(lg))
        z.append(float(lg[i]))
        t.append(float(g.y[i] > 0))
    z, t = np.array(z), np.array(t)

    def nll(p):
        s = 1 / (1 + np.exp(-np.clip(z * p[0] + p[1], -30, 30)))
        return -np.mean(t * np.log(s + 1e-9) + (1 - t) * np.log(1 - s + 1e-9))

    res = minimize(nll, np.array([1.0, 0.0]), method="Nelder-Mead")
    reader.params["temp"] = np.array(res.x[0], np.float32)
    reader.params["bias"] = np.array(res.x[1], np.float32)


# -- data -------------------------------------------------------------------------------


def _page(item: GoldItem) -> str:
    """PIAF passages are ``p<page>-<paragraph>-<hash>``: the page part."""
    return item.relevant[0].split("-")[0]


def gather(piaf: Path, xquad: Sequence[Path], work: Path, *, seed: int, dev_share: float,
           bar: Callable | None = None) -> list[Group]:
    """Every group of every set, cached under ``work`` (the slow part: retrieval)."""
    import pickle

    from rag.config import Config
    from rag.evaluation.datasets import load_squad, load_xquad
    from rag.evaluation.runner import build_or_reuse_index

    groups: list[Group] = []
    sets = [("piaf", lambda: load_squad(piaf))] + [(p.stem, lambda p=p: load_xquad(p)) for p in xquad]
    work.mkdir(parents=True, exist_ok=True)
    for name, load in sets:
        cache = work / f"reader-groups-{name}-{seed}-{dev_share}-v{len(FEATURES)}.pkl"
        if cache.exists():
            with open(cache, "rb") as fh:
                groups += pickle.load(fh)
            continue
        ds = load()
        index, _ = build_or_reuse_index(ds, work, Config())
        if name == "piaf":
            dev = split_pages([_page(it) for it in ds.items], dev_share, seed)
            split_of = lambda it: "dev" if _page(it) in dev else "train"  # noqa: E731
        else:
            split_of = lambda it: "test"  # noqa: E731
        b = bar(f"reader data {name}", len(ds.items)) if bar else None
        got = collect(index, ds.items, dataset=name, split_of=split_of, progress=b.update if b else None)
        if b:
            b.close()
        index.close() if hasattr(index, "close") else None
        with open(cache, "wb") as fh:
            pickle.dump(got, fh)
        groups += got
    return groups


# -- the cross-encoder ------------------------------------------------------------------


def sentence_titles(articles) -> dict[str, str]:
    """Sentence text -> its article's title (the cross-encoder reads the title too)."""
    from rag.chunking import split_sentences

    out = {}
    for a in articles:
        for s, e in split_sentences(a.text):
            out.setdefault(a.text[s:e], a.title)
    return out


def _title(titles: dict[str, str], texts: dict[str, str], sentence: str) -> str:
    t = titles.get(sentence)
    if t is None:
        t = next((title for text, title in texts.items() if sentence in text), "")
        titles[sentence] = t
    return t


def cross_pairs(groups: Sequence[Group], questions: dict[str, str], titles: dict[str, str],
                texts: dict[str, str], *, top: int, positives: bool) -> list[tuple[Group, list[int], list[tuple]]]:
    """Per group, the candidates the cross-encoder reads, as at query time: the ``top`` by
    the cosine score that are not questions (and, for training, up to two positives), as
    (group, candidate indexes, pairs)."""
    from rag.reader.cross import pair

    asks = FEATURES.index("is_question")
    out = []
    for g in groups:
        order = [i for i in np.argsort(-np.where(g.x[:, asks] > 0, -np.inf, g.baseline), kind="stable")[:top]
                 if g.x[i, asks] == 0]
        if not order:
            continue
        if positives:
            order += [i for i in np.flatnonzero(g.y > 0)[:2] if i not in order]
        q = questions[g.qid]
        out.append((g, [int(i) for i in order],
                    [pair(q, _title(titles, texts, g.sentences[i]), g.sentences[i]) for i in order]))
    return out


def train_cross(cross, items: Sequence[tuple[Group, list[int], list[tuple]]], *, epochs: int = 1, seed: int = 0,
                per_batch: int = 4, lr: float = 1e-4, head_lr: float = 2e-3, bar: Callable | None = None) -> None:
    """Fine-tune ``cross``'s top layers and head on the pairs of ``items``: a pointwise
    log-loss plus a listwise term per question (its answer sentence above its other
    candidates), with ``per_batch`` questions a step."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    items = list(items)
    # Questions of similar length share a batch (less padding); the batch order is shuffled.
    items.sort(key=lambda it: sum(len(a) + len(b) for a, b in it[2]) / max(1, len(it[2])))
    batches = [items[i : i + per_batch] for i in range(0, len(items), per_batch)]
    b = bar("cross-encoder: bottom layers", len(batches)) if bar else None
    cached = []
    for chunk in batches:
        pairs = [p for _, _, ps in chunk for p in ps]
        y = [float(g.y[i] > 0) for g, idx, _ in chunk for i in idx]
        sizes = [len(idx) for _, idx, _ in chunk]
        enc = cross.encode(pairs)
        h, mask = cross.bottom(enc)
        cached.append((h, mask, enc["attention_mask"], torch.tensor(y), sizes))
        if b:
            b.update(1)
    if b:
        b.close()
    cross.top.train()
    cross.head.train()
    opt = torch.optim.AdamW([{"params": cross.top.parameters(), "lr": lr},
                             {"params": cross.head.parameters(), "lr": head_lr}], weight_decay=0.01)
    steps = epochs * len(cached)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps))
    for epoch in range(epochs):
        order = list(range(len(cached)))
        rng.shuffle(order)
        b = bar(f"cross-encoder: epoch {epoch + 1}", len(order)) if bar else None
        total = 0.0
        for n, j in enumerate(order, 1):
            h, mask, am, y, sizes = cached[j]
            logits = cross.upper(h, mask, am)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            lists = []
            for lg, yy in zip(torch.split(logits, sizes), torch.split(y, sizes)):
                if yy.sum() > 0:
                    lists.append(-(torch.log_softmax(lg, 0) * (yy / yy.sum())).sum())
            if lists:
                loss = loss + torch.stack(lists).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            if n % 100 == 0:
                log.info("cross-encoder step %d: mean loss %.4f", n, total / n)
            if b:
                b.update(1)
        if b:
            b.close()
        log.info("cross-encoder epoch %d: mean loss %.4f", epoch + 1, total / max(1, len(order)))
    cross.top.eval()
    cross.head.eval()


def cross_scores(cross, items, bar: Callable | None = None, batch: int = 32) -> list[np.ndarray]:
    """The cross-encoder's logit for each item's pairs."""
    flat = [p for _, _, pairs in items for p in pairs]
    out = []
    b = bar("cross-encoder: scoring", len(flat)) if bar else None
    for i in range(0, len(flat), batch):
        out.append(cross.logits(flat[i : i + batch]))
        if b:
            b.update(len(flat[i : i + batch]))
    if b:
        b.close()
    flat_scores = np.concatenate(out) if out else np.zeros(0)
    res, k = [], 0
    for _, idx, _ in items:
        res.append(flat_scores[k : k + len(idx)])
        k += len(idx)
    return res


# -- the command ------------------------------------------------------------------------


def _combination_inputs(items, scores):
    """Per item: (cross logits, cosine scores, type matches, labels) of the candidates read."""
    from rag.reader.features import answer_type_match

    return [(np.asarray(s, dtype=np.float64), g.baseline[idx].astype(np.float64),
             answer_type_match(g.x)[idx].astype(np.float64), (g.y[idx] > 0).astype(np.float64))
            for (g, idx, _), s in zip(items, scores)]


def fit_combination(items, scores, *, l2: float = 1e-3, listwise: float = 1.0) -> tuple[float, float, float, float]:
    """``(a, b, d, k)`` of P = sigmoid(a * cross logit + b * cosine score + d * type match + k):
    a logistic regression over the candidates read (pointwise, so P means what it says,
    near misses included) plus a listwise term (each question's answer sentence first,
    since the same logit orders them), L2 on the two weights that are not scale-bound."""
    from scipy.optimize import minimize

    from rag.reader.features import combination_logit

    rows = _combination_inputs(items, scores)
    c, b, t, y = (np.concatenate([r[j] for r in rows]) for j in range(4))
    bounds = np.cumsum([0] + [len(r[0]) for r in rows])
    answered = [(bounds[i], bounds[i + 1]) for i, r in enumerate(rows) if r[3].any()]

    def nll(p):
        z = np.clip(combination_logit(p, c, b, t), -30, 30)
        loss = float(np.mean(np.logaddexp(0, z) - y * z)) + l2 * float(p[0] ** 2 + p[2] ** 2)
        if listwise and answered:
            lw = [-float((z[i:j] - np.logaddexp.reduce(z[i:j])) @ (y[i:j] / y[i:j].sum())) for i, j in answered]
            loss += listwise * float(np.mean(lw))
        return loss

    res = minimize(nll, np.array([0.5, 10.0, 0.5, -9.0]), method="L-BFGS-B")
    return tuple(round(float(v), 5) for v in res.x)


def combined(items, scores, combine) -> list[np.ndarray]:
    from rag.reader.features import combination_logit

    return [1 / (1 + np.exp(-np.clip(combination_logit(combine, c, base, t), -30, 30)))
            for c, base, t, _ in _combination_inputs(items, scores)]


def summarize(items, probs, scores) -> dict:
    """Top-1 accuracy (full groups whose passage was retrieved) of the combined reader, the
    cross-encoder alone and the cosine baseline (the first candidate read: they are read in its order)."""
    full4 = [(g, idx, p, s) for (g, idx, _), p, s in zip(items, probs, scores)
             if g.variant == "full" and g.passage_retrieved]
    full = [(g, idx, p) for g, idx, p, _ in full4]
    if not full:
        return {}
    return {"questions": len(full),
            "reader_top1": round(float(np.mean([g.y[idx[int(np.argmax(p))]] > 0 for g, idx, p in full])), 4),
            "cross_only_top1": round(float(np.mean([g.y[idx[int(np.argmax(s))]] > 0 for g, idx, p, s in full4])), 4),
            "cosine_top1": round(float(np.mean([g.y[idx[0]] > 0 for g, idx, _ in full])), 4),
            "answer_in_cross_read": round(float(np.mean([g.y[idx].max() > 0 for g, idx, _ in full])), 4)}


def refusal_table(items, probs, threshold: float | None = None) -> dict:
    """How well the best probability separates answerable questions (passage kept, best
    sentence right) from near misses (passage left out, best sentence wrong): at the best
    threshold for these items, or at a given (calibrated) one."""
    from rag.evaluation import best_threshold

    pos, neg = [], []
    for (g, idx, _), p in zip(items, probs):
        i = int(np.argmax(p))
        if g.variant == "full" and g.passage_retrieved and g.y[idx[i]] > 0:
            pos.append(float(p[i]))
        elif g.variant == "removed" and g.y[idx[i]] == 0:
            neg.append(float(p[i]))
    if not pos or not neg:
        return {}
    if threshold is not None:
        kept = sum(p >= threshold for p in pos) / len(pos)
        refused = sum(p < threshold for p in neg) / len(neg)
        return {"threshold": threshold, "answerable": len(pos), "near_misses": len(neg),
                "answerable_kept": round(kept, 4), "unanswerable_refused": round(refused, 4)}
    t, table = best_threshold(pos, neg)
    row = next(r for r in table if r["threshold"] == t)
    return {"answerable": len(pos), "near_misses": len(neg), **row}


def train_command(piaf: Path, xquad: Sequence[Path], work: Path, out_dir: Path, *, seed: int = 0,
                  dev_share: float = 0.2, calib_share: float = 0.15, negatives: int = 6, removed_negatives: int = 2,
                  top: int = 6, epochs: int = 1, lr: float = 1e-4, top_layers: int = 6, xquad_sample: int = 400,
                  bar: Callable | None = None) -> dict:
    """The whole recipe (see the module docstring and ``MODEL_CARD.md``): gather, train the
    feature scorer and the cross-encoder on PIAF train, fit the combination on a held-out
    slice of the train pages (and, for questions in another language than the passages, on
    the first XQuAD file), measure on PIAF dev and XQuAD; write the weights into ``out_dir``."""
    import copy

    import torch

    from rag.config import Config
    from rag.evaluation.datasets import load_squad, load_xquad
    from rag.embedding import get_embedder
    from rag.reader.cross import CrossEncoder
    from rag.reader.model import Reader

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    groups = gather(piaf, xquad, work, seed=seed, dev_share=dev_share, bar=bar)
    questions, titles, texts, page = {}, {}, {}, {}
    for ds in [load_squad(piaf)] + [load_xquad(p) for p in xquad]:
        for it in ds.items:
            questions[it.id] = it.question
            page[it.id] = _page(it)
        titles.update(sentence_titles(ds.articles))
        texts.update({a.text: a.title for a in ds.articles})
    train = [g for g in groups if g.split == "train"]
    calib_pages = split_pages([page[g.qid] for g in train], calib_share, seed + 1)
    fit_on = [g for g in train if page[g.qid] not in calib_pages]
    calib = [g for g in train if page[g.qid] in calib_pages]

    features = Reader(fit(fit_on, seed=seed), {"trained_on": "PIAF v1.0 train pages"})
    calibrate(features, calib)

    embedder = get_embedder("e5-small", cache_dir=Config().cache_dir, runtime="torch")  # trained in torch
    st = embedder.model
    base = st[0].auto_model
    n = len(base.encoder.layer)
    cross = CrossEncoder(base, st.tokenizer, torch.nn.ModuleList(copy.deepcopy(layer) for layer in
                                                                 base.encoder.layer[n - top_layers:]),
                         torch.nn.Linear(base.config.hidden_size, 1))
    full = [g for g in fit_on if g.variant == "full" and g.y.max() > 0]
    removed = [g for g in fit_on if g.variant == "removed"]
    items = (cross_pairs(full, questions, titles, texts, top=negatives, positives=True)
             + cross_pairs(removed, questions, titles, texts, top=removed_negatives, positives=False))
    train_cross(cross, items, epochs=epochs, seed=seed, lr=lr, bar=bar)

    def read(gs):
        its = cross_pairs(gs, questions, titles, texts, top=top, positives=False)
        return its, cross_scores(cross, its, bar=bar)

    c_items, c_scores = read(calib)
    combine = fit_combination(c_items, c_scores)
    refusal = refusal_table(c_items, combined(c_items, c_scores, combine))
    tests = sorted({g.dataset for g in groups if g.split == "test"})
    sampled = {}
    for name in tests:
        gs = [g for g in groups if g.dataset == name]
        qids = sorted({g.qid for g in gs})
        random.Random(seed).shuffle(qids)
        keep = set(qids[:xquad_sample])
        sampled[name] = [g for g in gs if g.qid in keep]
    combine_cross, refusal_cross, cross_from = combine, {}, None
    read_cache = {}
    if tests:
        cross_from = Path(xquad[0]).stem
        read_cache[cross_from] = read(sampled[cross_from])
        x_items, x_scores = read_cache[cross_from]
        combine_cross = fit_combination(x_items, x_scores)
        refusal_cross = refusal_table(x_items, combined(x_items, x_scores, combine_cross))
    metrics = {}
    dev = [g for g in groups if g.split == "dev"]
    for name, gs in [("piaf-dev", dev)] + [(t, sampled[t]) for t in tests]:
        its, sc = read_cache.get(name) or read(gs)
        cmb = combine if name == "piaf-dev" else combine_cross
        probs = combined(its, sc, cmb)
        metrics[name] = summarize(its, probs, sc)
        thr = (refusal if name == "piaf-dev" else refusal_cross).get("threshold")
        metrics[name]["refusal_at_calibrated_threshold"] = refusal_table(its, probs, thr)
        metrics[name]["reliability"] = _reliability(its, probs)
        if name == cross_from:
            metrics[name]["note"] = "its questions fitted combine_cross: not an unseen set for the reader's order"
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"trained_on": f"PIAF v1.0 train pages ({len({g.qid for g in fit_on})} questions); combination and "
                          f"refusal calibrated on {len({g.qid for g in calib})} questions of other train pages",
            "cross_lingual_combination_from": cross_from,
            "seed": seed, "dev_share": dev_share, "calib_share": calib_share, "negatives": negatives,
            "removed_negatives": removed_negatives, "top": top, "epochs": epochs, "lr": lr, "top_layers": top_layers,
            "combine": list(combine), "combine_cross": list(combine_cross),
            "refusal_calibration": refusal, "refusal_calibration_cross": refusal_cross, "metrics": metrics,
            "seconds": round(time.perf_counter() - t0, 1)}
    features.meta.update({k: meta[k] for k in ("seed", "dev_share")})
    features.save(out_dir / "reader-v1.npz")
    cross.save(out_dir / "cross-v2.safetensors", meta)
    return meta


def _reliability(items, probs, bins: int = 10) -> list[dict]:
    """Confidence of the chosen sentence vs the share of questions where it holds the answer."""
    conf, ok = [], []
    for (g, idx, _), p in zip(items, probs):
        i = int(np.argmax(p))
        conf.append(float(p[i]))
        ok.append(float(g.y[idx[i]] > 0))
    conf, ok = np.array(conf), np.array(ok)
    out = []
    for b in range(bins):
        m = (conf >= b / bins) & ((conf < (b + 1) / bins) if b < bins - 1 else (conf <= 1))
        if m.any():
            out.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int(m.sum()),
                        "confidence": round(float(conf[m].mean()), 3), "right": round(float(ok[m].mean()), 3)})
    return out
