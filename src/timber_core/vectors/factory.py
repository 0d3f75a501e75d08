"""Choose the vector store: a Qdrant server when a URL is configured, else an embedded one."""

from __future__ import annotations

import os

from timber_core.vectors.store import VectorStore

__all__ = ["open_store"]


def open_store(qdrant_url: str | None, root_dir: str | os.PathLike[str], kind: str = "sqlite") -> VectorStore:
    """Open the vector store Timber should use.

    ``qdrant_url`` (usually from ``QDRANT_URL``) set and non-blank: a
    :class:`~timber_core.vectors.server.QdrantServerStore` on that server. Otherwise an
    embedded store under ``root_dir`` (usually ``$TIMBER_HOME/vectors``) of ``kind``
    (``TIMBER_VECTOR_STORE``): ``sqlite``, a
    :class:`~timber_core.vectors.sqlitevec.SqliteVecStore` every process may share (the
    default), or ``edge``, an :class:`~timber_core.vectors.edge.EdgeStore` owned by one
    process. Nothing heavy is imported until this is called.
    """
    if qdrant_url and qdrant_url.strip():
        from timber_core.vectors.server import QdrantServerStore

        return QdrantServerStore(qdrant_url.strip())
    if kind == "edge":
        from timber_core.vectors.edge import EdgeStore

        return EdgeStore(root_dir)
    from timber_core.vectors.sqlitevec import SqliteVecStore

    return SqliteVecStore(root_dir)
