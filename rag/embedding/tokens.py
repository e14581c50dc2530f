"""Exact token counts for chunking, without running the whole tokenizer on every text.

The chunker counts every paragraph, every sentence of a long one and every packed
chunk: about three times the article text. Through the tokenizer that was 95 % of
chunking time. For SentencePiece pipelines (XLM-R, so e5) the count can be had for
much less, exactly:

- the pre-tokenizer (``Metaspace``) turns each space into ``▁`` and cuts before it,
  and the model tokenizes each such word on its own, so a text's count is the sum of
  its words' counts, and words repeat: each is tokenized once and remembered;
- the normalizer (``NFC``, the SentencePiece character map, collapsing space runs)
  maps each character on its own as long as no character joins its neighbours (no
  combining mark, joiner, control or CR; see :func:`_standalone`), so for text made
  of such characters it is each character's own normalization, then the collapse;
  other text goes through the normalizer.

Any other pipeline, and text holding an added token (``<mask>``, matched before
normalizing), is counted by the tokenizer itself. The tests compare the two on news
text and on generated strings.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

Counter = Callable[[Sequence[str]], list[int]]

#: Distinct words remembered; the cache starts over past this (a news corpus has ~100k).
MAX_WORDS = 500_000

# Characters considered for the translate table: Latin, Latin-1, Latin Extended A/B,
# general punctuation, currency signs (what European news is written in).
_CANDIDATES = [*range(0x20, 0x250), *range(0x2010, 0x2070), *range(0x20A0, 0x20C0), ord("\n"), ord("\t")]
# Categories whose characters may join a neighbour into one grapheme, or vanish:
# marks, format characters (joiners), controls (CR LF), line and paragraph separators.
_JOINING = {"Mn", "Mc", "Me", "Cf", "Cc", "Zl", "Zp", "Cs", "Co", "Cn"}


class TokenCounter:
    """Token counts of texts (no special tokens), equal to ``fallback``'s.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (a fast tokenizer's ``backend_tokenizer``).
        fallback: the exact count through the whole tokenizer, batched; used for every
            text when the pipeline is not one this class reproduces, and for texts that
            hold an added token.
    """

    def __init__(self, tokenizer, fallback: Counter):
        self._fallback = fallback
        self._tokenize = tokenizer.model.tokenize
        self._words: dict[str, int] = {}
        spec = json.loads(tokenizer.to_str())
        self.fast = _is_metaspace(spec.get("pre_tokenizer")) and tokenizer.normalizer is not None
        self._normalize = tokenizer.normalizer.normalize_str if self.fast else None
        added = [t["content"] for t in spec.get("added_tokens") or () if t.get("content")]
        self._added = re.compile("|".join(map(re.escape, added))) if added else None
        self._unsafe: re.Pattern | None = None
        if self.fast and _is_sentencepiece_normalizer(spec.get("normalizer")):
            table, self._unsafe = _char_table(self._normalize)
            self._mapped = re.compile("[" + "".join(map(re.escape, table)) + "]")
            self._mapping = lambda m: table[m.group()]
        if not self.fast:
            log.debug("token counts through the whole tokenizer (pre-tokenizer %s)", spec.get("pre_tokenizer"))

    def __call__(self, texts: Sequence[str]) -> list[int]:
        texts = list(texts)
        if not self.fast:
            return [int(n) for n in self._fallback(texts)]
        words = self._words
        if len(words) > MAX_WORDS:
            words.clear()
        get = words.__getitem__
        counts: list[int] = []
        slow: list[int] = []
        for i, text in enumerate(texts):
            norm = self.normalize(text)
            if "▁" in norm or self._added is not None and (self._added.search(text) or self._added.search(norm)):
                slow.append(i)
                counts.append(0)
                continue
            if not norm:
                counts.append(0)
                continue
            # Metaspace puts "▁" before the text unless it starts with a space already,
            # so a leading space belongs to the first word; every other space starts a
            # word (a trailing one, or one of a run the normalizer left, is "▁" alone).
            parts = norm.split(" ")
            if norm[0] == " ":
                del parts[0]
            try:
                counts.append(sum(map(get, parts)))
            except KeyError:
                for w in parts:
                    if w not in words:
                        words[w] = len(self._tokenize("▁" + w))
                counts.append(sum(map(get, parts)))
        if slow:
            for i, n in zip(slow, self._fallback([texts[i] for i in slow])):
                counts[i] = int(n)
        return counts

    def normalize(self, text: str) -> str:
        """``text`` as the tokenizer's normalizer leaves it."""
        if self._unsafe is not None and self._unsafe.search(text) is None:
            # re.sub rather than str.translate: most texts have few or no such characters.
            norm = self._mapped.sub(self._mapping, text)
            return _SPACES.sub(" ", norm) if "  " in norm else norm
        return self._normalize(text)


_SPACES = re.compile(" {2,}")


def _is_metaspace(spec: dict | None) -> bool:
    """A pre-tokenizer that only turns spaces into "▁" and cuts before each (SentencePiece's)."""
    return bool(spec) and spec.get("type") == "Metaspace" and spec.get("replacement") == "▁" and (
        spec.get("split") is True and spec.get("prepend_scheme") == "always")


def _is_sentencepiece_normalizer(spec: dict | None) -> bool:
    """NFC, a precompiled SentencePiece character map, then space runs collapsed (XLM-R's)."""
    if not spec or spec.get("type") != "Sequence":
        return False
    steps = spec.get("normalizers") or []
    return [s.get("type") for s in steps] == ["NFC", "Precompiled", "Replace"] and (
        steps[2].get("pattern") == {"Regex": " {2,}"} and steps[2].get("content") == " ")


def _char_table(normalize: Callable[[str], str]) -> tuple[dict[str, str], re.Pattern]:
    """The characters the normalizer changes on their own, with what each becomes, and a
    pattern that finds a character outside the safe set."""
    table: dict[str, str] = {}
    safe = []
    for cp in _CANDIDATES:
        c = chr(cp)
        if not _standalone(c):
            continue
        out = normalize(c)
        if out != " " and (" " in out or any(not _standalone(x) for x in out)):
            continue  # becomes several words or joining characters: leave it to the normalizer
        safe.append(c)
        if out != c:
            table[c] = out
    unsafe = re.compile("[^" + "".join(re.escape(c) for c in safe) + "]")
    return table, unsafe


def _standalone(c: str) -> bool:
    """Whether ``c`` is always a grapheme of its own and NFC leaves it and its neighbours alone."""
    if c in "\n\t":
        return True  # controls, but only CR joins LF
    # Precomposed letters (é) are fine: with no combining mark after them, NFC keeps them.
    return (unicodedata.category(c) not in _JOINING and unicodedata.combining(c) == 0
            and unicodedata.is_normalized("NFC", c))
