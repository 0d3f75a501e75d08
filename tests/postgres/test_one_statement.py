"""One statement sent in the same message as its context (``DatabaseManager.one_statement()``).

The statement and the per-transaction context travel as one simple query, run by PostgreSQL
as one implicit transaction. These tests hold that path to what ``connection()`` guarantees:
the app's role and the user's rows only, values bound by the driver, nothing left on the
pooled connection for its next user.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, text

from timber_core import app_context, platform_context
from timber_core.context import user_context
from timber_core.db import DatabaseManager
from timber_core.errors import ConfigurationError, TimberError

from .test_rls import ALICE, BOB, dbs, ids  # noqa: F401  (dbs: the module's fixture, seeded rows)

SECOND = ("one_statement(): this connection already ran its one statement (the context went with it): "
          "use DatabaseManager.connection() for a transaction of several statements")


def one(db: DatabaseManager, app: str, user: str | None, sql: str, **params: Any) -> Any:
    """Run ``sql`` through ``one_statement()`` in ``app``'s context for ``user``; return its rows or rowcount."""
    ctx = platform_context() if app == "platform" else app_context(app)
    with ctx, user_context(user), db.one_statement() as conn:
        result = conn.execute(text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


def test_one_statement_runs_as_the_apps_role_for_the_user(dbs: dict[str, DatabaseManager]) -> None:
    rows = one(dbs["canopy"], "canopy", ALICE, "SELECT session_user, current_user, current_setting('timber.app'), "
               "current_setting('timber.user_id'), current_setting('search_path')")
    assert rows == [("timber_test_canopy", "timber_canopy", "canopy", ALICE, "public, pg_temp")]


def test_raw_sql_in_one_statement_reads_only_the_users_rows_of_the_apps_types(dbs: dict[str, DatabaseManager]) -> None:
    assert ids(one(dbs["canopy"], "canopy", ALICE, "SELECT id FROM sessions")) == ["s-alice-paper", "s-alice-trading"]


def test_raw_sql_in_one_statement_cannot_open_another_apps_rows_by_setting_timber_app(
        dbs: dict[str, DatabaseManager]) -> None:
    rows = one(dbs["canopy"], "canopy", ALICE, "SELECT set_config('timber.app', 'grove', true), "
               "(SELECT count(*) FROM sessions WHERE session_type = 'research')")
    assert rows == [("grove", 0)]


def test_raw_sql_in_one_statement_cannot_write_another_users_row(dbs: dict[str, DatabaseManager]) -> None:
    with pytest.raises(Exception) as err:
        one(dbs["canopy"], "canopy", ALICE, "INSERT INTO sessions (id, user_id, session_type, app_name, status, "
            "created_at, updated_at) VALUES ('s-forged', :u, 'trading', 'canopy', 'active', now(), now())", u=BOB)
    orig = err.value.orig  # type: ignore[attr-defined]
    assert (orig.sqlstate, str(orig).splitlines()[0]) == (
        "42501", 'new row violates row-level security policy for table "sessions"')


def test_values_with_quotes_and_semicolons_reach_the_database_as_values(dbs: dict[str, DatabaseManager]) -> None:
    hostile = "x', false); SELECT set_config('role', 'timber_grove', false); --"
    rows = one(dbs["canopy"], "canopy", hostile, "SELECT current_user, current_setting('timber.user_id'), :v, '100%'",
               v=hostile)
    assert rows == [("timber_canopy", hostile, hostile, "100%")]


def test_the_context_ends_with_the_statement(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    db.dispose()  # one pooled connection: the next checkout is the one the statement used
    [(pid,)] = one(db, "canopy", ALICE, "SELECT pg_backend_pid()")
    with db.admin_connection() as conn:
        after = conn.execute(text("SELECT pg_backend_pid(), current_user, current_setting('timber.app', true), "
                                  "current_setting('timber.user_id', true)")).one()
        autocommit = conn.connection.driver_connection.autocommit
    assert (tuple(after), autocommit) == ((pid, "timber_test_canopy", "", ""), False)


def test_session_level_settings_left_by_app_code_are_reset(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    db.dispose()
    with app_context("canopy"), user_context(ALICE), db.connection() as conn:
        conn.execute(text("SET SESSION row_security = off"))  # session level: outlives its transaction
    assert one(db, "canopy", ALICE, "SELECT current_setting('row_security')") == [("on",)]


def test_a_failed_statement_leaves_the_connection_clean_for_the_next(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    db.dispose()
    with pytest.raises(Exception) as err:
        one(db, "canopy", ALICE, "SELECT 1 / 0")
    assert str(err.value.orig) == "division by zero"  # type: ignore[attr-defined]
    assert one(db, "canopy", BOB, "SELECT current_user, current_setting('timber.user_id')") == [("timber_canopy", BOB)]


def test_core_statements_prepared_on_the_connection_survive_app_code_deallocating_them(
        dbs: dict[str, DatabaseManager]) -> None:
    from sqlalchemy import column, select, table

    db = dbs["canopy"]
    db.dispose()
    sessions = table("sessions", column("id"), column("user_id"))
    query = select(sessions.c.id).where(sessions.c.user_id == ALICE).order_by(sessions.c.id)
    with app_context("canopy"), user_context(ALICE):
        with db.one_statement() as conn:
            first = conn.execute(query).scalars().all()
        with db.one_statement() as conn:
            names = conn.execute(text("SELECT name FROM pg_prepared_statements WHERE name LIKE 'timber_ps_%'")).all()
        with db.connection() as conn:
            conn.execute(text("DEALLOCATE ALL"))
        with db.one_statement() as conn:
            again = conn.execute(query).scalars().all()
    assert (first, len(names), again) == (["s-alice-paper", "s-alice-trading"], 1, first)


def test_a_second_statement_on_a_one_statement_connection_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    with app_context("canopy"), user_context(ALICE), dbs["canopy"].one_statement() as conn:
        conn.execute(text("SELECT 1"))
        with pytest.raises(TimberError) as err:
            conn.execute(text("SELECT 2"))
    assert str(err.value) == SECOND


def test_executemany_on_a_one_statement_connection_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    with app_context("canopy"), user_context(ALICE), db.one_statement() as conn:
        with pytest.raises(TimberError) as err:
            conn.execute(text("SELECT :v"), [{"v": 1}, {"v": 2}])
    assert str(err.value) == (
        "one_statement(): executemany() is several statements; use DatabaseManager.connection()")


def test_a_login_that_may_not_act_as_the_role_is_told_the_grant(dbs: dict[str, DatabaseManager]) -> None:
    with pytest.raises(ConfigurationError) as err:
        one(dbs["canopy"], "grove", ALICE, "SELECT 1")
    assert str(err.value) == (
        "app context 'grove': the database login 'timber_test_canopy' cannot act as role 'timber_grove' "
        "(permission denied to set role \"timber_grove\"). Run the migrations (timber migrate) so the role "
        "exists, then, as an administrator: GRANT timber_grove TO timber_test_canopy;"
    )


def test_inside_a_session_scope_one_statement_joins_its_transaction(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    with app_context("canopy"), user_context(ALICE), db.session_scope() as session:
        outer = session.execute(text("SELECT txid_current()")).scalar()
        with db.one_statement() as conn:
            inner = conn.execute(text("SELECT txid_current()")).scalar()
            again = conn.execute(text("SELECT txid_current()")).scalar()
    assert (inner, again) == (outer, outer)


def test_a_core_insert_through_one_statement_is_committed(dbs: dict[str, DatabaseManager]) -> None:
    from sqlalchemy import column, table

    events = table("events", column("id"), column("user_id"), column("app_name"), column("event_type"),
                   column("created_at"), column("updated_at"))
    with app_context("canopy"), user_context(ALICE), dbs["canopy"].one_statement() as conn:
        conn.execute(insert(events).values(id="e-one-statement", user_id=ALICE, app_name="canopy",
                                           event_type="one", created_at=text("now()"), updated_at=text("now()")))
    assert one(dbs["canopy"], "canopy", ALICE, "SELECT id FROM events WHERE id = 'e-one-statement'") == [
        ("e-one-statement",)]

