"""Real failures and real counts for the one-transaction tests: triggers, raw-SQL row counts, COMMITs.

Everything here runs as the login of the database URL (``admin_connection()``): on PostgreSQL
that is the test server's superuser, which owns the scratch database and is not bound by RLS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text


def fail_inserts_into(kernel: Any, table: str, message: str = "boom") -> None:
    """Make every INSERT into ``table`` fail in the database with ``message`` (a trigger, not a mock)."""
    with kernel.db.admin_connection() as conn:
        if kernel.db.dialect == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER timber_test_fail_{table} BEFORE INSERT ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE FUNCTION timber_test_fail_{table}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER timber_test_fail_{table} BEFORE INSERT ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION timber_test_fail_{table}()"
            )


def database_error(exc: BaseException) -> tuple[str, str]:
    """(SQLAlchemy error class, first line of the driver's message) of a failed statement."""
    orig = getattr(exc, "orig", None)
    return type(exc).__name__, str(orig).splitlines()[0] if orig is not None else ""


def count_rows(kernel: Any, table: str, user_id: str) -> int:
    """Rows of ``table`` belonging to ``user_id``, counted with raw SQL past every app wall."""
    with kernel.db.admin_connection() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE user_id = :u"), {"u": user_id}).scalar_one())


@contextmanager
def counting_commits(kernel: Any) -> Iterator[list[int]]:
    """Count the COMMITs the engine sends while the block runs; yields a one-item list holding the count."""
    seen = [0]

    def on_commit(_conn: Any) -> None:
        seen[0] += 1

    event.listen(kernel.db.engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(kernel.db.engine, "commit", on_commit)
