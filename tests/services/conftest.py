"""A fresh kernel per test, on SQLite and (when configured) PostgreSQL (users: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import timber_core


def _kernel_for(url: str) -> Any:
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() == "postgresql":
        from tests.services._pg import prepare

        return prepare(url)
    return timber_core.initialize_timber(app_name="canopy", database_url=url)


@pytest.fixture(params=["sqlite", "postgresql"])
def kernel(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """The kernel initialized for Canopy, on each database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/timber.db"
    else:
        url = request.getfixturevalue("scratch_postgres")
    k = _kernel_for(url)
    yield k
    k.close()


@pytest.fixture
def sqlite_kernel(tmp_path: Any) -> Iterator[Any]:
    """The kernel initialized for Canopy on a SQLite file."""
    k = timber_core.initialize_timber(app_name="canopy", database_url=f"sqlite:///{tmp_path}/timber.db")
    yield k
    k.close()
