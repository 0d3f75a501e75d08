"""Real PostgreSQL for the migration and row-level-security tests.

Each test module gets its own scratch database (``timber_t_<random>``), migrated
to every head by ``initialize_timber(create_tables=True)`` as the admin login of
``TIMBER_TEST_DATABASE_URL``, and dropped afterwards. The test logins below are
cluster-wide: created idempotently, never dropped (other databases on the same
server may be using them at the same moment).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

#: One NOINHERIT login per context, each a member of exactly one Timber role.
LOGINS = {"canopy": "timber_test_canopy", "grove": "timber_test_grove", "platform": "timber_test_platform"}


def admin_url() -> URL:
    """Return TIMBER_TEST_DATABASE_URL with the psycopg driver; skip (saying why) when unset."""
    url = os.environ.get("TIMBER_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TIMBER_TEST_DATABASE_URL is not set under CI: the PostgreSQL tests must run there")
        pytest.skip(
            "tests/postgres need a real PostgreSQL: set TIMBER_TEST_DATABASE_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test, a superuser)"
        )
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg") if parsed.drivername in ("postgresql", "postgres") else parsed


def _ensure_login(conn: Any, login: str, member_of: str) -> None:
    conn.execute(text(f"""DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{login}') THEN
    BEGIN CREATE ROLE {login} LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
  END IF;
  IF NOT pg_has_role('{login}', '{member_of}', 'MEMBER') THEN
    BEGIN GRANT {member_of} TO {login};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
  END IF;
END $$"""))


@pytest.fixture(scope="module")
def pg_database() -> Iterator[URL]:
    """Create a scratch database for the module; yield its admin URL; drop it afterwards."""
    from timber_core.testing import ScratchDatabaseError, scratch_database

    try:
        with scratch_database(admin_url().render_as_string(hide_password=False)) as url:
            yield make_url(url)
    except ScratchDatabaseError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def migrated(pg_database: URL) -> URL:
    """The module's database at every head, with the test logins granted their roles."""
    import timber_core

    kernel = timber_core.initialize_timber("canopy", database_url=pg_database, create_tables=True)
    kernel.close()
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        for app, login in LOGINS.items():
            _ensure_login(conn, login, "timber_platform" if app == "platform" else f"timber_{app}")
    engine.dispose()
    return pg_database


def login_url(url: URL, context: str) -> URL:
    """Return ``url`` with the test login of ``context`` (canopy, grove or platform)."""
    return url.set(username=LOGINS[context], password=None)
