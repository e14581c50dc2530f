"""Split articles into chunks that fit the embedding model, on paragraph and sentence lines.

A chunk is a slice ``article.text[start:end]``; what gets embedded is
:func:`embedding_text` (the title, a newline, the chunk). Sizes are in the embedding
model's own tokens, counted by the batched ``count_tokens`` the chunker is given.

How an article is cut (budget = ``size - tokens(title) - 1``, at least ``size // 2``):

1. Paragraphs (lines) that fit the budget are kept whole, and consecutive ones are
   packed into one chunk while their total fits.
2. A paragraph over the budget gets chunks of its own: its sentences are packed; a
   sentence over the budget is cut between words, and a word over the budget (a
   long URL, say) between characters.
3. Overlap only happens inside such a split paragraph: the next chunk repeats the
   last whole sentences of the previous one, as many as fit in ``overlap`` tokens.
   A chunk that ends on a paragraph end is followed by one that starts on the next
   paragraph, without overlap: a news paragraph stands on its own, and repeating it
   would only spend the budget on text that is already indexed whole.

Token counts of pieces do not always add up to the count of the joined text (BPE
merges across a space, a newline may be a token), so every packed chunk is counted
again and trimmed until it fits: no chunk is ever over the budget by the real count.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from rag.errors import ConfigError, EmbedderError
from rag.types import Article, Chunk

log = logging.getLogger(__name__)

#: Recorded in an index manifest; bump when a change to the rules moves chunk boundaries.
SPLITTER = "paragraph-sentence-v4"
MIN_SIZE = 16

# Everything str.splitlines() breaks on: a paragraph never spans one of these.
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE = re.compile(f"[^{_BREAKS}]+")
_WORD = re.compile(r"\S+")
_LETTERS = re.compile(r"[^\W\d_]+")
# Sentence-final punctuation, then closing quotes or brackets (French puts a space
# before », so it may have one), then a space or the end of the line; or, in scraped
# text, glued to the next sentence: "trois ans.Deux", "vraiment ?Non", 'fin."Puis', "dit.A l'issue".
_END = re.compile(
    r"(?P<term>[.!?…]+)(?P<close>(?:\s*[»›]|[”\"’')\]])*)"
    r"(?=(?P<space>\s+)|$|(?P<glued>)(?:[“‹„\"(]|«\s?){0,2}(?:[A-ZÀ-ÖØ-ÞŒ][a-zß-öø-ÿœ'’]|[AÀ] [A-ZÀ-ÖØ-ÞŒa-zß-öø-ÿœ])"
    r"|(?P<digit>)\d)"
)
# Before a stop glued to a digit, what shows it is no decimal point or abbreviation:
# a closing quote or bracket ('de secours".9 000 euros') or a word of four letters ("fig.3" stays).
_BEFORE_GLUED_DIGIT = re.compile(r"(?:[\"”»)’]|[^\W\d_]{4})$")

_OPENERS = frozenset("«‹\"“„‘'([{—–-¿¡")
_APOSTROPHES = frozenset("'’")

# Followed by a name or a number, never the last word of a sentence.
_ALWAYS = frozenset("""
    M MM Mme Mmes Mlle Mlles Dr Pr Mgr St Ste Mr Mrs Ms Prof Gen Gov Sen Rep Lt Col Capt Sgt
    av Av apr cf Cf p pp chap Chap env Env n° N° vs e.g i.e E.g I.e
""".split())
# Abbreviations that may also end a sentence: kept unless the next word clearly starts one.
_SOFT = frozenset("""
    Jr Sr Inc Ltd Co Corp Bros éd Éd art Art vol Vol
    janv févr fév avr juil sept oct nov déc
    Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec
""".split())
# Abbreviations of "number": kept only before a digit ("No. 10", but "No. That is wrong.").
_BEFORE_DIGIT = frozenset({"No", "no", "Nos", "nos"})
# Capitalized words that start sentences and seldom follow an initial or an acronym:
# after "U.S." or "J.-C." one of these means the abbreviation ended the sentence.
_STARTERS = frozenset("""
    Le La Les Un Une Des Du De Il Ils Elle Elles On Nous Vous Je Ce Cet Cette Ces Ça Cela Ceci
    Son Sa Ses Leur Leurs Mais Et Or Donc Car Puis Pour Par Dans En Au Aux Sur Selon Après
    Avant Depuis Pendant Lors Alors Ainsi Enfin Toutefois Cependant Pourtant Néanmoins Si Quand
    Lorsque Comme Qui Que Quel Quelle Où Celui Celle Ceux Tout Tous Toute Toutes
    The An It Its He She They We You This That These Those There Here In On At But And His Her
    Their Our As After Before When While If According Some Many Most Other However Meanwhile
""".split())
_ELIDED_STARTERS = frozenset({"L", "D", "C", "J", "S", "N", "Qu", "Lorsqu", "Puisqu", "Jusqu"})
# Letters joined by dots: U.S.A, O.N.U, J.-C, a.m, Ph.D.
_ACRONYM = re.compile(r"(?:[^\W\d_]{1,3}\.-?)+[^\W\d_]{1,3}")

# Scraped text also runs a sub-heading into the next sentence with no punctuation at
# all: "mieux desservisDes travaux". That shows up as three lower-case letters, then
# an upper-case one and a lower-case one (or an elision). The scan starts on the
# upper-case letter, the rarest of them, which keeps it cheap.
# Latin-1 only (no Œ, œ): the character class then compiles to a bitmap, twice as fast.
_LOWER = "a-zß-öø-ÿ"
_UPPER = "A-ZÀ-ÖØ-Þ"
_URL_MARK = re.compile(r"[/@=]|www\.")
_HANDLE = re.compile(r"[#@_]")
_HEADING = re.compile(rf"[{_UPPER}](?<=[{_LOWER}].)(?<=[{_LOWER}]{{3}}.)[{_LOWER}'’]")
# ... or is written in capitals: "UN RANDONNEUR PIQUÉ À CINQ REPRISESAu final".
_CAPS_HEADING = re.compile(rf"[{_UPPER}](?<=[{_UPPER}]{{5}})[{_LOWER}'’]")
# ... or in capitals with a space, three words or more, before a sentence that starts on a
# word that starts sentences: "• UN AGRICULTEUR RETROUVÉ MORT SOUS UNE COULÉE DE NEIGE Le corps…".
# The scan starts on the capital of the next word (rare after two capitals and a space),
# and then checks the words before it.
_CAPS_NEXT = re.compile(rf"[{_UPPER}](?<=[{_UPPER}]{{2}}\s[{_UPPER}])[{_LOWER}]+\b")
_CAPS_BEFORE = re.compile(rf"(?<![\w'’])(?:[{_UPPER}]{{2,}}[\s'’-]+){{2,}}[{_UPPER}]{{2,}}\s$")
# A bullet starts an item, never continues a sentence: "tempête Eleanor.• UN AGRICULTEUR…".
_BULLET = re.compile(r"[•▪◦‣]")
# ... or ends on a closing quote: 'une "bavure policière"Le 3 janvier'.
_QUOTE_HEADING = re.compile(rf"[{_UPPER}](?<=[{_LOWER}][\"”»].)[{_LOWER}'’]")
# Glued headings are only trusted after a capitalized last word ("par France InterLa
# stratégie") when the next word is one that starts sentences; otherwise it is a
# brand or a hashtag: BlackRock, EasyJet, WhatsApp, MakeAmericaGreatAgain. English
# particles are left out: LinkedIn, PlayOn.
_HEADING_STARTERS = _STARTERS - {"In", "On", "At", "As", "An", "It", "Or", "Si", "En", "Au", "Un", "Du", "De"}
# camelCase words whose first part is lower case and at least three letters long, so
# that they look like a glued heading. On 4,000 OrangeSum articles 7 of 509 cuts were
# wrong: these two brands, identifiers from embedded page code, a hashtag, a typo.
_CAMEL_CASE = frozenset("""
    iHeartRadio bioMérieux mediaType nodeType nodeName nodeValue innerHTML innerText onClick onLoad
    className dataLayer typeOf
""".split())


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """Return the ``[start, end)`` spans of the non-blank lines of ``text``, stripped."""
    spans = []
    for m in _LINE.finditer(text):
        span = _strip(text, m.start(), m.end())
        if span:
            spans.append(span)
    return spans


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Return the spans of the sentences of ``text[start:end]``, in absolute offsets.

    Sentences are stripped, never cross a line break, and together cover every
    non-space character of the range. The rules are written for French and
    English news: abbreviations, initials, numbers, URLs, « guillemets » and
    ellipses followed by lowercase do not end a sentence. Sentences glued together
    by scraping are split: "trois ans.Deux", "partir ?Personne", and a sub-heading
    with no punctuation, "mieux desservisDes travaux" (not camelCase names:
    iPhone, McDonald, PlayStation, LeBron, BlackRock, #balanceTonPorc).

    Raises:
        ValueError: ``start``/``end`` are not ``0 <= start <= end <= len(text)``.
    """
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"sentence range [{start}, {end}) is outside a text of {len(text)} characters")
    spans = []
    for line in _LINE.finditer(text, start, end):
        span = _strip(text, line.start(), line.end())
        if not span:
            continue
        for lo, hi in _bullet_items(text, *span):
            _split_line(text, lo, hi, spans)
    return spans


def _bullet_items(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The line ``[lo, hi)`` cut before each bullet that follows other text (items stripped)."""
    if not _BULLET.search(text, lo, hi):
        return [(lo, hi)]
    items, start = [], lo
    for m in _BULLET.finditer(text, lo + 1, hi):
        item = _strip(text, start, m.start())
        if item:
            items.append(item)
            start = m.start()
    last = _strip(text, start, hi)
    return items + [last] if last else items


def _split_line(text: str, lo: int, hi: int, spans: list[tuple[int, int]]) -> None:
    """Append the sentence spans of the stripped line ``[lo, hi)`` to ``spans``."""
    # Spans need no stripping: a sentence starts on the line's first non-space or
    # after a space run or a glue point, and ends on its punctuation or a letter.
    heads = [m.start() for m in _HEADING.finditer(text, lo, hi)]
    caps = [m.start() for m in _CAPS_HEADING.finditer(text, lo, hi)]
    runs = [m.start() for m in _CAPS_NEXT.finditer(text, lo, hi)
            if m.group() in _STARTERS and _CAPS_BEFORE.search(text, max(lo, m.start() - 120), m.start())]
    if caps or runs:
        heads = sorted(heads + caps + runs)
    if '"' in text[lo:hi] or "”" in text[lo:hi] or "»" in text[lo:hi]:
        heads = sorted(heads + [m.start() for m in _QUOTE_HEADING.finditer(text, lo, hi)])
    h, n_heads = 0, len(heads)
    for m in _END.finditer(text, lo, hi):
        while h < n_heads and heads[h] < m.start():
            lo = _heading_cut(text, lo, heads[h], spans)
            h += 1
        e = m.end()
        nxt = m.end("space")  # the next non-space: -1 when glued or at the end
        if nxt < 0:
            if e < hi and (cut := _glued_end(text, lo, m)) is not None:
                spans.append((lo, cut))
                lo = cut
        elif nxt < hi and _ends_sentence(text, lo, hi, m, nxt):
            spans.append((lo, e))
            lo = nxt
    for p in heads[h:]:
        lo = _heading_cut(text, lo, p, spans)
    spans.append((lo, hi))


def _heading_cut(text: str, lo: int, p: int, spans: list[tuple[int, int]]) -> int:
    """Cut the sentence begun at ``lo`` before ``p`` if a glued heading ends there (or a heading
    in capitals, followed by a space); return the new start."""
    if p > lo and (text[p - 1].isspace() or _heading_join(text, lo, p)):
        spans.append((lo, p) if not text[p - 1].isspace() else _strip(text, lo, p))
        return p
    return lo


def _glued_end(text: str, lo: int, m: re.Match) -> int | None:
    """Where the sentence begun at ``lo`` ends, if the punctuation ``m`` glued to a capital ends it."""
    ts, te = m.span("term")
    if ts == lo:
        return None  # a line that starts with punctuation
    if m.group("digit") is not None and not (m.group("close") == "" and _BEFORE_GLUED_DIGIT.search(text, lo, ts)):
        return None  # "3.5", "p.12", "art.3": a number or a reference, not a new sentence
    start = m.end()  # an opening mark glued to the capital belongs to the next sentence: 'fin.“Il'
    if _in_url(text, lo, start):
        return None
    # After a word of six letters or more a full stop is no abbreviation, initial or acronym.
    if m.group("term") == "." and not (ts - 6 >= lo and text[ts - 6:ts].isalpha()):
        token = _token_before(text, lo, ts)
        if "." in token.replace(".-", "") and not _ACRONYM.fullmatch(token):
            return None  # "lemonde.fr.Le": a domain
        if token in _ALWAYS or (len(token) == 1 and token.isupper()):
            return None  # "M.Dupont", "St.Louis", "J.K"
        if token.isdigit() and len(token) <= 3 and text[lo:ts].strip() == token:
            return None  # a list number: "1.La sécurité"
        if (token in _SOFT or _ACRONYM.fullmatch(token)) and not _starts_sentence(text, start, len(text)):
            return None  # "J.-C.Rome"; but "av. J.-C.Son fils"
    # A straight quote after the end mark closes a quotation only if one is open
    # ('de "tué"."Luttons' opens the next sentence with it).
    close = m.group("close")
    if '"' in close and text.count('"', lo, ts) % 2 == 0:
        return te + close.index('"')
    return start


def _heading_join(text: str, lo: int, p: int) -> bool:
    """Whether a word glued to the previous one at ``p`` ("desservisDes") starts a new sentence."""
    j = p + 1
    while j < len(text) and text[j].isalpha():
        j += 1
    if text[p - 1] in '"”»':
        # A closing quote glued to a word that starts sentences: only a quotation just closed.
        right = text[p:j]
        if text[p - 1] == '"' and text.count('"', lo, p - 1) % 2 == 0:
            return False  # it opens a quotation: 'a dit"Le'
        if j < len(text) and text[j] in _APOSTROPHES:
            return right in _ELIDED_STARTERS
        return right in _HEADING_STARTERS
    i = p
    while i > lo and text[i - 1].isalpha():
        i -= 1
    left, right = text[i:p], text[p:j]
    if j < len(text) and text[j] in _APOSTROPHES:
        if right not in _ELIDED_STARTERS:
            return False
    if _in_url(text, lo, p) or _HANDLE.search(text, max(lo, text.rfind(" ", lo, p) + 1), p):
        return False  # a URL, a hashtag, a handle, an identifier: #J'aimeLeSilence, @EmmanuelMacron
    if left[0].islower():
        return left + right not in _CAMEL_CASE
    if len(left) >= 4 and left.isupper():
        # A heading in capitals, then a word that starts sentences: "REPRISESAu final"; not
        # a roman numeral ("XVIIIe") nor an acronym with a suffix ("PMEs").
        return right in _STARTERS or right in _ELIDED_STARTERS
    return right in _HEADING_STARTERS or right in _ELIDED_STARTERS


def _in_url(text: str, lo: int, p: int) -> bool:
    """Whether ``p`` is inside a whitespace-delimited token that looks like a URL, a path or an address."""
    # Spaces only: this runs on every glued candidate, and a URL seldom holds a no-break space.
    i = text.rfind(" ", lo, p) + 1
    j = text.find(" ", p)
    j = len(text) if j < 0 else j
    if _URL_MARK.search(text, max(lo, i), j):
        return True
    # "Lemonde.fr" after the candidate: a dot between letters further on
    k = text.find(".", p, j)
    return 0 <= k < j - 1 and text[k + 1].isalnum()


def chunk_sentences(text: str, offset: int = 0) -> list[tuple[int, int, str]]:
    """The sentences of a chunk's ``text`` as ``(start, end, sentence)``, offsets shifted by
    ``offset`` (the chunk's start in its article).

    Ingestion and search both use this, so a sentence has the same key on both sides.

    These are what gets quoted, so a chunk's first piece is left out when it visibly
    starts mid-sentence (see :func:`_starts_mid_sentence`). That only happens where
    the chunker had to cut a sentence over its budget between words, or a "word" over
    it (a long URL) between characters: the piece is not a sentence of the article.
    It is dropped rather than extended to the article's sentence because the callers
    have only the chunk, and a sentence that long (hundreds of tokens) is no quote
    anyway; the chunk's other sentences, and the chunk itself for retrieval, stay.
    """
    spans = split_sentences(text)
    if spans and _starts_mid_sentence(text, spans[0][0]):
        spans = spans[1:]
    return [(offset + s, offset + e, text[s:e]) for s, e in spans]


def trim_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``text[start:end]`` so that it neither starts nor ends inside a word, and strip it.

    For a caller that has the whole text around a span (an article around a chunk
    or a quote): a partial word at either edge is dropped. The result may be empty
    (``start == end``) when the span lies inside one word.

    Raises:
        ValueError: not ``0 <= start <= end <= len(text)``.
    """
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span [{start}, {end}) is outside a text of {len(text)} characters")
    if 0 < start < end and _in_word(text[start - 1]) and _in_word(text[start]):
        while start < end and _in_word(text[start]):
            start += 1
    if start < end < len(text) and _in_word(text[end - 1]) and _in_word(text[end]):
        while end > start and _in_word(text[end - 1]):
            end -= 1
    return _strip(text, start, end) or (start, start)


def _in_word(c: str) -> bool:
    return c.isalnum() or unicodedata.combining(c) > 0


def _starts_mid_sentence(text: str, pos: int) -> bool:
    """Whether a sentence span at ``pos`` of a chunk cannot be a sentence start.

    No sentence the splitter finds starts on a lower-case word (a paragraph may, but
    in news that is a scraping accident: 3 of 2,000 OrangeSum articles), nor on a
    combining mark or on punctuation that closes or goes on.
    """
    c = text[pos]
    if c.islower():
        nxt = text[pos + 1:pos + 2]
        return not nxt.isupper()  # "iPhone", "eBay" start sentences
    return unicodedata.combining(c) > 0 or c in ",;:)]}»”’%"


def embedding_text(title: str, text: str) -> str:
    """Return what is embedded for a chunk: its article's title as context, then the chunk.

    The title is left out when it is blank or the chunk already starts with it.
    """
    title = _clean_title(title)
    if not title or text.startswith(title):
        return text
    return f"{title}\n{text}"


class Chunker:
    """Cut articles into chunks of at most ``size`` model tokens, title included.

    Args:
        count_tokens: the embedding model's tokenizer, batched: token counts of the
            given texts, without special tokens.
        size: the most tokens an embedded chunk (title, newline, chunk) may have.
        overlap: the most tokens of whole sentences a chunk repeats from the
            previous one when a paragraph is too long for one chunk.

    Raises:
        ConfigError: (a ``ValueError``) ``size`` or ``overlap`` is out of range.
    """

    def __init__(self, count_tokens: Callable[[Sequence[str]], list[int]], size: int = 256, overlap: int = 32):
        if not callable(count_tokens):
            raise TypeError(f"count_tokens must be callable, got {count_tokens!r}")
        if not _is_int(size) or size < MIN_SIZE:
            raise ConfigError(f"chunk size must be an integer of at least {MIN_SIZE} tokens, got {size!r}")
        if not _is_int(overlap) or not 0 <= overlap < size // 2:
            raise ConfigError(
                f"chunk overlap must be an integer from 0 to less than half the chunk size ({size // 2}), got {overlap!r}"
            )
        self._count_tokens = count_tokens
        self._size = size
        self._overlap = overlap

    @property
    def size(self) -> int:
        return self._size

    @property
    def overlap(self) -> int:
        return self._overlap

    @property
    def settings(self) -> dict:
        """What an index manifest records about how its chunks were cut."""
        return {"size": self._size, "overlap": self._overlap, "splitter": SPLITTER}

    def chunk(self, article: Article) -> list[Chunk]:
        """Return the chunks of one article, in order; none when its text is blank."""
        return self.chunk_many([article])[0]

    def chunk_many(self, articles: Sequence[Article]) -> list[list[Chunk]]:
        """Chunk several articles, counting tokens in a few batched calls for them all.

        Returns the same as :meth:`chunk` for each article. Calls ``count_tokens``
        once for titles and paragraphs, once more per level of splitting actually
        needed (sentences, words, characters), and once or twice to check the packed
        chunks.

        Raises:
            EmbedderError: ``count_tokens`` did not return one count per text.
        """
        counter = _Counter(self._count_tokens)
        titles = [_clean_title(a.title) for a in articles]
        paragraphs = [split_paragraphs(a.text) for a in articles]
        counter.add(t for t in titles if t)
        counter.add(a.text[s:e] for a, spans in zip(articles, paragraphs) for s, e in spans)
        counter.flush()
        # size - tokens(title) - 1: the title and the newline that joins it to the chunk.
        budgets = [max(self._size - (counter[t] if t else 0) - 1, self._size // 2) for t in titles]
        plans = [_Plan(a.text, spans, b, counter) for a, spans, b in zip(articles, paragraphs, budgets)]

        # Split what does not fit, one level at a time and one batched call a level
        # (characters may take a few: a piece cut by length can still count over).
        for level in ("sentences", "words"):
            if sum(plan.split_oversize(level) for plan in plans):
                counter.flush()
        while sum(plan.split_oversize("characters") for plan in plans):
            counter.flush()

        for plan in plans:
            plan.pack(self._overlap)
        while True:
            for plan in plans:
                plan.queue_packed()
            counter.flush()
            if not sum(plan.trim_over_budget() for plan in plans):
                break

        result = [plan.chunks(a.id) for a, plan in zip(articles, plans)]
        log.debug("chunked %d articles into %d chunks with %d token-count calls",
                  len(articles), sum(map(len, result)), counter.calls)
        return result


class _Counter:
    """Token counts of strings, asked for in batches and remembered for one ``chunk_many``."""

    def __init__(self, count_tokens: Callable[[Sequence[str]], list[int]]):
        self._count_tokens = count_tokens
        self._counts: dict[str, int] = {}
        self._pending: dict[str, None] = {}
        self.calls = 0

    def add(self, texts: Iterable[str]) -> None:
        for t in texts:
            if t not in self._counts:
                self._pending[t] = None

    def flush(self) -> int:
        """Count the pending texts in one call; return how many there were."""
        texts = list(self._pending)
        self._pending = {}
        if not texts:
            return 0
        counts = self._count_tokens(texts)
        self.calls += 1
        if len(counts) != len(texts):
            raise EmbedderError(f"count_tokens returned {len(counts)} counts for {len(texts)} texts")
        self._counts.update(zip(texts, map(int, counts)))
        return len(texts)

    def __getitem__(self, text: str) -> int:
        return self._counts[text]


class _Unit:
    """A span packed into chunks whole: a paragraph, a sentence, a word or a piece of a word."""

    __slots__ = ("start", "end", "kind", "para", "tokens")

    def __init__(self, start: int, end: int, kind: str, para: int, tokens: int):
        self.start, self.end, self.kind, self.para, self.tokens = start, end, kind, para, tokens


#: What each level of splitting cuts, and into what.
_LEVELS = {
    "sentences": (("paragraph",), "sentence"),
    "words": (("sentence",), "word"),
    "characters": (("word", "piece"), "piece"),
}


class _Plan:
    """One article on its way to chunks: its units, then windows of consecutive units."""

    def __init__(self, text: str, paragraphs: list[tuple[int, int]], budget: int, counter: _Counter):
        self.text = text
        self.budget = budget
        self.counter = counter
        self.units = [_Unit(s, e, "paragraph", i, counter[text[s:e]]) for i, (s, e) in enumerate(paragraphs)]
        self.windows: list[tuple[int, int]] = []  # [lo, hi) ranges of self.units

    def split_oversize(self, level: str) -> int:
        """Replace each unit over the budget by its parts at ``level``; return how many were split.

        The parts' texts are queued on the counter; their counts are read back by
        :meth:`_refresh` once the caller has flushed it.
        """
        self._refresh()
        parents, kind = _LEVELS[level]
        units, split = [], 0
        for u in self.units:
            if u.tokens <= self.budget or u.kind not in parents:
                units.append(u)
                continue
            if level == "sentences":
                spans = split_sentences(self.text, u.start, u.end)
            elif level == "words":
                spans = [m.span() for m in _WORD.finditer(self.text, u.start, u.end)]
            else:
                spans = _cut_characters(self.text, u.start, u.end, u.tokens, self.budget)
                if len(spans) == 1:
                    log.warning("cannot cut %r down to %d tokens; keeping it whole",
                                self.text[u.start:u.end], self.budget)
                    u.kind = "uncut"
                    units.append(u)
                    continue
            split += 1
            for s, e in spans:
                units.append(_Unit(s, e, kind, u.para, -1))
                self.counter.add([self.text[s:e]])
        self.units = units
        return split

    def _refresh(self) -> None:
        for u in self.units:
            if u.tokens < 0:
                u.tokens = self.counter[self.text[u.start:u.end]]

    def pack(self, overlap: int) -> None:
        """Group units into windows: whole paragraphs together, a split paragraph's parts with overlap."""
        self._refresh()
        budget, units, windows = self.budget, self.units, self.windows
        i = 0
        while i < len(units):
            lo, total = i, units[i].tokens
            i += 1
            if units[lo].kind == "paragraph":
                while i < len(units) and units[i].kind == "paragraph" and total + units[i].tokens <= budget:
                    total += units[i].tokens
                    i += 1
                windows.append((lo, i))
                continue
            para = units[lo].para
            while i < len(units) and units[i].para == para:
                n = units[i].tokens
                if total + n > budget:
                    windows.append((lo, i))
                    # Repeat the last whole sentences, as many as fit in the overlap and
                    # leave room for the next unit (never the whole previous window).
                    k, kept = i, 0
                    while k - 1 > lo and units[k - 1].kind == "sentence" and kept + units[k - 1].tokens <= overlap:
                        k -= 1
                        kept += units[k].tokens
                    while k < i and kept + n > budget:
                        kept -= units[k].tokens
                        k += 1
                    lo, total = k, kept
                total += n
                i += 1
            windows.append((lo, i))

    def _window_text(self, lo: int, hi: int) -> str:
        return self.text[self.units[lo].start:self.units[hi - 1].end]

    def queue_packed(self) -> None:
        """Queue the texts of the windows of several units: their counts are not known yet."""
        self.counter.add(self._window_text(lo, hi) for lo, hi in self.windows if hi - lo > 1)

    def trim_over_budget(self) -> int:
        """Shrink the windows whose real count is over the budget; return how many there were."""
        units, windows = self.units, self.windows
        fixed = 0
        for i in range(len(windows) - 1, -1, -1):
            lo, hi = windows[i]
            if hi - lo < 2:
                continue  # one unit: counted alone and fits, or cannot be cut at all
            excess = self.counter[self._window_text(lo, hi)] - self.budget
            if excess <= 0:
                continue
            fixed += 1
            prev_hi = windows[i - 1][1] if i > 0 else lo
            removed = 0
            if prev_hi > lo:
                # Drop repeated sentences first: the overlap is optional.
                while lo < prev_hi:
                    removed += units[lo].tokens
                    lo += 1
                    if removed >= excess:
                        break
                windows[i] = (lo, hi)
                continue
            cut = hi
            while cut > lo + 1:
                cut -= 1
                removed += units[cut].tokens
                if removed >= excess:
                    break
            windows[i] = (lo, cut)
            if not (i + 1 < len(windows) and windows[i + 1][0] <= cut):
                windows.insert(i + 1, (cut, hi))  # unless the next window repeats that tail anyway
        return fixed

    def chunks(self, article_id: str) -> list[Chunk]:
        spans = []
        for lo, hi in self.windows:
            s, e = self.units[lo].start, self.units[hi - 1].end
            # Trimming with a counter whose pieces don't add up can leave a window
            # inside its neighbour; it would only index the same text twice.
            if spans and spans[-1][0] <= s and e <= spans[-1][1]:
                continue
            while spans and s <= spans[-1][0] and spans[-1][1] <= e:
                spans.pop()
            spans.append((s, e))
        return [Chunk(article_id=article_id, position=pos, start=s, end=e, text=self.text[s:e])
                for pos, (s, e) in enumerate(spans)]


def _cut_characters(text: str, start: int, end: int, tokens: int, budget: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into pieces that should each count about ``budget`` tokens or less."""
    length = end - start
    step = max(1, length * budget // (tokens + 1))
    spans, lo = [], start
    while lo < end:
        hi = min(lo + step, end)
        while hi < end and unicodedata.combining(text[hi]):
            hi += 1  # do not separate an accent from its letter
        spans.append((lo, hi))
        lo = hi
    return spans


def _ends_sentence(text: str, lo: int, hi: int, m: re.Match, nxt: int) -> bool:
    """Whether the punctuation matched by ``m`` ends the sentence begun at ``lo``."""
    c = text[nxt]
    if not (c.isupper() or c.isdigit() or c in _OPENERS):
        return False  # "etc. et", "fini… puis", "« fini. » avant de"
    ms = m.start()
    if m.end() - ms != 1 or text[ms] != ".":
        return True  # not a lone full stop: "?", "!", "…", "...", or a closing mark after it
    if ms - 6 >= lo and text[ms - 6:ms].isalpha():
        return True  # a word of six letters or more: no abbreviation, initial or acronym is that long
    token = _token_before(text, lo, ms)
    if not token:
        return True
    if token in _ALWAYS:
        return False
    if token in _BEFORE_DIGIT:
        return not c.isdigit()
    if token.isdigit() and len(token) <= 3 and text[lo:ms].strip() == token:
        return False  # a list number: "1. La sécurité"
    if token in _SOFT or (len(token) == 1 and token.isupper()) or _ACRONYM.fullmatch(token):
        return _starts_sentence(text, nxt, hi)
    return True


def _token_before(text: str, lo: int, pos: int) -> str:
    """The word that ends at ``pos``, with its inner dots and hyphens (``J.-C``, ``n°``)."""
    i = pos
    while i > lo and (text[i - 1].isalnum() or text[i - 1] in ".-°&_"):
        i -= 1
    return text[i:pos].lstrip(".-")


def _starts_sentence(text: str, pos: int, hi: int) -> bool:
    """Whether the word at ``pos`` clearly starts a new sentence (after an ambiguous abbreviation)."""
    if text[pos] in _OPENERS:
        return True
    m = _LETTERS.match(text, pos, hi)
    if not m:
        return False
    if m.end() < hi and text[m.end()] in _APOSTROPHES:
        return m.group() in _ELIDED_STARTERS
    return m.group() in _STARTERS


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _clean_title(title: str) -> str:
    return " ".join(title.split())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
