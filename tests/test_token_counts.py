"""rag.embedding.tokens: the fast token counts equal the tokenizer's, and chunks do not change."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.embedding.tokens import TokenCounter

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "coalition-des-volontaires.txt"
SHARED_DATA = ROOT.parent / "shared" / "data"
ORANGESUM = SHARED_DATA / "orangesum" / "orangesum_articles.jsonl.gz"

# Characters that stress the normalizer and the word split: spaces of every kind, CR LF,
# combining and joining marks, ligatures, the "▁" itself and the added tokens.
TRICKY = list("ab é\u0301\n\r\t\u00a0\u202f…«»’<>▁\u200b\u200d\u00ad\u2028ÉŒœ⁄-.,!?") + [
    "<mask>", "<s>", "</s>", "  ", "ǅ", "\u212b", "가", "\u1100\u1161", "ﬁ", "👍🏽", "le ", "la ", "coalition",
]
tricky_text = st.lists(st.sampled_from(TRICKY), max_size=25).map("".join)


def toy_tokenizer(pre_tokenizer: str = "metaspace"):
    """A small SentencePiece-like tokenizer: NFC and space collapsing, Metaspace, Unigram."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers

    pieces = ["▁", "▁a", "▁b", "a", "b", "é", "▁le", "▁la", "▁co", "al", "ition", "li", "<", ">", ".", ","]
    vocab = [("<unk>", 0.0)] + [(p, -1.0 - len(p) / 10) for p in pieces]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(" {2,}"), " ")])
    if pre_tokenizer == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True)])
    return tok


def full_counts(tok):
    return lambda texts: [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]


@given(st.lists(tricky_text, max_size=8))
def test_counts_equal_the_tokenizers_on_a_sentencepiece_pipeline(texts):
    tok = toy_tokenizer()
    counter = TokenCounter(tok, full_counts(tok))
    assert counter.fast
    assert counter(texts) == full_counts(tok)(texts)
    assert counter(texts) == full_counts(tok)(texts)  # words remembered from the first call


def test_other_pipelines_and_added_tokens_go_through_the_tokenizer():
    calls = []

    def fallback(texts):
        calls.append(list(texts))
        return full_counts(tok)(texts)

    tok = toy_tokenizer("whitespace")
    counter = TokenCounter(tok, fallback)
    assert not counter.fast
    assert counter(["le a", "la"]) == full_counts(tok)(["le a", "la"]) and calls == [["le a", "la"]]

    tok = toy_tokenizer()
    calls.clear()
    counter = TokenCounter(tok, fallback)
    texts = ["le a", "x <mask> y", "la"]
    assert counter(texts) == full_counts(tok)(texts)
    assert calls == [["x <mask> y"]]  # only the text with an added token, in one batch


def test_empty_input():
    tok = toy_tokenizer()
    assert TokenCounter(tok, full_counts(tok))([]) == []
    assert TokenCounter(tok, full_counts(tok))(["", " ", "  "]) == full_counts(tok)(["", " ", "  "])


# -- the real e5 tokenizer -----------------------------------------------------------------


@pytest.fixture(scope="module")
def e5(model_cache):
    from rag.embedding import get_embedder

    embedder = get_embedder("e5-small", cache_dir=model_cache)
    embedder.warm_up()
    return embedder


def orangesum_articles(n: int):
    from rag.articles import read_articles
    from rag.types import Article

    if not ORANGESUM.exists():
        pytest.skip(f"{ORANGESUM} is not here")
    return [a for a in itertools.islice(read_articles([ORANGESUM]), n) if isinstance(a, Article)]


@pytest.mark.slow
def test_e5_counts_equal_the_tokenizers(e5):
    from rag.chunking import split_paragraphs, split_sentences

    counter = e5.count_tokens
    assert isinstance(e5._counter, TokenCounter) and e5._counter.fast and e5._counter._unsafe is not None
    texts = []
    for a in orangesum_articles(300):
        texts.append(a.title)
        for s, e in split_paragraphs(a.text):
            texts.append(a.text[s:e])
            texts += [a.text[x:y] for x, y in split_sentences(a.text, s, e)]
    with gzip.open(ORANGESUM, "rt", encoding="utf-8") as fh:  # raw records, before our clean-up
        texts += [v for line in itertools.islice(fh, 300) for v in json.loads(line).values() if isinstance(v, str)]
    assert counter(texts) == e5._count_slow(texts)


@pytest.mark.slow
@given(st.lists(tricky_text, max_size=8))
def test_e5_counts_equal_the_tokenizers_on_odd_text(e5, texts):
    assert e5.count_tokens(texts) == e5._count_slow(texts)


@pytest.mark.slow
def test_chunks_are_the_same_as_with_the_tokenizers_counts(e5):
    """The chunker's output with the fast counts is the output it had with the tokenizer's."""
    from rag.chunking import Chunker
    from rag.types import Article

    title, _, body = SEED.read_text(encoding="utf-8").partition("\n")
    articles = [Article(id="seed", title=title, text=body), *orangesum_articles(400)]
    for size, overlap in ((256, 32), (64, 16)):
        fast = Chunker(e5.count_tokens, size=size, overlap=overlap).chunk_many(articles)
        slow = Chunker(e5._count_slow, size=size, overlap=overlap).chunk_many(articles)
        assert fast == slow
