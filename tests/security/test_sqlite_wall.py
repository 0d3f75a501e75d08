"""The SQLite wall: raw SQL on Timber's own connections cannot cross from one app into another's data.

Every statement here is hand-written SQL (or Core on the table) sent on a connection Timber made,
in Canopy's context unless said otherwise, against a real SQLite file that holds Grove's rows.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from timber_core import app_context, platform_context, user_context
from timber_core.db import NO_CONTEXT
from timber_core.errors import IsolationError
from timber_core.services.persistence import session_service, user_service


@pytest.fixture
def seeded(wall_sqlite: Any) -> dict[str, str]:
    """Alice with a Canopy session, a Grove session and a Grove research session; their ids."""
    alice = user_service.create_user("alice@example.com", "alice")
    with user_context(alice):
        mine = session_service.create_session(alice, "trading")
        with app_context("grove"):
            theirs = session_service.create_session(alice, "research")
    with platform_context(), wall_sqlite.db.connection() as conn:
        conn.execute(text("INSERT INTO research_sessions (id, user_id, session_type, notes, created_at, updated_at) "
                          "VALUES ('rs-1', :u, 'research', 'grove secret', '2026-01-01', '2026-01-01')"), {"u": alice})
    return {"alice": alice, "mine": mine, "theirs": theirs}


def run(kernel: Any, sql: str, **params: Any) -> Any:
    """Run ``sql`` on Timber's connection in the current context; return its rows or its rowcount."""
    with kernel.db.connection() as conn:
        result = conn.execute(text(sql), params)
        return sorted(tuple(r) for r in result.all()) if result.returns_rows else result.rowcount


def refused(kernel: Any, sql: str, **params: Any) -> str:
    """Run ``sql``, which must be refused by the wall; return the IsolationError's message."""
    with pytest.raises(IsolationError) as err:
        run(kernel, sql, **params)
    return str(err.value)


def private(verb: str, table: str = "research_sessions") -> str:
    return (f"SQLite wall: app 'canopy' may not {verb} table {table!r}: it is private to app 'grove'. Reach app "
            f"grove's data through its services, or run cross-app work in timber_core.platform_context()")


def status_of(kernel: Any, session_id: str) -> Any:
    with platform_context():
        return run(kernel, "SELECT status, session_type FROM sessions WHERE id = :i", i=session_id)


def test_reading_another_apps_private_table_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert refused(wall_sqlite, "SELECT notes FROM research_sessions") == private("read")


def test_counting_another_apps_private_table_through_a_subquery_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert refused(wall_sqlite, "SELECT (SELECT count(*) FROM main.research_sessions WHERE notes LIKE 'grove%')") == (
        private("read"))


def test_inserting_into_another_apps_private_table_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert refused(wall_sqlite, "INSERT INTO research_reports (id, user_id, title, is_published, created_at, "
                                "updated_at) VALUES ('r', :u, 't', 0, '2026-01-01', '2026-01-01')",
                   u=seeded["alice"]) == private("write", "research_reports")


def test_updating_another_apps_private_table_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert refused(wall_sqlite, "UPDATE research_sessions SET notes = 'overwritten'") == private("write")


def test_deleting_from_another_apps_private_table_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert refused(wall_sqlite, "DELETE FROM research_sessions") == private("write")


def test_core_select_on_another_apps_table_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    table = wall_sqlite.models["ResearchSession"].__table__
    with pytest.raises(IsolationError, match=r"^app 'canopy' may not query model 'ResearchSession'"):
        with wall_sqlite.db.connection() as conn:
            conn.execute(select(table.c.notes)).all()


def test_the_engine_itself_is_walled_too(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    with pytest.raises(IsolationError) as err:
        with wall_sqlite.db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT notes FROM research_sessions").all()
    assert str(err.value) == private("read")


def test_a_raw_dbapi_connection_is_walled_too(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    import sqlite3

    raw = wall_sqlite.db.engine.raw_connection()
    try:
        with pytest.raises(sqlite3.DatabaseError, match=r"^access to research_sessions.notes is prohibited$"):
            raw.cursor().execute("SELECT notes FROM research_sessions")
    finally:
        raw.close()


def test_own_private_table_is_open(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    with app_context("grove"):
        assert run(wall_sqlite, "SELECT id, notes FROM research_sessions") == [("rs-1", "grove secret")]


def test_raw_select_on_sessions_sees_only_own_types(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert run(wall_sqlite, "SELECT id FROM sessions") == [(seeded["mine"],)]
    assert run(wall_sqlite, "SELECT count(*) FROM sessions WHERE session_type = 'research'") == [(0,)]


def test_qualified_read_of_main_sessions_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert refused(wall_sqlite, "SELECT id FROM main.sessions") == (
        "SQLite wall: app 'canopy' may read table 'sessions' only through Timber's filtered view: write "
        "'sessions', not 'main.sessions', and no subquery or join on main.sessions in a write"
    )


def test_copying_another_apps_session_into_an_own_one_through_a_subquery_is_refused(
    wall_sqlite: Any, seeded: dict[str, str]
) -> None:
    message = refused(wall_sqlite, "UPDATE main.sessions SET metadata = (SELECT metadata FROM main.sessions s2 "
                                   "WHERE s2.id = :t) WHERE id = :m", t=seeded["theirs"], m=seeded["mine"])
    assert message.startswith("SQLite wall: app 'canopy' may read table 'sessions' only through")


def test_raw_update_of_another_apps_session_changes_nothing(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert run(wall_sqlite, "UPDATE sessions SET status = 'hijacked' WHERE id = :t", t=seeded["theirs"]) == 0
    assert run(wall_sqlite, "UPDATE main.sessions SET status = 'hijacked'") == 1  # its own row only
    assert status_of(wall_sqlite, seeded["theirs"]) == [("active", "research")]


def test_raw_update_of_an_own_session_works(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert run(wall_sqlite, "UPDATE sessions SET status = 'ended' WHERE id = :m", m=seeded["mine"]) == 1
    assert status_of(wall_sqlite, seeded["mine"]) == [("ended", "trading")]


def test_raw_delete_of_another_apps_session_deletes_nothing(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert run(wall_sqlite, "DELETE FROM sessions WHERE id = :t", t=seeded["theirs"]) == 0
    assert status_of(wall_sqlite, seeded["theirs"]) == [("active", "research")]


SESSION_OF_TYPE = ("INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                   "VALUES (:i, :u, :t, 'x', 'active', '2026-01-01', '2026-01-01')")
WRONG_TYPE = ("SQLite wall: app 'canopy' may write only sessions of its own types (paper_trading, trading) "
              "into table 'sessions'")


def test_raw_insert_of_another_apps_session_type_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert refused(wall_sqlite, SESSION_OF_TYPE, i="new", u=seeded["alice"], t="research") == WRONG_TYPE


def test_raw_insert_of_an_own_session_type_works(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert run(wall_sqlite, SESSION_OF_TYPE, i="new", u=seeded["alice"], t="paper_trading") == 1
    assert status_of(wall_sqlite, "new") == [("active", "paper_trading")]


def test_raw_update_moving_an_own_session_into_another_apps_type_is_refused(
    wall_sqlite: Any, seeded: dict[str, str]
) -> None:
    assert refused(wall_sqlite, "UPDATE sessions SET session_type = 'research' WHERE id = :m",
                   m=seeded["mine"]) == WRONG_TYPE
    assert status_of(wall_sqlite, seeded["mine"]) == [("active", "trading")]


def test_insert_or_replace_over_another_apps_session_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    with pytest.raises(Exception, match="UNIQUE constraint failed: sessions.id"):
        run(wall_sqlite, SESSION_OF_TYPE.replace("INSERT", "INSERT OR REPLACE"), i=seeded["theirs"],
            u=seeded["alice"], t="trading")
    assert status_of(wall_sqlite, seeded["theirs"]) == [("active", "research")]


def test_raw_upsert_over_another_apps_session_changes_nothing(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert run(wall_sqlite, SESSION_OF_TYPE + " ON CONFLICT(id) DO UPDATE SET status = 'hijacked'",
               i=seeded["theirs"], u=seeded["alice"], t="trading") == 0
    assert status_of(wall_sqlite, seeded["theirs"]) == [("active", "research")]


@pytest.mark.parametrize(("sql", "message"), [
    ("ATTACH DATABASE ':memory:' AS other", "SQLite wall: app 'canopy' may not ATTACH or DETACH databases"),
    ("SELECT sql FROM sqlite_stmt", "SQLite wall: app 'canopy' may not read table 'sqlite_stmt'"),
    ("SELECT * FROM dbstat", "SQLite wall: app 'canopy' may not read table 'dbstat'"),
    ("SELECT fts3_tokenizer('simple')", "SQLite wall: app 'canopy' may not call fts3_tokenizer()"),
    ("PRAGMA foreign_keys = OFF", "SQLite wall: app 'canopy' may not set PRAGMA foreign_keys"),
    ("PRAGMA writable_schema = ON", "SQLite wall: app 'canopy' may not set PRAGMA writable_schema"),
    ("SELECT load_extension('/tmp/x')", "SQLite wall: app 'canopy' may not call load_extension()"),
    ("DROP TABLE orders", "SQLite wall: app 'canopy' may not drop or alter tables, indexes, views or triggers"),
    ("ALTER TABLE orders ADD COLUMN x TEXT",
     "SQLite wall: app 'canopy' may not drop or alter tables, indexes, views or triggers"),
    ("DROP VIEW temp.sessions", "SQLite wall: app 'canopy' may not drop or alter tables, indexes, views or triggers"),
    ("CREATE TEMP TABLE research_sessions (x)",
     "SQLite wall: app 'canopy' may not create temporary tables, views, triggers or virtual tables"),
    ("CREATE TRIGGER t AFTER INSERT ON research_sessions BEGIN SELECT 1; END",
     "SQLite wall: app 'canopy' may not create temporary tables, views, triggers or virtual tables"),
])
def test_dangerous_statements_are_refused(wall_sqlite: Any, seeded: dict[str, str], sql: str, message: str) -> None:
    assert refused(wall_sqlite, sql) == message


def test_vacuum_into_a_copy_is_refused(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    # Every statement on Timber's connections runs in a transaction (BEGIN IMMEDIATE), where
    # SQLite itself refuses VACUUM; outside one, the wall's authorizer refuses it as an ATTACH.
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError) as err:
        run(wall_sqlite, "VACUUM INTO '/nonexistent/copy.db'")
    assert str(err.value.orig) == "cannot VACUUM from within a transaction"


def test_reading_pragmas_and_the_schema_is_allowed(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    assert run(wall_sqlite, "PRAGMA foreign_keys") == [(1,)]
    assert [r[1] for r in run(wall_sqlite, "PRAGMA table_info(orders)")][:2] == ["id", "user_id"]


def test_platform_context_keeps_full_access(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    with platform_context():
        assert run(wall_sqlite, "SELECT notes FROM research_sessions") == [("grove secret",)]
        assert run(wall_sqlite, "SELECT session_type FROM main.sessions") == [("research",), ("trading",)]
        assert run(wall_sqlite, "UPDATE sessions SET status = 'seen'") == 2


def test_a_statement_allowed_in_the_platform_context_is_refused_afterwards_on_the_same_connection(
    wall_sqlite: Any, seeded: dict[str, str]
) -> None:
    sql = "SELECT notes FROM research_sessions"
    for _ in range(2):
        with platform_context():
            assert run(wall_sqlite, sql) == [("grove secret",)]
        assert refused(wall_sqlite, sql) == private("read")
        assert run(wall_sqlite, "SELECT id FROM sessions") == [(seeded["mine"],)]
    assert wall_sqlite.db.engine.pool.checkedin() == 1  # one pooled connection served every context


def test_an_admin_connection_keeps_full_access(wall_sqlite: Any, seeded: dict[str, str]) -> None:
    with wall_sqlite.db.admin_connection() as conn:
        assert conn.execute(text("SELECT count(*) FROM main.sessions")).scalar() == 2
        assert conn.get_execution_options()[NO_CONTEXT] is True


def test_a_connection_walled_before_sessions_existed_refuses_to_write_it(tmp_path: Any) -> None:
    import timber_core

    kernel = timber_core.initialize_timber("canopy", database_url=f"sqlite:///{tmp_path}/late.db", create_tables=False)
    try:
        with kernel.db.connection() as conn:  # walled for Canopy while there is no table to guard
            conn.execute(text("SELECT 1"))
        other = create_engine(kernel.db.url)  # as a migration run by another process would
        kernel.metadata.create_all(other)
        other.dispose()
        with pytest.raises(IsolationError) as err:
            run(kernel, "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                        "VALUES ('s', 'u', 'trading', 'canopy', 'active', '2026-01-01', '2026-01-01')")
        assert str(err.value) == (
            "SQLite wall: app 'canopy' may not insert table 'sessions' on a connection opened before it existed; "
            "dispose of the engine's connections (kernel.db.dispose()) and retry"
        )
        kernel.db.dispose()
        with platform_context():
            run(kernel, "INSERT INTO users (id, email, username, created_at, updated_at) "
                        "VALUES ('u', 'u', 'u', '2026-01-01', '2026-01-01')")
        assert run(kernel, "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                           "VALUES ('s', 'u', 'trading', 'canopy', 'active', '2026-01-01', '2026-01-01')") == 1
    finally:
        kernel.close()


@pytest.mark.parametrize("table", ["alembic_version", "timber_revisions"])
def test_writing_the_migration_bookkeeping_is_refused(wall_sqlite: Any, table: str) -> None:
    assert refused(wall_sqlite, f"DELETE FROM {table}") == (
        f"SQLite wall: app 'canopy' may not delete table {table!r}: it is the kernel's")


def test_reading_password_hashes_is_refused(wall_sqlite: Any) -> None:
    assert refused(wall_sqlite, "SELECT password_hash FROM user_credentials") == (
        "SQLite wall: app 'canopy' may not read table 'user_credentials': password hashes are read only by the "
        "kernel's auth code (timber_core.auth), in platform_context()")


def test_writing_password_hashes_is_refused(wall_sqlite: Any) -> None:
    assert refused(wall_sqlite, "DELETE FROM user_credentials") == (
        "SQLite wall: app 'canopy' may not delete table 'user_credentials': password hashes are written only by "
        "the kernel's auth code (timber_core.auth), in platform_context()")
