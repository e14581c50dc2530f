"""Hybrid retrieval: French-aware terms, BM25, score fusion and the sentence stage.

Most tests use the hashing embedder (plumbing, in seconds); the cross-lingual ones
use the real e5 index of the seed article.
"""

from __future__ import annotations

import numpy as np
import pytest

import rag
from rag.analysis import terms
from rag.lexical import BM25Index, lexical_weight
from rag.retriever import _standardize


def articles() -> list[rag.Article]:
    return [
        rag.Article(id="thon", title="La pêche au thon",
                    text="Les pêcheurs de Saint-Jean-de-Luz ont débarqué du thon rouge.\n\n"
                         "Le quota annuel a été relevé par la Commission européenne."),
        rag.Article(id="vote", title="Élections municipales",
                    text="Le maire sortant a été réélu dès le premier tour.\n\n"
                         "La participation a atteint 41 % selon le ministère de l'Intérieur."),
        rag.Article(id="ble", title="Récolte de blé",
                    text="La récolte de blé tendre recule de 12 % en Beauce.\n\n"
                         "Les coopératives s'inquiètent de la qualité du grain."),
    ]


def test_french_terms_fold_elide_stem_and_drop_stop_words():
    t = terms("L'Élection des maires, d'après l'État qu'on connaît", "fr")
    assert "l" not in t and "d" not in t and "des" not in t
    assert "elect" in t and "etat" in t  # accents folded, stemmed
    assert terms("élections", "fr") == terms("Election", "fr")


def test_bm25_ranks_saves_and_reloads(tmp_path):
    docs = [["thon", "rouge", "pech"], ["mair", "elu", "tour"], ["ble", "recolt", "thon"]]
    bm = BM25Index.build([10, 11, 12], docs)
    ids, scores = bm.search(["thon", "rouge"], 5)
    assert list(ids) == [10, 12] and scores[0] > scores[1] > 0
    assert bm.search(["inconnu"], 5)[0].size == 0
    assert list(bm.search(["thon"], 5, allowed=np.array([12]))[0]) == [12]
    full = bm.scores(["thon", "rouge"])
    assert np.allclose(bm.scores_of(full, [12, 10, 99]), [full[2], full[0], 0.0])
    bm.save(tmp_path / "lex.npz")
    again = BM25Index.load(tmp_path / "lex.npz")
    assert np.allclose(again.scores(["thon", "rouge"]), full)
    assert bm.coverage(["thon", "zzz"]) == 0.5


def test_lexical_weight_drops_across_languages():
    assert lexical_weight(1.0, True) == 1.0
    assert lexical_weight(0.5, True) == 0.5
    assert lexical_weight(1.0, False) == 0.0
    assert lexical_weight(float("nan"), True) == 0.0


def test_standardize():
    z = _standardize(np.array([1.0, 2.0, 3.0]))
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    assert np.array_equal(_standardize(np.array([0.7, 0.7])), np.zeros(2))


def _sentence_rows(index) -> list[tuple]:
    return index.store._db.execute("SELECT article_id, start, end, kind FROM sentence_vectors ORDER BY 1, 2").fetchall()


def test_ingestion_stores_a_vector_for_every_sentence_and_removal_drops_them(hash_config):
    from rag.chunking import chunk_sentences

    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(articles())
    expected = set()
    for a in articles():
        for s, e in index.store.chunk_spans(a.id):
            expected |= {(a.id, st, en, "title") for st, en, _ in chunk_sentences(a.text[s:e], s)}
    assert set(_sentence_rows(index)) == expected and len(expected) >= 6
    index.remove("thon")
    assert {r[0] for r in _sentence_rows(index)} == {"vote", "ble"}


def test_sentence_stage_embeds_nothing_but_the_question(hash_config, monkeypatch):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(articles())
    calls = []
    emb = index.embedder
    real = emb.embed_passages
    monkeypatch.setattr(emb, "embed_passages", lambda texts: calls.append(len(texts)) or real(texts))
    hits = rag.Retriever(index, mode="hybrid", rerank=True).retrieve("Quel quota pour le thon rouge ?", k=3)
    assert hits[0].article_id == "thon"
    assert calls == []


def test_index_without_stored_sentences_ranks_the_same(hash_config, tmp_path):
    with_s = rag.Index.create(tmp_path / "a", hash_config.with_(index_dir=tmp_path / "a"))
    without = rag.Index.create(tmp_path / "b", hash_config.with_(index_dir=tmp_path / "b", embed_sentences=False))
    for ix in (with_s, without):
        ix.add(articles())
    assert _sentence_rows(without) == []
    for q in ("participation au premier tour", "récolte de blé en Beauce", "Commission européenne"):
        a = [h.chunk_id for h in rag.Retriever(with_s).retrieve(q, k=5)]
        b = [h.chunk_id for h in rag.Retriever(without).retrieve(q, k=5)]
        assert a == b
    assert _sentence_rows(without)  # filled on first use


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("rerank", [False, True])
def test_every_mode_returns_cosine_scores_best_first(hash_config, mode, rerank):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(articles())
    q = "thon rouge débarqué"
    hits = rag.Retriever(index, mode=mode, rerank=rerank).retrieve(q, k=3)
    assert hits and hits[0].article_id == "thon"
    vec = index.embedder.embed_query(q)
    stored = index.store.vectors_for([h.chunk_id for h in hits], index.vectors_dim)
    for h in hits:  # the score is the chunk's cosine, whatever ordered the hits
        assert h.score == pytest.approx(float(stored[h.chunk_id] @ vec), abs=1e-5)
    assert len({h.chunk_id for h in hits}) == len(hits)


def test_filters_hold_in_every_stage(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([rag.Article(id=a.id, title=a.title, text=a.text, source="ouest" if a.id != "thon" else "sud")
               for a in articles()])
    hits = rag.Retriever(index).retrieve("thon rouge", k=5, filters={"sources": "ouest"})
    assert hits and all(h.article_id != "thon" for h in hits)


def test_cross_lingual_question_is_ranked_by_meaning_not_shared_words(e5_index):
    """An English question over French text: BM25 has no say, so hybrid equals dense."""
    index = rag.Index.open(e5_index)
    q = "Which two countries jointly coordinate the coalition?"
    hybrid = rag.Retriever(index, mode="hybrid").retrieve(q, k=5)
    dense = rag.Retriever(index, mode="dense", rerank=True).retrieve(q, k=5)
    assert [h.chunk_id for h in hybrid] == [h.chunk_id for h in dense]
    assert "coordination conjointe" in hybrid[0].text


def test_french_question_finds_the_coordination_passage(e5_index):
    index = rag.Index.open(e5_index)
    for rerank in (False, True):
        hits = rag.Retriever(index, mode="hybrid", rerank=rerank).retrieve("Qui coordonne la coalition des volontaires ?", k=3)
        assert "coordination conjointe" in hits[0].text


def test_environment_switches_the_sentence_stage(monkeypatch):
    from rag.config import Config
    from rag.errors import ConfigError

    assert Config.from_env().rerank and Config.from_env().embed_sentences
    monkeypatch.setenv("RAG_RERANK", "0")
    monkeypatch.setenv("RAG_EMBED_SENTENCES", "off")
    c = Config.from_env()
    assert c.rerank is False and c.embed_sentences is False
    monkeypatch.setenv("RAG_RERANK", "maybe")
    with pytest.raises(ConfigError, match="RAG_RERANK must be one of"):
        Config.from_env()


def _no_full_read(*_):
    raise AssertionError("terms were read back from the store")


def test_a_batch_updates_bm25_without_reading_every_chunks_terms(hash_config, tmp_path):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(articles()[:2])
    index.lexical_search(terms("thon", "fr"), 5)  # the BM25 index is in memory now
    reader = rag.Index.open(hash_config.index_dir)  # another handle, as another process would hold
    reader.lexical_search(terms("thon", "fr"), 5)
    index.store.all_terms = _no_full_read
    index.store.terms_for = _no_full_read  # the writer reads no terms back at all
    reader.store.all_terms = _no_full_read
    index.add(articles()[2:])  # its own commit: applied as written
    index.remove("vote")
    fresh = BM25Index.build(*rag.Index.open(hash_config.index_dir).store.all_terms())
    for q in ("récolte de blé", "thon rouge quota", "participation premier tour"):
        t = terms(q, "fr")
        for ix in (index, reader):  # the reader catches up by the chunks it lacks
            ids, scores = ix.lexical_search(t, 10)
            want_ids, want_scores = fresh.search(t, 10)
            assert ids == [int(i) for i in want_ids] and np.array_equal(np.float32(scores), want_scores)
    assert [h.article_id for h in rag.Retriever(reader, mode="bm25").retrieve("récolte de blé", k=1)] == ["ble"]


def test_bm25_rebuilds_after_reanalysis_and_ignores_first_format_files(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(articles())
    first = index.lexical
    (hash_config.index_dir / "lexical-00000099.npz").write_bytes(b"weights of the first format")
    with index._writing():
        index.store.reanalyze()
        index._persist()
    assert index.lexical is not first and index.lexical.epoch == index.store.terms_epoch == 1
    assert not list(hash_config.index_dir.glob("lexical-*.npz"))
    again = rag.Index.open(hash_config.index_dir)
    assert again.lexical.epoch == 1 and again.lexical_search(terms("thon", "fr"), 1)[0]


def _precomputed_bm25(docs, k1=1.2, b=0.75):
    """The earlier BM25 (a weight for every (chunk, term), computed for the whole corpus at
    once), as the reference: returns a function of the query terms giving every doc's score."""
    from collections import Counter

    vocab, rows, cols, tfs = {}, [], [], []
    lengths = np.asarray([len(d) for d in docs], dtype=np.float32)
    for r, d in enumerate(docs):
        for t, tf in Counter(d).items():
            rows.append(r)
            cols.append(vocab.setdefault(t, len(vocab)))
            tfs.append(tf)
    rows, cols, tf = np.asarray(rows), np.asarray(cols), np.asarray(tfs, dtype=np.float32)
    df = np.bincount(cols, minlength=len(vocab)).astype(np.float32)
    idf = np.log(1.0 + (len(docs) - df + 0.5) / (df + 0.5))
    norm = k1 * (1 - b + b * lengths[rows] / max(float(lengths.mean()), 1e-9))
    weights = idf[cols] * tf * (k1 + 1) / (tf + norm)

    def scores(terms):
        out = np.zeros(len(docs))
        for t in terms:
            if t in vocab:
                hit = cols == vocab[t]
                out[rows[hit]] += weights[hit]
        return out

    return scores


def test_bm25_added_in_batches_and_removed_from_scores_as_one_built_at_once():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    docs = [list(rng.choice(words, size=int(rng.integers(3, 40)))) for _ in range(600)]
    ids = np.arange(1, 601) * 2
    bm = BM25Index.build(ids[:50], docs[:50])
    for i in range(50, 600, 37):  # batches, as commits add them
        bm.add(ids[i : i + 37], docs[i : i + 37])
    gone = set(ids[::5].tolist())
    bm.remove(sorted(gone))
    keep = [i for i in range(600) if ids[i] not in gone]
    reference = _precomputed_bm25([docs[i] for i in keep])
    for _ in range(30):
        q = list(rng.choice(words, size=3))
        want = reference(q)
        got = bm.scores(q)[[bm._row_of[int(ids[i])] for i in keep]]
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6)
        top, top_scores = bm.search(q, 10)
        assert np.allclose(np.sort(top_scores)[::-1], np.sort(want[want > 0])[::-1][:10], rtol=1e-5)
        assert all(int(c) not in gone for c in top)
        assert bm.coverage(q) == sum(any(t in docs[i] for i in keep) for t in q) / len(q)
    with pytest.raises(ValueError):
        bm.add([5], [["w1"]])  # below ids already held
