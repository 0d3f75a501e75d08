"""What one transaction leaves on a pooled connection, and what locks one app can hold against another.

* Session state: app code can run session-level ``SET``, ``CREATE TEMP TABLE`` and the like
  on its pooled connection; none of it may change what the next transaction on that
  connection does (Timber's context statement re-sets search path, user and timeouts at
  every BEGIN, transaction-locally).
* Locks: Canopy can still lock rows and tables it may write, so Grove's statements wait for
  them at most ``lock_timeout`` and then fail with SQLSTATE 55P03 instead of hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from timber_core import app_context, platform_context
from timber_core.context import user_context
from timber_core.db import DatabaseManager
from timber_core.services.persistence import SessionService

from .conftest import ALICE, BOB, LOGINS, login_url, run

TEMP_SESSIONS = ("CREATE TEMP TABLE sessions (id varchar(36) PRIMARY KEY, user_id varchar(36), session_type varchar(50), "
                 "app_name varchar(50), status varchar(20), metadata jsonb, ended_at timestamptz, "
                 "created_at timestamptz, updated_at timestamptz)")


@pytest.fixture
def one_connection(dbs: dict[str, DatabaseManager], migrated: URL) -> Iterator[DatabaseManager]:
    """Canopy's login with a pool of exactly one connection: every transaction reuses the previous one's."""
    db = DatabaseManager(login_url(migrated, "canopy"), pool_size=1, max_overflow=0)
    db.kernel = dbs["canopy"].kernel
    yield db
    db.dispose()


def _dirty(db: DatabaseManager) -> int:
    """As Canopy for Alice, leave session-level state behind on the one connection; return its backend pid."""
    with app_context("canopy"), user_context(ALICE), db.connection() as conn:
        conn.exec_driver_sql(TEMP_SESSIONS)
        conn.exec_driver_sql("INSERT INTO pg_temp.sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                             f"VALUES ('s-temp', '{ALICE}', 'trading', 'canopy', 'active', now(), now())")
        conn.exec_driver_sql("CREATE FUNCTION pg_temp.upper(text) RETURNS text LANGUAGE sql AS $$ SELECT 'shadowed' $$")
        conn.exec_driver_sql("SET search_path = pg_temp, public")
        conn.exec_driver_sql(f"SET timber.user_id = '{BOB}'")
        conn.exec_driver_sql("SET lock_timeout = 0")
        conn.exec_driver_sql("SET statement_timeout = 0")
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())


def test_services_after_a_dirty_transaction_use_the_real_tables_and_the_right_user(
    one_connection: DatabaseManager, dbs: dict[str, DatabaseManager]
) -> None:
    pid = _dirty(one_connection)
    sessions = SessionService(db=one_connection)
    with app_context("canopy"):
        new = sessions.create_session(ALICE, "paper_trading")
        got = sorted(s.id for s in sessions.get_user_sessions(ALICE))
    assert got == sorted([new, "s-alice-canopy"])
    # Written to public.sessions, where the platform sees it.
    assert run(dbs["platform"], "platform", None, "SELECT user_id FROM sessions WHERE id = :i", i=new) == [(ALICE,)]
    with app_context("canopy"), user_context(ALICE), one_connection.connection() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid  # the same connection


def test_the_next_transaction_gets_its_own_search_path_user_and_timeouts(one_connection: DatabaseManager) -> None:
    _dirty(one_connection)
    with app_context("canopy"), user_context(None), one_connection.connection() as conn:
        state = conn.exec_driver_sql(
            "SELECT current_setting('search_path'), current_setting('timber.user_id'), "
            "current_setting('lock_timeout'), current_setting('statement_timeout')").one()
    assert tuple(state) == ("public, pg_temp", "", "5s", "30s")


def test_a_temp_function_does_not_shadow_a_builtin(one_connection: DatabaseManager) -> None:
    _dirty(one_connection)
    with app_context("canopy"), user_context(ALICE), one_connection.connection() as conn:
        assert conn.exec_driver_sql("SELECT upper('a')").scalar() == "A"


def test_a_temp_table_does_not_shadow_a_shared_table_in_raw_sql(one_connection: DatabaseManager) -> None:
    _dirty(one_connection)
    with app_context("canopy"), user_context(ALICE), one_connection.connection() as conn:
        rows = conn.exec_driver_sql("SELECT id FROM sessions ORDER BY id").scalars().all()
    assert "s-temp" not in rows and "s-alice-canopy" in rows


def test_session_level_settings_left_by_app_code_are_reset_for_the_next_transaction(
    one_connection: DatabaseManager,
) -> None:
    with app_context("canopy"), user_context(ALICE), one_connection.connection() as conn:
        fresh = conn.exec_driver_sql("SELECT current_setting('DateStyle'), current_setting('work_mem')").one()
        conn.exec_driver_sql("SET row_security = off")
        conn.exec_driver_sql("SET DateStyle = 'SQL, DMY'")
        conn.exec_driver_sql("SET work_mem = '1GB'")
    sessions = SessionService(db=one_connection)
    with app_context("canopy"):
        # row_security = off would make every query on an RLS table fail ("query would be affected by ...").
        assert [s.id for s in sessions.get_user_sessions(ALICE) if s.id == "s-alice-canopy"] == ["s-alice-canopy"]
    with app_context("canopy"), user_context(ALICE), one_connection.connection() as conn:
        got = conn.exec_driver_sql("SELECT current_setting('DateStyle'), current_setting('work_mem'), "
                                   "current_setting('row_security')").one()
    assert tuple(got) == (*fresh, "on")


# -- locks: bounded by the victim's lock_timeout; statements by statement_timeout -----------------


def _outcome(fn: Callable[[], Any]) -> BaseException | None:
    """Run ``fn`` in a thread; return what it raised (None if nothing). Fail if it is still waiting after 60 s."""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            box.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the victim's call is still waiting for the lock: no lock_timeout bounded it"
    return box[0]


def _sqlstate(exc: BaseException | None) -> tuple[str, str]:
    orig = getattr(exc, "orig", exc)
    assert isinstance(orig, psycopg.Error), repr(exc)
    return str(orig.sqlstate), str(orig).splitlines()[0]


@pytest.fixture
def grove_fast(dbs: dict[str, DatabaseManager], migrated: URL) -> Iterator[DatabaseManager]:
    """Grove's login, giving up on a lock after 200 ms."""
    db = DatabaseManager(login_url(migrated, "grove"), lock_timeout_ms=200)
    db.kernel = dbs["canopy"].kernel
    yield db
    db.dispose()


def test_a_table_lock_held_by_canopy_makes_groves_service_call_fail_with_lock_timeout(
    dbs: dict[str, DatabaseManager], grove_fast: DatabaseManager
) -> None:
    def grove_reads() -> None:
        with app_context("grove"):
            SessionService(db=grove_fast).get_user_sessions(ALICE)

    with app_context("canopy"), user_context(ALICE), dbs["canopy"].connection() as conn:
        conn.exec_driver_sql("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        exc = _outcome(grove_reads)
    assert _sqlstate(exc) == ("55P03", "canceling statement due to lock timeout")


def test_a_row_lock_held_by_canopy_makes_groves_update_fail_with_lock_timeout(
    dbs: dict[str, DatabaseManager], grove_fast: DatabaseManager
) -> None:
    def grove_updates_alice() -> None:
        run(grove_fast, "grove", ALICE, "UPDATE users SET updated_at = now() WHERE id = :u", u=ALICE)

    with app_context("canopy"), user_context(ALICE), dbs["canopy"].connection() as conn:
        assert conn.exec_driver_sql("SELECT id FROM users FOR UPDATE").scalars().all() == [ALICE]
        exc = _outcome(grove_updates_alice)
    assert _sqlstate(exc) == ("55P03", "canceling statement due to lock timeout")


def test_a_long_statement_is_cancelled_by_statement_timeout(dbs: dict[str, DatabaseManager], migrated: URL) -> None:
    db = DatabaseManager(login_url(migrated, "canopy"), statement_timeout_ms=100)
    try:
        exc = _outcome(lambda: run(db, "canopy", ALICE, "SELECT pg_sleep(30)"))
    finally:
        db.dispose()
    assert _sqlstate(exc) == ("57014", "canceling statement due to statement timeout")


def test_zero_turns_the_timeouts_off(dbs: dict[str, DatabaseManager], migrated: URL) -> None:
    db = DatabaseManager(login_url(migrated, "canopy"), lock_timeout_ms=0, statement_timeout_ms=0)
    try:
        got = run(db, "canopy", ALICE, "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
    finally:
        db.dispose()
    assert got == [("0", "0")]


def test_the_platform_context_gets_the_timeouts_too(dbs: dict[str, DatabaseManager]) -> None:
    with platform_context(), dbs["platform"].connection() as conn:
        got = conn.execute(text("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")).one()
    assert tuple(got) == ("5s", "30s")


def test_the_test_logins_are_the_noinherit_ones(dbs: dict[str, DatabaseManager]) -> None:
    rows = run(dbs["platform"], "platform", None, "SELECT rolname, rolinherit FROM pg_roles WHERE rolname = ANY(:n) "
               "ORDER BY 1", n=list(LOGINS.values()))
    assert rows == [(name, False) for name in sorted(LOGINS.values())]


def test_the_kernels_database_gets_the_configured_timeouts(dbs: dict[str, DatabaseManager]) -> None:
    kernel = dbs["canopy"].kernel
    with app_context("canopy"), kernel.db.connection() as conn:
        got = conn.execute(text("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")).one()
    assert tuple(got) == (f"{kernel.config.LOCK_TIMEOUT_MS // 1000}s", f"{kernel.config.STATEMENT_TIMEOUT_MS // 1000}s")
