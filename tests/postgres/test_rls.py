"""The database wall: roles and row-level security hold against hand-written SQL.

Every statement here is raw SQL sent on a connection made by Timber's
``DatabaseManager`` (so the transaction runs as the context's role, app and user),
logged in as a NOINHERIT login that is a member of exactly one Timber role.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

import timber_core
from timber_core import app_context, platform_context
from timber_core.context import user_context
from timber_core.db import NO_CONTEXT, DatabaseManager
from timber_core.errors import ConfigurationError

from .conftest import LOGINS, login_url

ALICE, BOB, EMPTY = "a" * 36, "b" * 36, ""
# One session per (user, type); ids say whose and which.
ROWS = [
    ("s-alice-trading", ALICE, "trading", "canopy"),
    ("s-alice-paper", ALICE, "paper_trading", "canopy"),
    ("s-alice-research", ALICE, "research", "grove"),
    ("s-bob-trading", BOB, "trading", "canopy"),
    ("s-bob-research", BOB, "research", "grove"),
    ("s-empty-trading", EMPTY, "trading", "canopy"),
    ("s-empty-research", EMPTY, "research", "grove"),
]


@pytest.fixture(scope="module")
def dbs(migrated: URL) -> Iterator[dict[str, DatabaseManager]]:
    """One DatabaseManager per login, plus rows seeded by the platform login."""
    timber_core.initialize_timber("canopy", database_url=login_url(migrated, "canopy"))
    managers = {ctx: DatabaseManager(login_url(migrated, ctx)) for ctx in LOGINS}
    with platform_context(), managers["platform"].connection() as conn:
        for uid in (ALICE, BOB, EMPTY):
            conn.execute(
                text("INSERT INTO users (id, email, username, created_at, updated_at) "
                     "VALUES (:id, :email, :name, now(), now())"),
                {"id": uid, "email": f"{uid}@x", "name": f"u{uid}"},
            )
        for sid, uid, stype, app in ROWS:
            conn.execute(
                text("INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                     "VALUES (:sid, :uid, :t, :app, 'active', now(), now())"),
                {"sid": sid, "uid": uid, "t": stype, "app": app},
            )
        conn.execute(text("INSERT INTO orders (id, user_id, symbol, order_type, quantity, status, created_at, "
                          "updated_at) VALUES ('o-alice', :u, 'ACME', 'buy', 1, 'pending', now(), now())"), {"u": ALICE})
        conn.execute(text("INSERT INTO research_reports (id, user_id, title, is_published, created_at, updated_at) "
                          "VALUES ('r-alice', :u, 'On ACME', false, now(), now())"), {"u": ALICE})
    yield managers
    for m in managers.values():
        m.dispose()


def run(db: DatabaseManager, app: str, user: str | None, sql: str, **params: Any) -> Any:
    """Run ``sql`` in ``app``'s context (``platform`` for the platform) for ``user``; return the result rows or rowcount."""
    ctx = platform_context() if app == "platform" else app_context(app)
    with ctx, user_context(user), db.connection() as conn:
        result = conn.execute(text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


def ids(rows: list[Any]) -> list[str]:
    return sorted(r[0] for r in rows)


def error_of(db: DatabaseManager, app: str, user: str | None, sql: str, **params: Any) -> str:
    """Run ``sql`` expecting PostgreSQL to refuse it; return the server's message."""
    with pytest.raises(Exception) as err:
        run(db, app, user, sql, **params)
    orig = getattr(err.value, "orig", err.value)
    assert isinstance(orig, psycopg.Error), err.value
    return str(orig).splitlines()[0]


# -- who the transaction is -------------------------------------------------------------------


def test_each_transaction_runs_as_the_contexts_role_app_and_user(dbs: dict[str, DatabaseManager]) -> None:
    row = run(dbs["canopy"], "canopy", ALICE, "SELECT session_user, current_user, current_setting('timber.app'), "
              "current_setting('timber.user_id')")
    assert row == [("timber_test_canopy", "timber_canopy", "canopy", ALICE)]
    row = run(dbs["platform"], "platform", None, "SELECT current_user, current_setting('timber.app'), "
              "current_setting('timber.user_id')")
    assert row == [("timber_platform", "platform", "")]


def test_orm_sessions_get_the_context_too(dbs: dict[str, DatabaseManager]) -> None:
    with app_context("canopy"), user_context(BOB), dbs["canopy"].session_scope() as s:
        got = s.execute(text("SELECT current_user, current_setting('timber.user_id')")).one()
    assert tuple(got) == ("timber_canopy", BOB)


def test_a_login_cannot_act_as_another_apps_role(dbs: dict[str, DatabaseManager]) -> None:
    with pytest.raises(ConfigurationError) as err:
        run(dbs["canopy"], "grove", ALICE, "SELECT 1")
    assert str(err.value) == (
        "app context 'grove': the database login 'timber_test_canopy' cannot act as role 'timber_grove' "
        "(permission denied to set role \"timber_grove\"). Run the migrations (timber migrate) so the role "
        "exists, then, as an administrator: GRANT timber_grove TO timber_test_canopy;"
    )
    # Nor by hand, inside its own transaction.
    assert error_of(dbs["canopy"], "canopy", ALICE, "SELECT set_config('role', 'timber_grove', true)") == (
        'permission denied to set role "timber_grove"'
    )
    assert error_of(dbs["canopy"], "canopy", ALICE, "SET LOCAL ROLE timber_platform") == (
        'permission denied to set role "timber_platform"'
    )


def test_no_context_is_an_error_not_an_empty_result(migrated: URL) -> None:
    code = (
        "from timber_core.db import DatabaseManager\n"
        "from sqlalchemy import text\n"
        f"db = DatabaseManager({login_url(migrated, 'canopy').render_as_string(hide_password=False)!r})\n"
        "try:\n"
        "    with db.connection() as c: c.execute(text('SELECT 1'))\n"
        "except Exception as e: print(type(e).__name__ + ': ' + str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == (
        "NotInitializedError: a PostgreSQL transaction was opened without an app context, so Timber cannot "
        "choose its role and row-level security would have nothing to go on: no app context: call "
        "timber_core.initialize_timber(app_name=...) first, or run the code inside timber_core.app_context('<app>')"
    )


# -- the sessions table: app x user ------------------------------------------------------------


def test_canopy_sees_only_its_types_of_the_current_users_rows(dbs: dict[str, DatabaseManager]) -> None:
    assert ids(run(dbs["canopy"], "canopy", ALICE, "SELECT id FROM sessions")) == ["s-alice-paper", "s-alice-trading"]
    assert ids(run(dbs["canopy"], "canopy", BOB, "SELECT id FROM sessions")) == ["s-bob-trading"]
    assert ids(run(dbs["grove"], "grove", ALICE, "SELECT id FROM sessions")) == ["s-alice-research"]


def test_canopy_cannot_select_update_delete_or_insert_groves_session_types(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    assert run(db, "canopy", ALICE, "SELECT id FROM sessions WHERE session_type = 'research'") == []
    assert run(db, "canopy", ALICE, "UPDATE sessions SET status = 'hacked' WHERE session_type = 'research'") == 0
    assert run(db, "canopy", ALICE, "DELETE FROM sessions WHERE session_type = 'research'") == 0
    assert error_of(db, "canopy", ALICE, "INSERT INTO sessions (id, user_id, session_type, app_name, status, "
                    "created_at, updated_at) VALUES ('x', :u, 'research', 'canopy', 'active', now(), now())",
                    u=ALICE) == 'new row violates row-level security policy "timber_canopy_types" for table "sessions"'
    # Nor turn one of its own rows into Grove's type.
    assert error_of(db, "canopy", ALICE, "UPDATE sessions SET session_type = 'research' WHERE id = "
                    "'s-alice-trading'") == (
        'new row violates row-level security policy "timber_canopy_types" for table "sessions"'
    )
    assert _all_sessions(dbs) == {r[0]: "active" for r in ROWS}


def test_grove_cannot_select_update_delete_or_insert_canopys_session_types(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["grove"]
    assert run(db, "grove", ALICE, "SELECT id FROM sessions WHERE session_type IN ('trading', 'paper_trading')") == []
    assert run(db, "grove", ALICE, "UPDATE sessions SET status = 'hacked' WHERE session_type = 'trading'") == 0
    assert run(db, "grove", ALICE, "DELETE FROM sessions WHERE session_type = 'trading'") == 0
    assert error_of(db, "grove", ALICE, "INSERT INTO sessions (id, user_id, session_type, app_name, status, "
                    "created_at, updated_at) VALUES ('x', :u, 'trading', 'grove', 'active', now(), now())",
                    u=ALICE) == 'new row violates row-level security policy "timber_grove_types" for table "sessions"'
    assert _all_sessions(dbs) == {r[0]: "active" for r in ROWS}


def test_canopy_cannot_write_another_users_rows(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    assert run(db, "canopy", ALICE, "UPDATE sessions SET status = 'x' WHERE id = 's-bob-trading'") == 0
    assert run(db, "canopy", ALICE, "DELETE FROM sessions WHERE id = 's-bob-trading'") == 0
    assert error_of(db, "canopy", ALICE, "INSERT INTO sessions (id, user_id, session_type, app_name, status, "
                    "created_at, updated_at) VALUES ('x', :u, 'trading', 'canopy', 'active', now(), now())",
                    u=BOB) == 'new row violates row-level security policy for table "sessions"'
    assert _all_sessions(dbs) == {r[0]: "active" for r in ROWS}


def test_own_rows_can_be_written(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    assert run(db, "canopy", BOB, "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, "
               "updated_at) VALUES ('s-bob-new', :u, 'paper_trading', 'canopy', 'active', now(), now())", u=BOB) == 1
    assert run(db, "canopy", BOB, "UPDATE sessions SET status = 'ended' WHERE id = 's-bob-new'") == 1
    assert run(db, "canopy", BOB, "DELETE FROM sessions WHERE id = 's-bob-new'") == 1
    assert _all_sessions(dbs) == {r[0]: "active" for r in ROWS}


@pytest.mark.parametrize("setting", [None, "", "c" * 36], ids=["unset", "empty", "other-user"])
def test_the_user_setting_unset_empty_or_another_user_sees_none_of_the_users_rows(
    dbs: dict[str, DatabaseManager], migrated: URL, setting: str | None
) -> None:
    # Raw connection as the canopy login: the role is switched by hand and the user setting
    # is left truly unset (NULL), set to '' or set to a user with no rows.
    engine = create_engine(login_url(migrated, "canopy"))
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('role', 'timber_canopy', true)"))
        if setting is not None:
            conn.execute(text("SELECT set_config('timber.user_id', :u, true)"), {"u": setting})
        assert conn.execute(text("SELECT current_setting('timber.user_id', true)")).scalar() == setting
        assert conn.execute(text("SELECT id FROM sessions")).all() == []
        # Even the rows of the user whose id is '' stay out of reach.
        assert conn.execute(text("SELECT id FROM sessions WHERE user_id = ''")).all() == []
        assert conn.execute(text("UPDATE sessions SET status = 'x'")).rowcount == 0
        assert conn.execute(text("DELETE FROM sessions")).rowcount == 0
    engine.dispose()
    assert _all_sessions(dbs) == {r[0]: "active" for r in ROWS}


def test_the_platform_sees_and_writes_every_row(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["platform"]
    assert ids(run(db, "platform", None, "SELECT id FROM sessions")) == sorted(r[0] for r in ROWS)
    assert run(db, "platform", None, "SELECT id FROM orders") == [("o-alice",)]
    assert run(db, "platform", None, "SELECT id FROM research_reports") == [("r-alice",)]
    assert run(db, "platform", None, "UPDATE sessions SET status = status") == len(ROWS)


# -- private tables: grants -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "table"), [("canopy", "research_reports"), ("canopy", "research_sessions"),
                       ("grove", "orders"), ("grove", "trading_sessions")]
)
def test_an_app_cannot_touch_another_apps_tables_at_all(dbs: dict[str, DatabaseManager], app: str, table: str) -> None:
    db = dbs[app]
    denied = f"permission denied for table {table}"
    assert error_of(db, app, ALICE, f"SELECT * FROM {table}") == denied
    assert error_of(db, app, ALICE, f"UPDATE {table} SET user_id = user_id") == denied
    assert error_of(db, app, ALICE, f"DELETE FROM {table}") == denied
    assert error_of(db, app, ALICE, f"INSERT INTO {table} (id) VALUES ('x')") == denied
    assert error_of(db, app, ALICE, f"TRUNCATE {table}") == denied


def test_an_app_uses_its_own_and_the_shared_tables(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "SELECT id FROM orders") == [("o-alice",)]
    assert run(dbs["grove"], "grove", ALICE, "SELECT id FROM research_reports") == [("r-alice",)]
    assert len(run(dbs["grove"], "grove", ALICE, "SELECT id FROM users")) == 3


def test_app_roles_are_granted_exactly_their_tables_and_the_shared_ones(migrated: URL) -> None:
    engine = create_engine(migrated)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.rolname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN (VALUES ('timber_canopy'), ('timber_grove'), ('timber_platform')) r(rolname) "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT IN ('alembic_version', 'timber_revisions') "
            "AND has_table_privilege(r.rolname, c.oid, 'SELECT') ORDER BY 1, 2"
        )).all()
        owners = set(conn.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public' "
                                       "AND tablename NOT IN ('alembic_version', 'timber_revisions')")).scalars())
        attrs = conn.execute(text("SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE "
                                  "rolname IN ('timber_canopy', 'timber_grove', 'timber_platform', "
                                  "'timber_owner', 'timber_apps') ORDER BY 1")).all()
    engine.dispose()
    shared = ["events", "notifications", "sessions", "users"]
    got: dict[str, list[str]] = {}
    for role, table in rows:
        got.setdefault(role, []).append(table)
    assert got == {
        "timber_canopy": sorted(shared + ["orders", "trading_sessions"]),
        "timber_grove": sorted(shared + ["research_reports", "research_sessions"]),
        # The vector outbox: apps may only INSERT into it (no SELECT); the platform drains it.
        # The password hashes (user_credentials) and the GDPR erasure records: the platform only.
        "timber_platform": sorted(shared + ["orders", "trading_sessions", "research_reports", "research_sessions",
                                            "timber_vector_outbox", "user_credentials", "timber_gdpr_audit"]),
    }
    assert owners == {"timber_owner"}
    assert all(not sup and not bypass and not login for _, sup, bypass, login in attrs)
    assert [a[0] for a in attrs] == ["timber_apps", "timber_canopy", "timber_grove", "timber_owner", "timber_platform"]


# -- the plan -----------------------------------------------------------------------------------


def test_user_session_query_uses_the_user_type_index_under_rls(dbs: dict[str, DatabaseManager], migrated: URL) -> None:
    admin = create_engine(migrated)
    with admin.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (id, email, username, created_at, updated_at) SELECT 'bulk' || g, 'bulk' || g, "
            "'bulk' || g, now(), now() FROM generate_series(1, 2000) g"
        ))
        conn.execute(text(
            "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
            "SELECT 'bulk-s' || g, 'bulk' || (g % 2000 + 1), (ARRAY['trading','paper_trading','research',"
            "'analysis'])[g % 4 + 1], 'x', 'active', now(), now() FROM generate_series(1, 40000) g"
        ))
        conn.execute(text("ANALYZE sessions"))
    # The services' get_user_sessions(user_id) query, as Canopy, for Alice.
    query = ("SELECT * FROM sessions WHERE user_id = :u AND session_type IN ('paper_trading', 'trading') "
             "ORDER BY created_at DESC, id")
    try:
        plan = run(dbs["canopy"], "canopy", ALICE, "EXPLAIN (FORMAT TEXT) " + query, u=ALICE)
        text_plan = "\n".join(r[0] for r in plan)
        assert "ix_sessions_user_id_session_type" in text_plan, text_plan
        assert "Seq Scan" not in text_plan, text_plan
        assert ids(run(dbs["canopy"], "canopy", ALICE, query, u=ALICE)) == ["s-alice-paper", "s-alice-trading"]
    finally:
        with admin.begin() as conn:
            conn.execute(text("DELETE FROM sessions WHERE id LIKE 'bulk-s%'"))
            conn.execute(text("DELETE FROM users WHERE id LIKE 'bulk%'"))
        admin.dispose()


# -- the pool -------------------------------------------------------------------------------------


def _state(conn: Any) -> tuple[Any, ...]:
    return tuple(conn.execute(text(
        "SELECT pg_backend_pid(), session_user, current_user, current_setting('role'), "
        "current_setting('timber.app', true), current_setting('timber.user_id', true)"
    )).one())


@pytest.mark.parametrize("ending", ["commit", "error", "orm"])
def test_a_connection_back_from_the_pool_carries_no_app_role_or_user(migrated: URL, ending: str) -> None:
    db = DatabaseManager(login_url(migrated, "platform"), pool_size=1, max_overflow=0)
    try:
        with platform_context(), user_context(ALICE):
            if ending == "commit":
                with db.connection() as conn:
                    pid, _, role, *_ = _state(conn)
                    assert role == "timber_platform"
            elif ending == "error":
                with pytest.raises(Exception):
                    with db.connection() as conn:
                        pid, _, role, *_ = _state(conn)
                        conn.execute(text("SELECT 1/0"))
            else:
                with db.session_scope() as s:
                    pid, _, role, *_ = _state(s.connection())
        with db.engine.connect() as conn:
            conn.execution_options(**{NO_CONTEXT: True})
            # Same backend, back as the bare login: nothing of the previous use survived.
            assert _state(conn) == (pid, "timber_test_platform", "timber_test_platform", "none", "", "")
    finally:
        db.dispose()


def _all_sessions(dbs: dict[str, DatabaseManager]) -> dict[str, str]:
    return dict(run(dbs["platform"], "platform", None, "SELECT id, status FROM sessions"))
