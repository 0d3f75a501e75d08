"""Fixtures of the ORM-wall, SQLite-wall and crossing-property tests (test_orm_wall, test_sqlite_wall,
test_crossing_property): a kernel initialized for Canopy on each database, and its users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import timber_core


@pytest.fixture(params=["sqlite", "postgresql"])
def wall_kernel(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """The kernel initialized for Canopy, on a SQLite file and on a scratch PostgreSQL database."""
    if request.param == "sqlite":
        k = timber_core.initialize_timber(app_name="canopy", database_url=f"sqlite:///{tmp_path}/timber.db")
    else:
        url = request.getfixturevalue("scratch_postgres")
        k = timber_core.initialize_timber(app_name="canopy", database_url=url, create_tables=True)
    yield k
    k.close()


@pytest.fixture
def wall_sqlite(tmp_path: Any) -> Iterator[Any]:
    """The kernel initialized for Canopy on a SQLite file."""
    k = timber_core.initialize_timber(app_name="canopy", database_url=f"sqlite:///{tmp_path}/timber.db")
    yield k
    k.close()
