"""Shared fixtures: fresh kernels on SQLite and, where configured, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


def postgres_url_or_skip() -> str:
    """Return TIMBER_TEST_DATABASE_URL; skip with the reason locally, fail under CI."""
    url = os.environ.get("TIMBER_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TIMBER_TEST_DATABASE_URL is not set under CI: the PostgreSQL tests must run there")
        pytest.skip("PostgreSQL tests need TIMBER_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """Create an empty PostgreSQL database for one test; yield its URL; drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url_or_skip())
    if base.drivername in ("postgresql", "postgres"):
        base = base.set(drivername="postgresql+psycopg")
    name = f"timber_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {base.render_as_string(hide_password=True)} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        from timber_core import kernel as _k

        if _k._kernel is not None:
            _k._kernel.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's embedded files (SQLite, vectors) in its own directory."""
    monkeypatch.setenv("TIMBER_HOME", os.path.join(str(tmp_path), ".timber"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TIMBER_APPS", raising=False)
    monkeypatch.delenv("TIMBER_DISABLE_APPS", raising=False)
    monkeypatch.delenv("TIMBER_DEBUG", raising=False)  # errors and warnings as users see them
    from timber_core.config import TimberConfig

    TimberConfig._cache.clear()


@pytest.fixture
def alice(kernel: Any) -> str:
    """A user created through the shared service, on whatever ``kernel`` the test uses."""
    from timber_core.services.persistence import user_service

    return user_service.create_user("alice@example.com", "alice")


@pytest.fixture
def bob(kernel: Any) -> str:
    """A second user, like ``alice``."""
    from timber_core.services.persistence import user_service

    return user_service.create_user("bob@example.com", "bob")
