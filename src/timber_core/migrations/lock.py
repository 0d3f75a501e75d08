"""One migration at a time per database, across processes.

:func:`migration_lock` is held around every schema change Timber makes (``timber
migrate``, ``timber downgrade``, ``initialize_timber``'s first-time schema): a
second process waits for the first, then re-reads the database and finds the work
done, instead of failing on a table or an ``alembic_version`` row the other just
made.

- SQLite: ``fcntl.flock`` on ``<database file>.migrate.lock``, next to the
  database. The OS drops the lock when its holder dies (even by SIGKILL), so a
  crash never leaves it stuck. The file stays (removing it would let two processes
  lock two different files); it holds the pid of the last holder, for the message.
  POSIX only. An in-memory database is seen by one process only: no lock.
- PostgreSQL: the session-level ``pg_advisory_lock(MIGRATION_LOCK_KEY)`` on a
  connection of its own, released when that connection ends (the server drops it
  when the client dies).

A waiter reports once, through ``on_wait``, which lock it waits for; after
``timeout`` seconds (``TIMBER_MIGRATION_LOCK_TIMEOUT``, default 300) it raises
:class:`MigrationLockTimeout`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from sqlalchemy import text

from .._flock import acquire, open_lock_file
from ..errors import TimberError

if TYPE_CHECKING:  # pragma: no cover
    from ..db import DatabaseManager

__all__ = ["migration_lock", "MigrationLockTimeout", "MIGRATION_LOCK_KEY", "lock_file"]

#: The PostgreSQL advisory lock key of migrations (b"timbrmig"); the vector drain uses another
#: (:data:`timber_core.vectors.runtime.ADVISORY_LOCK_KEY`, b"timbrvec").
MIGRATION_LOCK_KEY: Final = 0x74696D62726D6967

#: How often a waiter tries the lock again.
_POLL_S: Final = 0.05


class MigrationLockTimeout(TimberError):
    """Another process held the migration lock for longer than ``TIMBER_MIGRATION_LOCK_TIMEOUT``."""


def lock_file(db: DatabaseManager) -> str | None:
    """Return the lock file of a SQLite database file (None for PostgreSQL or an in-memory database)."""
    path = db.url.database if db.dialect == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.abspath(path) + ".migrate.lock"


@contextlib.contextmanager
def migration_lock(db: DatabaseManager, *, timeout: float, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold ``db``'s migration lock for the block; wait at most ``timeout`` seconds for it.

    Call ``on_wait(message)`` once if another process holds it. Raise
    MigrationLockTimeout (one line: the database, the lock, the fix) when it is not
    free in time. Not reentrant: a process holding it must not ask again.
    """
    if db.dialect == "postgresql":
        with _advisory_lock(db, timeout, on_wait):
            yield
        return
    path = lock_file(db)
    if path is None:
        yield
        return
    with _file_lock(db, path, timeout, on_wait):
        yield


def _waiting(db: DatabaseManager, lock: str, timeout: float) -> str:
    return f"waiting for another migration of {db.display_url} to finish ({lock}); giving up after {timeout:g} s"


def _gave_up(db: DatabaseManager, lock: str, timeout: float) -> MigrationLockTimeout:
    return MigrationLockTimeout(
        f"gave up after {timeout:g} s waiting for another migration of {db.display_url} ({lock}): "
        f"let it finish and run this again, or raise TIMBER_MIGRATION_LOCK_TIMEOUT (seconds)"
    )


@contextlib.contextmanager
def _file_lock(db: DatabaseManager, path: str, timeout: float, on_wait: Callable[[str], None]) -> Iterator[None]:
    try:
        fd = open_lock_file(path)
    except OSError as exc:
        raise TimberError(
            f"cannot open the migration lock file {path} ({exc.strerror}): the directory of "
            f"{db.display_url} must be writable by this process"
        ) from None
    try:
        if not acquire(fd, deadline=0.0):  # held elsewhere: say once what we wait for, then wait
            lock = _describe_file(fd, path)
            on_wait(_waiting(db, lock, timeout))
            if not acquire(fd, deadline=time.monotonic() + timeout):
                raise _gave_up(db, lock, timeout)
        # One fixed-width write, no truncate: a waiter never reads the file empty in between.
        os.pwrite(fd, f"{os.getpid():<15}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _describe_file(fd: int, path: str) -> str:
    """Name the lock file and, when it says, the pid holding it.

    A holder writes its pid right after taking the lock: a new file read in between is
    empty, so read again for a moment before naming no pid.
    """
    deadline = time.monotonic() + 0.5
    while True:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if holder.isdigit() or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    return f"lock {path}, held by pid {holder}" if holder.isdigit() else f"lock {path}"


@contextlib.contextmanager
def _advisory_lock(db: DatabaseManager, timeout: float, on_wait: Callable[[str], None]) -> Iterator[None]:
    from ..db import NO_CONTEXT

    lock = f"PostgreSQL advisory lock {MIGRATION_LOCK_KEY}"
    conn = db.engine.connect()
    try:
        # Autocommit: a waiter must not sit in an open transaction; the lock is session-level anyway.
        conn = conn.execution_options(isolation_level="AUTOCOMMIT", **{NO_CONTEXT: True})
        try_lock = text("SELECT pg_try_advisory_lock(:k)")
        deadline = None
        while not conn.execute(try_lock, {"k": MIGRATION_LOCK_KEY}).scalar():
            if deadline is None:
                deadline = time.monotonic() + timeout
                on_wait(_waiting(db, lock, timeout))
            elif time.monotonic() >= deadline:
                raise _gave_up(db, lock, timeout)
            time.sleep(_POLL_S)
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            except Exception:
                # It may still hold the lock: never pool it. Closing it releases the lock.
                conn.invalidate()
    finally:
        conn.close()
