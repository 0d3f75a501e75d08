"""Choose the vector store: a Qdrant server when a URL is configured, else embedded."""

from __future__ import annotations

import os

from timber_core.vectors.store import VectorStore

__all__ = ["open_store"]


def open_store(qdrant_url: str | None, root_dir: str | os.PathLike[str]) -> VectorStore:
    """Open the vector store Timber should use.

    ``qdrant_url`` (usually from ``QDRANT_URL``) set and non-blank: a
    :class:`~timber_core.vectors.server.QdrantServerStore` on that server (several
    processes may share it). Otherwise an :class:`~timber_core.vectors.edge.EdgeStore`
    under ``root_dir`` (usually ``./.timber/vectors``), owned by this process alone.
    Nothing heavy is imported until this is called.
    """
    if qdrant_url and qdrant_url.strip():
        from timber_core.vectors.server import QdrantServerStore

        return QdrantServerStore(qdrant_url.strip())
    from timber_core.vectors.edge import EdgeStore

    return EdgeStore(root_dir)
