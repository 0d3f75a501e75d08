"""Fixtures for running the design document's samples: a database, the document's directories, its users."""

from __future__ import annotations

import runpy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

import timber_core

SAMPLES = Path(__file__).resolve().parent

#: The directories the document's samples name, relative to the app's working directory.
DOCUMENT_DIRS = (
    "timber/data/models/shared",
    "canopy/data/models",
    "grove/data/models",
    "myapp/data/models",
    "tests/fixtures/models/shared",
    "tests/fixtures/models/canopy",
    "tests/fixtures/models/grove",
)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``DATABASE_URL`` for the samples: a SQLite file, or (param ``"postgresql"``) a migrated scratch database.

    The document's samples read the database from the environment (or pass it in), as its
    ``.env`` section says; on PostgreSQL the schema is made first, as ``timber migrate`` would.
    """
    from timber_core.config import TimberConfig

    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/timber.db"
    else:
        url = request.getfixturevalue("scratch_postgres")
        timber_core.initialize_timber(app_name="canopy", database_url=url, create_tables=True)
        timber_core.shutdown()
    monkeypatch.setenv("DATABASE_URL", url)
    TimberConfig.clear_cache()
    yield url
    timber_core.shutdown()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's working directory, holding the (empty) model directories the samples name; the cwd."""
    root = tmp_path / "project"
    for relative in DOCUMENT_DIRS:
        (root / relative).mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def run_sample(workdir: Path, database: str) -> Callable[[str], dict[str, Any]]:
    """Run ``tests/design_samples/<name>`` as a script in the working directory; return its globals."""

    def run(name: str) -> dict[str, Any]:
        return runpy.run_path(str(SAMPLES / name), run_name="__design_sample__")

    return run


def add_user(user_id: str) -> str:
    """Add the user the document's samples name (``'user-123'``): the document never creates it."""
    kernel = timber_core.get_kernel()
    with kernel.db.engine.begin() as conn:
        conn.execute(insert(kernel.metadata.tables["users"]),
                     {"id": user_id, "email": f"{user_id}@example.com", "username": user_id})
    return user_id


@pytest.fixture
def canopy(run_sample: Callable[[str], dict[str, Any]]) -> str:
    """Canopy's process, as the document's first sample starts it, with the user ``'user-123'``."""
    run_sample("sample_01_application_context.py")
    return add_user("user-123")
