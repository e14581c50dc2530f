"""Loaders that turn public QA and news data into (articles, gold questions).

- SQuAD-format JSON (PIAF, Service-Public, any SQuAD v1 file): each paragraph
  becomes one article (title = the page title), its questions the gold set.
- XQuAD cross-lingual JSONL: ``question_en`` asked over the Spanish/German ``context``.
- News JSONL (OrangeSum): each article's title is a query whose answer is the article.

``holdout`` makes unanswerable questions honestly: the passages of a random share
of the pages are left out of the corpus, so their questions have no answer in it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InputError
from rag.evaluation.metrics import GoldItem
from rag.types import Article, normalize_text


@dataclass
class Dataset:
    name: str
    articles: list[Article]
    items: list[GoldItem]


def _pid(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode("utf-8")).hexdigest()[:12]


def _split_pages(pages: list[str], holdout: float, seed: int) -> set[str]:
    rng = random.Random(seed)
    shuffled = sorted(pages)
    rng.shuffle(shuffled)
    return set(shuffled[: int(round(len(shuffled) * holdout))])


def load_squad(path: str | Path, *, sample: int | None = None, seed: int = 0, holdout: float = 0.0,
               name: str | None = None, near_miss: bool = False) -> Dataset:
    """A SQuAD v1 file as a corpus of passages and a gold set.

    Args:
        sample: keep this many questions (drawn with ``seed``) — the corpus keeps every passage.
        holdout: share of pages whose passages are removed from the corpus; their
            sampled questions become unanswerable.
        near_miss: with ``holdout``, remove that share of *passages* instead of pages: the
            rest of each page stays, so its questions' topic is covered and only the
            answer-bearing passage is missing (a near miss, as on news).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"not a SQuAD-format file: {exc}", path=str(path)) from exc
    if near_miss:
        held = _split_pages([f"{d.get('title', str(i))}\x00{j}" for i, d in enumerate(data)
                             for j in range(len(d.get("paragraphs", [])))], holdout, seed)
    else:
        held = _split_pages([d.get("title", str(i)) for i, d in enumerate(data)], holdout, seed)
    articles, items = [], []
    for i, doc in enumerate(data):
        title = normalize_text(doc.get("title", f"page {i}")).replace("_", " ")
        for j, para in enumerate(doc.get("paragraphs", [])):
            page = f"{doc.get('title', str(i))}\x00{j}" if near_miss else doc.get("title", str(i))
            ctx = normalize_text(para["context"])
            pid = f"p{i}-{j}-{_pid(doc.get('title', str(i)), str(j))}"
            if page not in held:
                articles.append(Article(id=pid, title=title, text=ctx, source=name or path.stem))
            for qa in para.get("qas", []):
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a.get("text")))
                if not answers or qa.get("is_impossible"):
                    continue
                items.append(GoldItem(id=str(qa.get("id") or f"{pid}-{len(items)}"), question=qa["question"],
                                      answers=answers, unanswerable=page in held,
                                      support=(ctx,) if page not in held else (), relevant=(pid,), lang=None))
    return Dataset(name or path.stem, articles, _sample(items, sample, seed))


def load_xquad(path: str | Path, *, sample: int | None = None, seed: int = 0, holdout: float = 0.0,
               name: str | None = None) -> Dataset:
    """XQuAD cross-lingual JSONL: the English question over the other-language passage."""
    path = Path(path)
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise InputError(f"not an XQuAD JSONL file: {exc}", path=str(path)) from exc
    held = _split_pages(list({r["title"] for r in rows}), holdout, seed)
    passages: dict[str, Article] = {}
    items = []
    for r in rows:
        ctx = normalize_text(r["context"])
        pid = "x" + _pid(r["title"], ctx)
        if r["title"] not in held and pid not in passages:
            passages[pid] = Article(id=pid, title=r["title"].replace("_", " "), text=ctx, source=name or path.stem)
        answers = tuple(dict.fromkeys(a["text"] for a in r["answers"]))
        items.append(GoldItem(id=str(r["id"]), question=r["question_en"], answers=answers,
                              unanswerable=r["title"] in held, support=(ctx,) if r["title"] not in held else (),
                              relevant=(pid,), lang="en"))
    return Dataset(name or path.stem, list(passages.values()), _sample(items, sample, seed))


def iter_news(path: str | Path) -> Iterator[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_news(path: str | Path, *, limit: int = 5000, sample: int | None = None, seed: int = 0,
              query_field: str = "title", name: str | None = None) -> Dataset:
    """The first ``limit`` usable articles of a news JSONL; each title asks for its own article."""
    articles, items, seen = [], [], set()
    for rec in iter_news(path):
        body = (rec.get("article") or rec.get("text") or "").strip()
        title = (rec.get("title") or "").strip()
        query = (rec.get(query_field) or "").strip()
        key = body[:200]
        if not body or not title or not query or key in seen:  # empty bodies and duplicates
            continue
        seen.add(key)
        aid = str(rec.get("id") or _pid(title, body))
        articles.append(Article(id=aid, title=title, text=normalize_text(body), date=rec.get("date"),
                                source=name or "news", heading=rec.get("heading")))
        items.append(GoldItem(id=aid, question=query, answers=(), relevant=(aid,)))
        if len(articles) >= limit:
            break
    return Dataset(name or Path(path).name.split(".")[0], articles, _sample(items, sample, seed))


def _sample(items: list[GoldItem], n: int | None, seed: int) -> list[GoldItem]:
    if n is None or n >= len(items):
        return items
    rng = random.Random(seed)
    return rng.sample(items, n)
