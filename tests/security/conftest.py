"""Attacks by a hostile app on the shared PostgreSQL database, each with its exact refusal.

Each module gets a scratch database migrated to every head (``migrated``, from
tests/postgres/conftest.py) and the NOINHERIT test logins there, each a member of exactly
one Timber role. Everything an attacker sends is raw SQL on its own login, through
Timber's ``DatabaseManager``, so it runs as its app's role with its app and user context,
exactly as app code would.

The ORM-wall, SQLite-wall and crossing-property tests (test_orm_wall, test_sqlite_wall,
test_crossing_property) use ``wall_kernel`` (Canopy on each database) and ``wall_sqlite``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import timber_core
from timber_core import app_context, platform_context
from timber_core.context import user_context
from timber_core.db import DatabaseManager
from tests.postgres.conftest import LOGINS, login_url, migrated, pg_database  # noqa: F401  (fixtures)

ALICE, BOB = "a" * 36, "b" * 36


def run(db: DatabaseManager, app: str, user: str | None, sql: str, **params: Any) -> Any:
    """Run ``sql`` as ``app`` (``platform`` for the platform) for ``user``; return the rows or the rowcount."""
    ctx = platform_context() if app == "platform" else app_context(app)
    with ctx, user_context(user), db.connection() as conn:
        result = conn.execute(text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


def refusal(db: DatabaseManager, app: str, user: str | None, sql: str, **params: Any) -> tuple[str, str]:
    """Run ``sql`` expecting PostgreSQL to refuse it; return (SQLSTATE, first line of the message)."""
    with pytest.raises(Exception) as err:
        run(db, app, user, sql, **params)
    orig = getattr(err.value, "orig", err.value)
    assert isinstance(orig, psycopg.Error), repr(err.value)
    return str(orig.sqlstate), str(orig).splitlines()[0]


def seed(platform: DatabaseManager) -> None:
    """Alice and Bob; a session, an event and a notification of each app for each; Grove's private row."""
    with platform_context(), platform.connection() as conn:
        for uid in (ALICE, BOB):
            conn.execute(text("INSERT INTO users (id, email, username, created_at, updated_at) "
                              "VALUES (:id, :email, :name, now(), now())"),
                         {"id": uid, "email": f"{uid}@x", "name": f"u{uid}"})
            who = "alice" if uid == ALICE else "bob"
            for app, stype in (("canopy", "trading"), ("grove", "research")):
                conn.execute(text(
                    "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                    "VALUES (:id, :u, :t, :app, 'active', now(), now())"), {"id": f"s-{who}-{app}", "u": uid,
                                                                            "t": stype, "app": app})
                conn.execute(text(
                    "INSERT INTO events (id, user_id, app_name, event_type, event_data, created_at, updated_at) "
                    "VALUES (:id, :u, :app, 'viewed', '{\"secret\": 1}', now(), now())"),
                    {"id": f"e-{who}-{app}", "u": uid, "app": app})
                conn.execute(text(
                    "INSERT INTO notifications (id, user_id, app_name, notification_type, title, is_read, "
                    "created_at, updated_at) VALUES (:id, :u, :app, 'note', 'Hello', false, now(), now())"),
                    {"id": f"n-{who}-{app}", "u": uid, "app": app})
        conn.execute(text("INSERT INTO research_sessions (id, user_id, session_type, created_at, updated_at) "
                          "VALUES ('rs-alice', :u, 'research', now(), now())"), {"u": ALICE})


@pytest.fixture(scope="module")
def dbs(migrated: URL) -> Iterator[dict[str, DatabaseManager]]:  # noqa: F811
    """One DatabaseManager per test login (canopy, grove, platform), after seeding."""
    kernel = timber_core.initialize_timber("canopy", database_url=login_url(migrated, "canopy"))
    managers = {ctx: DatabaseManager(login_url(migrated, ctx)) for ctx in LOGINS}
    for m in managers.values():
        m.kernel = kernel
    seed(managers["platform"])
    yield managers
    for m in managers.values():
        m.dispose()


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
