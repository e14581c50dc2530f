"""Citation verification: every sentence of a generated answer must be backed by its source.

A sentence passes when every citation it carries names a source that exists (one that
carries none is checked against the source most like it, and cites it if it passes),
one of its cited sources holds a sentence close to it in embedding space (at or above
the threshold, set from gold data), and the numbers and names it states appear in the
cited text.

A sentence in another language than its source (an English answer over a French
article) is held to the cross-lingual threshold, and a kept one is labelled as a
translation, "(translated from French)", while its citation quotes the source's own
sentence: the reader sees the words the article used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.analysis import detect_language, fold, names, numbers, words
from rag.chunking import chunk_sentences, split_sentences
from rag.evidence import SentenceVectors, looks_like_instructions
from rag.types import Citation, Hit, SentenceCheck

MARKER = re.compile(r"\s*\[(\d{1,3})\]")

_LANGUAGES = {"en": {"fr": "French", "en": "English", "es": "Spanish", "de": "German", "it": "Italian"},
              "fr": {"fr": "français", "en": "anglais", "es": "espagnol", "de": "allemand", "it": "italien"}}


def translation_label(source_lang: str, claim_lang: str) -> str:
    """"translated from French" (or "traduit du français"), in the sentence's language."""
    if claim_lang == "fr":
        name = _LANGUAGES["fr"].get(source_lang, source_lang)
        return f"traduit de l'{name}" if name[:1] in "aeiou" else f"traduit du {name}"
    return f"translated from {_LANGUAGES['en'].get(source_lang, source_lang)}"


@dataclass(frozen=True)
class Quote:
    """The source sentence that best backs an answer sentence."""

    source: int  # 1-based source number as given to the model
    start: int
    end: int
    text: str
    similarity: float


@dataclass
class Verified:
    """A verified answer: the text that survived, its citations and the verdicts."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    checks: list[SentenceCheck] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return sum(not c.supported for c in self.checks)


class CitationVerifier:
    """Checks answer sentences against the numbered sources they cite."""

    def __init__(self, embedder, threshold: float, threshold_cross: float | None = None, *, store=None):
        self.embedder = embedder
        # Plain sentences, without the title used for retrieval: the title makes every
        # sentence of an article look alike, which is what verification must tell apart.
        self.vectors = SentenceVectors(embedder, store, "plain")
        self.threshold = threshold
        self.threshold_cross = threshold if threshold_cross is None else threshold_cross

    def _source_sentences(self, hit: Hit) -> list[tuple[int, int, str]]:
        # Text addressed to a model is never support for a claim, even when it states it.
        return [(s, e, sent) for s, e, sent in chunk_sentences(hit.text, hit.start) if not looks_like_instructions(sent)]

    def best_quote(self, claim: str, n: int, hit: Hit, claim_vec: np.ndarray) -> Quote | None:
        sents = self._source_sentences(hit)
        if not sents:
            return None
        keys = [(hit.article_id, s, e) for s, e, _ in sents]
        vecs = self.vectors.get(keys, [t for _, _, t in sents])
        sims = vecs @ claim_vec
        i = int(np.argmax(sims))
        s, e, t = sents[i]
        return Quote(n, s, e, t, float(sims[i]))

    def facts_missing(self, claim: str, cited: str, same_language: bool, *, claim_lang: str = "",
                      cited_lang: str = "") -> list[str]:
        """Numbers and names of ``claim`` absent from ``cited``.

        Names are checked when claim and source share a language, and for an English
        claim over a French source through :mod:`rag.bilingual` ("Germany" needs
        "Allemagne" or "allemand" in the source); for other pairs, numbers only.
        """
        missing = sorted(numbers(claim) - numbers(cited))
        cited_words = set(fold(cited).replace("-", " ").split()) | set(re.findall(r"\w+", fold(cited)))
        if same_language:
            folded = fold(cited)
            # "royaume-uni" is a name as written, and the cited words split it
            missing += sorted(n for n in names(claim) if n not in cited_words and n not in folded
                              and n.replace("-", " ") not in folded)
        elif claim_lang == "en" and cited_lang == "fr":
            from rag.bilingual import name_supported

            missing += sorted(n for n in names(claim) if not name_supported(n, cited_words, fold(cited)))
        return missing

    def verify(self, answer: str, sources: Sequence[Hit]) -> Verified:
        """Split ``answer`` into sentences, check each, and keep the ones that pass.

        Citations are renumbered in order of first use; a dropped sentence keeps its
        verdict in ``checks`` but is not part of the returned text.
        """
        spans = [answer[s:e] for s, e in split_sentences(answer)]
        claims = [(raw, [int(m) for m in MARKER.findall(raw)], MARKER.sub("", raw).strip()) for raw in spans]
        claims = [c for c in claims if c[2] and re.search(r"\w", c[2])]
        if not claims:
            return Verified("")
        vecs = self.embedder.embed_passages([c[2] for c in claims])
        kept: list[str] = []
        citations: list[Citation] = []
        numbering: dict[tuple, int] = {}
        checks = []
        for (raw, marks, claim), vec in zip(claims, vecs):
            verdict, quotes = self._check(claim, marks, sources, vec)
            checks.append(verdict)
            if not verdict.supported:
                continue
            out_marks = []
            for q in quotes:
                hit = sources[q.source - 1]
                key = (hit.article_id, q.start, q.end)
                if key not in numbering:
                    numbering[key] = len(numbering) + 1
                    citations.append(Citation(numbering[key], hit.article_id, hit.title, hit.date, hit.source, hit.url,
                                              q.text, q.start, q.end, hit.chunk_id))
                out_marks.append(numbering[key])
            refs = "".join(f"[{m}]" for m in sorted(set(out_marks)))
            body = claim.rstrip()
            if verdict.translated_from:
                # "… the United Kingdom (translated from French) [1]."
                stop = body[-1] if body[-1] in ".!?" else ""
                label = translation_label(verdict.translated_from, detect_language(claim))
                kept.append(f"{body[:len(body) - len(stop)]} ({label}) {refs}{stop}")
            else:
                kept.append(f"{body} {refs}")
        return Verified(" ".join(kept), citations, checks)

    def _check(self, claim: str, marks: list[int], sources: Sequence[Hit], vec) -> tuple[SentenceCheck, list[Quote]]:
        def fail(reason: str, sim: float = 0.0) -> tuple[SentenceCheck, list[Quote]]:
            return SentenceCheck(claim, tuple(marks), False, sim, reason), []

        named = names(claim)
        if sum(fold(w) not in named for w in words(claim)) < 3:
            # "Keir Starmer Donald Trump Vladimir Poutine" is like its source and holds its names,
            # and says nothing: a small model writes such lists
            return fail("not a sentence (hardly a word besides names)")
        found = ""
        if not marks:
            # Small models often forget the marker: the sentence is held to the same test
            # against the source most like it, and cites that one if it passes.
            found = " (no marker: the verifier found the source)"
            quotes = [q for m in range(1, len(sources) + 1) if (q := self.best_quote(claim, m, sources[m - 1], vec))]
            if not quotes:
                return fail("no citation")
            marks = [max(quotes, key=lambda q: q.similarity).source]
        bad = [m for m in marks if not 1 <= m <= len(sources)]
        if bad:
            return fail(f"cites [{bad[0]}], which is not one of the {len(sources)} sources")
        quotes = [q for m in dict.fromkeys(marks) if (q := self.best_quote(claim, m, sources[m - 1], vec))]
        if not quotes:
            return fail("the cited sources have no text")
        best = max(quotes, key=lambda q: q.similarity)
        cited = " ".join(sources[m - 1].title + " " + sources[m - 1].text for m in marks)
        cited_lang, claim_lang = detect_language(cited), detect_language(claim)
        same_lang = claim_lang == cited_lang
        threshold = self.threshold if same_lang else self.threshold_cross
        if best.similarity < threshold:
            return fail(f"not supported by the cited text (similarity {best.similarity:.2f} < {threshold:.2f})"
                        + found, best.similarity)
        missing = self.facts_missing(claim, cited, same_lang, claim_lang=claim_lang, cited_lang=cited_lang)
        if missing:
            return fail(f"states {', '.join(missing[:3])}, not found in the cited text" + found, best.similarity)
        good = [q for q in quotes if q.similarity >= threshold] or [best]
        return SentenceCheck(claim, tuple(marks), True, best.similarity, "supported" + found,
                             None if same_lang else cited_lang), good
