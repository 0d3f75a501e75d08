"""One transaction for a whole migration, so that a crash leaves the database as it was.

PostgreSQL has transactional DDL: the kernel's admin connection, in a transaction,
is all it takes (and what Alembic then runs in, as an external transaction).

SQLite has transactional DDL too, but Python's ``sqlite3`` driver does not open a
transaction before ``CREATE``/``ALTER``/``DROP``, so each DDL statement commits on
its own: a migration killed halfway left its first tables with no
``alembic_version`` row, and the next run failed on them. Here the migration gets a
connection of its own on which the driver's transaction handling is off
(``isolation_level = None``) and SQLAlchemy's ``begin`` sends ``BEGIN IMMEDIATE``
itself (SQLAlchemy's documented recipe for pysqlite), so every statement, DDL
included, is inside one transaction that commits at the end. ``IMMEDIATE`` takes
the write lock at once (waiting up to the kernel's busy timeout for a writer), so
the migration never fails later upgrading a read lock. The kernel's engine uses the
same recipe (``timber_core.db``); a separate engine keeps the migration's one
transaction apart from the pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, pool

if TYPE_CHECKING:  # pragma: no cover
    from ..db import DatabaseManager

__all__ = ["migration_connection"]


@contextlib.contextmanager
def migration_connection(db: DatabaseManager) -> Iterator[Any]:
    """Yield a connection without app context, in one transaction covering everything run on it.

    Commit when the block ends, roll back when it raises; a process killed inside
    the block changes nothing. An in-memory SQLite database (one process only, gone
    with it) uses the kernel's engine, whose connection is the database.
    """
    from .lock import lock_file

    if db.dialect != "sqlite" or lock_file(db) is None:
        with db.admin_connection() as conn:
            yield conn
        return
    from ..db import _IMMEDIATE, NO_CONTEXT, _driver_transactions_off, _sqlite_begin, _sqlite_pragmas

    engine = create_engine(db.url, poolclass=pool.NullPool, echo=db.engine.echo)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "connect", _driver_transactions_off)
    event.listen(engine, "begin", _sqlite_begin)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{NO_CONTEXT: True, _IMMEDIATE: True})
            with conn.begin():
                yield conn
    finally:
        engine.dispose()
