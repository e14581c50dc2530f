"""Candidate sentences for the reader: every sentence of the retrieved chunks, with
the question's cosine to the sentence as the index stored it (title as context)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rag.chunking import chunk_sentences, embedding_text
from rag.reader.features import Candidate, sentence_facts

log = logging.getLogger(__name__)

#: Sentences shorter than this (a dateline, "AFP") are never quoted.
MIN_CHARS = 8


def build_candidates(hits: Sequence, query_vec: np.ndarray, vectors, *, lang: str | None = None) -> list[Candidate]:
    """The sentences of ``hits`` (best hit first, article order within a hit), each once.

    Args:
        hits: retrieved chunks (:class:`rag.types.Hit`), best first.
        query_vec: the question's embedding.
        vectors: a :class:`rag.evidence.SentenceVectors` (stored vectors, else embedded once).
    Returns:
        Candidates with ``prev``/``next`` linking neighbours of the same chunk. Text that
        addresses a language model is never a candidate.
    """
    from rag.evidence import looks_like_instructions

    seen: set[tuple] = set()
    out: list[Candidate] = []
    for rank, h in enumerate(hits):
        previous = -1
        for s, e, sentence in chunk_sentences(h.text, h.start):
            key = (h.article_id, s, e)
            if key in seen:
                previous = -1
                continue
            seen.add(key)
            if len(sentence.strip()) < MIN_CHARS:
                continue
            if looks_like_instructions(sentence):
                log.warning("ignored a sentence that reads like instructions to a model in article %s", h.article_id)
                previous = -1
                continue
            c = Candidate(h, rank, s, e, sentence, 0.0, prev=previous, facts=sentence_facts(sentence, lang))
            if previous >= 0:
                out[previous].next = len(out)
            previous = len(out)
            out.append(c)
    if out:
        keys = [(c.hit.article_id, c.start, c.end) for c in out]
        vecs = vectors.get(keys, [embedding_text(c.hit.title, c.text) for c in out])
        sims = vecs @ np.asarray(query_vec, dtype=np.float32)
        for c, d in zip(out, sims):
            c.dense = float(d)
    return out
