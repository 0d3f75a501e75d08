"""The shared services' statements run under SQLAlchemy Core (``DatabaseManager._run_kernel_statement``).

``create_session`` and ``get_user_sessions`` send their statement, compiled once, with the
per-transaction context in one message on the pooled psycopg connection, and build their rows
from the driver's tuples. These tests hold that path to what the Core path guarantees: the same
rows, row-level security still deciding what is seen and written, nothing left on the pooled
connection, SQLAlchemy's errors, and a lost connection reported and recovered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import event, insert, text
from sqlalchemy.engine import URL

import timber_core
from timber_core import app_context, platform_context
from timber_core.context import user_context
from timber_core.db import NO_CONTEXT, DatabaseManager
from timber_core.errors import ConfigurationError
from timber_core.services.persistence import SessionService, _now

from .conftest import admin_url, login_url
from .test_rls import ALICE, BOB, dbs, ids, run  # noqa: F401  (dbs: the module's fixture, seeded rows)


@pytest.fixture
def canopy(dbs: dict[str, DatabaseManager], migrated: URL) -> Iterator[DatabaseManager]:
    """Canopy's login with a pool of exactly one connection: every call reuses the previous one's."""
    db = DatabaseManager(login_url(migrated, "canopy"), pool_size=1, max_overflow=0)
    db.kernel = timber_core.get_kernel()
    yield db
    db.dispose()


def core_rows(db: DatabaseManager, statement: Any, params: dict[str, Any]) -> list[Any]:
    """``statement``'s rows through SQLAlchemy Core (connection(): BEGIN, context, statement, COMMIT)."""
    with db.connection() as conn:
        return conn.execute(statement, params).all()


def test_get_user_sessions_returns_the_rows_and_keys_core_returns(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    table = canopy.kernel.models["Session"].__table__  # type: ignore[union-attr]
    with app_context("canopy"):
        rows = service.get_user_sessions(ALICE)
        with user_context(ALICE):
            expected = core_rows(canopy, service._user_sessions_stmt(("paper_trading", "trading"), False),
                                 {"user_id": ALICE})
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    assert sorted(r.id for r in rows) == ["s-alice-paper", "s-alice-trading"]
    assert [r._fields for r in rows] == [r._fields for r in expected]
    first = rows[0]
    assert (first.metadata_, first._mapping["metadata"], first._mapping[table.c.metadata_], first._mapping["metadata_"]) \
        == (expected[0].metadata, expected[0].metadata, expected[0].metadata, expected[0].metadata)


def test_get_user_sessions_with_a_limit_returns_the_newest(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    with app_context("canopy"):
        every = service.get_user_sessions(ALICE)
        first = service.get_user_sessions(ALICE, limit=1)
    assert [r.id for r in first] == [every[0].id]


def test_create_session_writes_the_row_for_the_user(canopy: DatabaseManager, dbs: dict[str, DatabaseManager]) -> None:
    service = SessionService(db=canopy)
    with app_context("canopy"):
        new = service.create_session(ALICE, "trading", {"note": "it's 100% ; DROP TABLE x"})
    try:
        got = run(dbs["platform"], "platform", None,
                  "SELECT user_id, session_type, app_name, status, metadata FROM sessions WHERE id = :i", i=new)
        assert [tuple(r) for r in got] == [(ALICE, "trading", "canopy", "active",
                                           {"note": "it's 100% ; DROP TABLE x", "app": "canopy",
                                            "created_by_app": "canopy"})]
    finally:
        run(dbs["platform"], "platform", None, "DELETE FROM sessions WHERE id = :i", i=new)


def test_rls_still_hides_another_apps_types_from_the_statement(canopy: DatabaseManager) -> None:
    # The statement asks for Grove's type too: the database, not the service, leaves it out.
    service = SessionService(db=canopy)
    stmt = service._user_sessions_stmt(("research", "trading"), False)
    with app_context("canopy"), user_context(ALICE):
        rows = canopy._run_kernel_statement(stmt, {"user_id": ALICE})
    assert ids(rows) == ["s-alice-trading"]


def test_rls_still_hides_another_users_rows_from_the_statement(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    stmt = service._user_sessions_stmt(("paper_trading", "trading"), False)
    with app_context("canopy"), user_context(ALICE):
        rows = canopy._run_kernel_statement(stmt, {"user_id": BOB})
    assert rows == []


def test_rls_still_refuses_writing_another_users_row(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    row = service._row(BOB, "trading", None, "create_session", _now())
    stmt = service._kernel_stmt(("insert",), insert)
    with app_context("canopy"), user_context(ALICE), pytest.raises(sqlalchemy.exc.ProgrammingError) as err:
        canopy._run_kernel_statement(stmt, row, tuple(row))
    assert (err.value.orig.sqlstate, str(err.value.orig).splitlines()[0]) == (  # type: ignore[union-attr]
        "42501", 'new row violates row-level security policy for table "sessions"')


def _bare_state(db: DatabaseManager) -> tuple[Any, ...]:
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{NO_CONTEXT: True})
        state = conn.execute(text("SELECT pg_backend_pid(), current_user, current_setting('timber.app', true), "
                                  "current_setting('timber.user_id', true)")).one()
        return (*state, conn.connection.driver_connection.autocommit)


def test_the_pooled_connection_comes_back_without_role_context_or_autocommit(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    pid = _bare_state(canopy)[0]
    with app_context("canopy"):
        service.get_user_sessions(ALICE)
    assert _bare_state(canopy) == (pid, "timber_test_canopy", "", "", False)


def test_a_failed_statement_raises_sqlalchemys_error_and_leaves_the_connection_clean(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    pid = _bare_state(canopy)[0]
    with app_context("canopy"), pytest.raises(sqlalchemy.exc.IntegrityError) as err:
        service.create_session("c" * 36, "trading")  # no such user: the foreign key refuses it
    assert err.value.orig.sqlstate == "23503"  # type: ignore[union-attr]
    assert "INSERT INTO sessions" in str(err.value)
    assert _bare_state(canopy) == (pid, "timber_test_canopy", "", "", False)
    with app_context("canopy"):
        assert sorted(r.id for r in service.get_user_sessions(ALICE)) == ["s-alice-paper", "s-alice-trading"]


def test_a_login_that_may_not_act_as_the_role_is_told_the_grant(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    with app_context("grove"), pytest.raises(ConfigurationError) as err:
        service.get_user_sessions(ALICE)
    assert str(err.value) == (
        "app context 'grove': the database login 'timber_test_canopy' cannot act as role 'timber_grove' "
        "(permission denied to set role \"timber_grove\"). Run the migrations (timber migrate) so the role "
        "exists, then, as an administrator: GRANT timber_grove TO timber_test_canopy;"
    )


def test_the_statement_survives_app_code_deallocating_it(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    with app_context("canopy"):
        first = [r.id for r in service.get_user_sessions(ALICE)]
        with user_context(ALICE), canopy.connection() as conn:
            conn.execute(text("DEALLOCATE ALL"))
        again = [r.id for r in service.get_user_sessions(ALICE)]
    assert again == first and sorted(first) == ["s-alice-paper", "s-alice-trading"]


def test_a_statement_listener_still_sees_the_services_statements(canopy: DatabaseManager) -> None:
    seen: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(canopy.engine, "before_cursor_execute", spy)
    service = SessionService(db=canopy)
    with app_context("canopy"):
        rows = service.get_user_sessions(ALICE)
    assert (seen, ids(rows)) == (["SELECT"], ["s-alice-paper", "s-alice-trading"])


def test_under_echo_the_services_statements_are_logged(migrated: URL, dbs: dict[str, DatabaseManager],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    db = DatabaseManager(login_url(migrated, "canopy"), pool_size=1, max_overflow=0, echo=True)
    db.kernel = timber_core.get_kernel()
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"), app_context("canopy"):
            rows = SessionService(db=db).get_user_sessions(ALICE)
    finally:
        db.dispose()
    logged = [r.getMessage().split()[0] for r in caplog.records if "FROM sessions" in r.getMessage()]
    assert (logged, ids(rows)) == (["SELECT"], ["s-alice-paper", "s-alice-trading"])


def test_a_lost_connection_is_reported_and_the_next_call_reconnects(canopy: DatabaseManager) -> None:
    from sqlalchemy import create_engine

    service = SessionService(db=canopy)
    pid = _bare_state(canopy)[0]
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p, 10000)"), {"p": pid})
    admin.dispose()
    with app_context("canopy"), pytest.raises(sqlalchemy.exc.OperationalError) as err:
        service.get_user_sessions(ALICE)
    assert err.value.connection_invalidated
    with app_context("canopy"):
        assert ids(service.get_user_sessions(ALICE)) == ["s-alice-paper", "s-alice-trading"]
    assert _bare_state(canopy)[0] != pid


def test_inside_a_session_scope_the_calls_join_its_transaction(canopy: DatabaseManager) -> None:
    service = SessionService(db=canopy)
    with app_context("canopy"), user_context(ALICE):
        with pytest.raises(RuntimeError), canopy.session_scope():
            new = service.create_session(ALICE, "trading")
            inside = [r.id for r in service.get_user_sessions(ALICE) if r.id == new]
            raise RuntimeError("roll back")
        after = [r.id for r in service.get_user_sessions(ALICE) if r.id == new]
    assert (inside, after) == ([new], [])


def test_the_platform_context_reads_every_type_of_the_user(dbs: dict[str, DatabaseManager], migrated: URL) -> None:
    db = DatabaseManager(login_url(migrated, "platform"), pool_size=1, max_overflow=0)
    db.kernel = timber_core.get_kernel()
    try:
        with platform_context():
            rows = SessionService(db=db).get_user_sessions(ALICE)
    finally:
        db.dispose()
    assert ids(rows) == ["s-alice-paper", "s-alice-research", "s-alice-trading"]
