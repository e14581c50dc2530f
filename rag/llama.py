"""Adapters that let llama-index components use our retriever and embedder."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode


class LlamaIndexRetriever(BaseRetriever):
    """A llama-index retriever backed by :class:`rag.Retriever`.

    Nodes carry the chunk's text, its id as ``id_`` and the Hit fields as metadata,
    including ``start``/``end`` offsets into the article.
    """

    def __init__(self, retriever, k: int = 5, filters=None, **kwargs: Any):
        super().__init__(**kwargs)
        self._retriever = retriever
        self._k = k
        self._filters = filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._retriever.retrieve(query_bundle.query_str, k=self._k, filters=self._filters)
        out = []
        for h in hits:
            meta = {k: v for k, v in h.to_dict().items() if k not in ("text", "score")}
            node = TextNode(id_=str(h.chunk_id), text=h.text, metadata=meta,
                            excluded_embed_metadata_keys=list(meta), excluded_llm_metadata_keys=["chunk_id", "start", "end"])
            out.append(NodeWithScore(node=node, score=h.score))
        return out


class LlamaIndexEmbedding(BaseEmbedding):
    """Our :class:`rag.embedding.Embedder` as a llama-index embedding model."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder, **kwargs: Any):
        super().__init__(model_name=embedder.model_id or "rag-embedder", **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_passages([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_passages(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
