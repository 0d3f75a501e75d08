"""Vector search layer of Timber: embeddings (fastembed) and vector stores (Qdrant).

Importing this package is cheap: it never imports fastembed, numpy, qdrant_client or
qdrant_edge. Those load lazily, the first time an ``Embedder`` embeds or a store opens.

Public pieces (import them from their modules):

- :mod:`timber_core.vectors.embeddings` -- ``Embedder``, ``prepare_offline_model_dir``
- :mod:`timber_core.vectors.store` -- ``VectorStore``, ``Point``, ``Hit``
- :mod:`timber_core.vectors.edge` -- ``EdgeStore`` (embedded, qdrant-edge-py; the default)
- :mod:`timber_core.vectors.server` -- ``QdrantServerStore`` (qdrant-client; ``QDRANT_URL``)
- :mod:`timber_core.vectors.factory` -- ``open_store``
"""

# Nothing is re-exported: `timber apps list` imports `timber_core.vectors.commands`, and this
# package must cost it nothing.
