"""Sentence vectors at ingestion: pool_spans, the embedder's spans API, float16 storage, the setting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rag
from rag.embedding.base import Embedder, pool_spans
from rag.errors import IndexMismatchError
from rag.types import Article

SEED = Path(__file__).resolve().parent.parent / "seeds" / "coalition-des-volontaires.txt"

# -- pool_spans ----------------------------------------------------------------------------

# One text, "<s> ▁Un ▁deux . ▁Trois </s> <pad>": tokens 0..6; "Un deux. Trois" in characters.
OFFSETS = np.array([[[0, 0], [0, 2], [2, 7], [7, 8], [8, 14], [0, 0], [0, 0]]])
MASK = np.array([[1, 1, 1, 1, 1, 1, 0]])
STATES = np.array([[[9.0, 9.0], [1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [0.0, 6.0], [9.0, 9.0], [100.0, 100.0]]])


def test_pool_spans_means_the_tokens_that_overlap_each_span():
    (got,) = pool_spans(STATES, MASK, OFFSETS, [[(0, 8), (9, 14), (3, 5)]], normalize=False)
    np.testing.assert_array_equal(got, [[3.0, 2.0], [0.0, 6.0], [3.0, 2.0]])  # "▁deux" alone for (3, 5)


def test_pool_spans_context_specials_padding_and_prompt():
    # The first two characters ("Un") as context: pooled with every span. A token ending past
    # it is not context. Special tokens (0, 0), padding and a prompt below zero never count.
    offsets = OFFSETS.copy()
    offsets[0, 0] = [-9, -1]  # a prompt token, shifted below zero
    (got,) = pool_spans(STATES, MASK, offsets, [[(9, 14)]], context=[2], normalize=False)
    np.testing.assert_array_equal(got, [[0.5, 3.0]])  # mean of "▁Un" and "▁Trois"
    (got,) = pool_spans(STATES, MASK, offsets, [[(9, 14)]], context=[3], normalize=False)
    np.testing.assert_array_equal(got, [[0.5, 3.0]])  # "▁deux" ends at 7: not in the context


def test_pool_spans_normalizes_and_leaves_empty_spans_zero():
    (got,) = pool_spans(STATES, MASK, OFFSETS, [[(0, 2), (14, 14), (20, 30)]])
    np.testing.assert_allclose(got[0], [1.0, 0.0])
    np.testing.assert_array_equal(got[1:], np.zeros((2, 2)))
    assert got.dtype == np.float32


def test_pool_spans_batch_and_no_spans():
    states = np.concatenate([STATES, STATES * 2])
    out = pool_spans(states, np.concatenate([MASK, MASK]), np.concatenate([OFFSETS, OFFSETS]),
                     [[(9, 14)], []], normalize=False)
    np.testing.assert_array_equal(out[0], [[0.0, 6.0]])
    assert out[1].shape == (0, 2)


def test_pool_spans_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must be"):
        pool_spans(STATES, MASK[:, :3], OFFSETS, [[(0, 1)]])
    with pytest.raises(ValueError, match="one entry per text"):
        pool_spans(STATES, MASK, OFFSETS, [[(0, 1)], [(0, 1)]])


# -- the base class: each span embedded apart ----------------------------------------------


class Recording(Embedder):
    model_id, dim = "recording", 3

    def __init__(self):
        self.calls = []

    def embed_batch(self, texts, *, kind):
        self.calls.append((kind, list(texts)))
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32) / np.sqrt(
            [[len(t) ** 2 + 1.0] for t in texts])


def test_default_embeds_each_span_apart_with_its_context():
    emb = Recording()
    texts = ["Titre\nUne phrase. Deux.", "Sans titre."]
    vectors, spans = emb.embed_passages_with_spans(texts, [[(6, 17), (18, 23)], [(0, 11)]], context=[6, 0])
    assert emb.calls == [("passage", [*texts, "Titre\nUne phrase.", "Titre\nDeux.", "Sans titre."])]
    np.testing.assert_allclose(vectors, emb.embed_passages(texts))
    assert [s.shape for s in spans] == [(2, 3), (1, 3)]
    np.testing.assert_allclose(spans[0][1], emb.embed_passages(["Titre\nDeux."])[0])


def test_default_with_no_spans_and_no_texts():
    emb = Recording()
    vectors, spans = emb.embed_passages_with_spans(["Un.", "Deux."], [[], []])
    assert vectors.shape == (2, 3) and [s.shape for s in spans] == [(0, 3), (0, 3)]
    vectors, spans = emb.embed_passages_with_spans([], [])
    assert vectors.shape == (0, 3) and spans == []


@pytest.mark.parametrize("spans, context, message", [
    ([[(0, 4)]], None, "outside"),
    ([[(2, 1)]], None, "outside"),
    ([], None, "1 texts"),
    ([[(0, 1)]], [9], "context 9"),
    ([[(0, 1)]], [0, 0], "context has 2"),
])
def test_default_checks_its_arguments(spans, context, message):
    with pytest.raises(ValueError, match=message):
        Recording().embed_passages_with_spans(["abc"], spans, context=context)


# -- the index: the setting, float16 storage -------------------------------------------------


def sentence_rows(index):
    return index.store._db.execute("SELECT article_id, start, end, length(vector) FROM sentence_vectors "
                                   "ORDER BY 1, 2").fetchall()


@pytest.fixture
def article():
    return Article(id="a", title="La coalition", text="Une première phrase ici. Une autre phrase là.\nUn second paragraphe.")


def test_sentence_vectors_are_float16_and_read_as_float32(hash_config, article):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([article])
    assert index.manifest["sentence_vectors"] == {"dtype": "float16", "from": "embedded apart"}
    rows = sentence_rows(index)
    assert [r[3] for r in rows] == [256 * 2] * 3
    got = index.store.sentence_rows_within([("a", 0, len(article.text))], "title")[0]
    expected = index.embedder.embed_passages([f"La coalition\n{article.text[s:e]}" for s, e, _ in got])
    for (_, _, v), e in zip(got, expected):
        assert v.dtype == np.float32 and float(v @ e) > 0.999  # float16: 3 significant digits


def test_a_store_from_before_holds_float32_and_still_reads(hash_config, article):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.store._db.execute("DELETE FROM meta WHERE key = 'sentence_dtype'")  # as written before
    index.close()
    index = rag.Index.open(hash_config.index_dir)
    index.add([article])
    assert index.store.sentence_dtype == np.float32 and {r[3] for r in sentence_rows(index)} == {256 * 4}
    assert len(index.retriever().retrieve("une autre phrase", k=1)) == 1
    with pytest.raises(ValueError, match="holds float32"):
        index.store.set_sentence_dtype("float16")


def test_pooled_setting_is_recorded_and_a_mismatch_says_what_to_run(hash_config, article):
    pooled = hash_config.with_(pool_sentences=True)
    index = rag.Index.create(hash_config.index_dir, pooled)
    index.add([article])  # the hashing embedder cannot pool: the base class embeds each sentence apart
    assert index.manifest["sentence_vectors"]["from"] == "chunk pass, mean-pooled"
    apart = rag.Index.create(hash_config.index_dir.with_name("apart"), hash_config)
    apart.add([article])
    assert [r[:3] for r in sentence_rows(index)] == [r[:3] for r in sentence_rows(apart)]
    index.close()
    assert rag.Index.open(hash_config.index_dir).config.pool_sentences  # the index's own setting
    with pytest.raises(IndexMismatchError, match="RAG_POOL_SENTENCES=0 rag index rebuild"):
        rag.Index.open(hash_config.index_dir, hash_config)


def test_rebuild_to_pooled_reembeds(hash_config, article):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([article])
    index.close()
    rebuilt = rag.Index.rebuild(hash_config.index_dir, hash_config.with_(pool_sentences=True))
    assert rebuilt.config.pool_sentences and len(sentence_rows(rebuilt)) == 3


# -- the e5 fast path -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def e5(model_cache):
    from rag.embedding import get_embedder

    embedder = get_embedder("e5-small", cache_dir=model_cache, runtime="torch")  # its passage_token_states; ONNX is checked against it
    embedder.warm_up()
    return embedder


def seed_chunks(e5):
    """The seed article's chunks as embedded (title line first), their sentences' spans, and
    how many characters the title line takes in each."""
    from rag.chunking import Chunker, chunk_sentences, embedding_text

    title, _, body = SEED.read_text(encoding="utf-8").partition("\n")
    chunks = Chunker(e5.count_tokens, size=256, overlap=32).chunk(Article(id="s", title=title, text=body))
    texts, spans, heads = [], [], []
    for c in chunks:
        text = embedding_text(title, c.text)
        head = len(text) - len(c.text)
        texts.append(text)
        heads.append(head)
        spans.append([(s - c.start + head, e - c.start + head) for s, e, _ in chunk_sentences(c.text, c.start)])
    return texts, spans, heads


@pytest.mark.slow
def test_e5_one_pass_gives_the_chunk_vectors_and_pools_each_sentences_own_tokens(e5):
    texts, spans, _ = seed_chunks(e5)
    vectors, pooled = e5.embed_passages_with_spans(texts, spans)
    np.testing.assert_allclose(vectors, e5.embed_passages(texts), atol=1e-5)
    _, states = e5.passage_token_states(texts)
    normalize = e5.model.tokenizer.backend_tokenizer.normalizer.normalize_str
    enc = e5.model.tokenizer(["passage: " + t for t in texts])
    for text, sp, (state, offsets), ids, rows, vector in zip(texts, spans, states, enc["input_ids"], pooled, vectors):
        # Pooled over every token (prompt and special tokens too), the states give e5's own vector.
        everything = np.tile([0, 1], (len(state), 1))
        (whole,) = pool_spans(state[None], np.ones((1, len(state))), everything[None], [[(0, 1)]])
        assert float(whole[0] @ vector) > 0.99999
        # Pool an identity matrix: each row says which tokens a span took; they spell the sentence.
        (member,) = pool_spans(np.eye(len(state))[None], np.ones((1, len(state))), offsets[None], [sp],
                               normalize=False)
        for (s, e), m, row in zip(sp, member, rows):
            taken = e5.model.tokenizer.decode([ids[i] for i in np.flatnonzero(m)])
            assert taken.split() == normalize(text[s:e]).split()
            mean = state[m > 0].mean(axis=0)
            np.testing.assert_allclose(row, mean / np.linalg.norm(mean), atol=1e-6)


@pytest.mark.slow
def test_e5_pooled_vector_is_near_the_sentence_embedded_apart_but_nearer_its_chunk(e5):
    """What pooling relies on: a sentence's tokens, read in its chunk, still mean much what the
    sentence with its title means alone (cosine 0.95-0.98 on the seed article). And why it is not
    the default: read in the chunk, every sentence leans towards the chunk (cosine 0.996 on
    average, against 0.964 apart), so the sentences of one chunk are told apart less well (the
    evaluations in the README)."""
    texts, spans, heads = seed_chunks(e5)
    vectors, pooled = e5.embed_passages_with_spans(texts, spans)
    _, apart = Embedder.embed_passages_with_spans(e5, texts, spans, context=heads)
    near = np.concatenate([(p * a).sum(axis=1) for p, a in zip(pooled, apart)])
    assert near.min() > 0.9 and near.mean() > 0.94
    to_chunk_pooled = np.concatenate([p @ v for p, v in zip(pooled, vectors)])
    to_chunk_apart = np.concatenate([a @ v for a, v in zip(apart, vectors)])
    assert to_chunk_pooled.mean() > to_chunk_apart.mean() + 0.02
