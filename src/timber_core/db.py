"""Engines, pools and ``session_scope()``: the kernel's one way into the database.

SQLite (the embedded default) gets foreign keys enforced and WAL journaling;
PostgreSQL goes through psycopg 3. Every ORM session is made by one
``sessionmaker`` on which :mod:`timber_core.isolation` installs its guards.

On PostgreSQL every transaction (ORM session or Core connection) starts with one
statement, sent from the engine's ``begin`` event::

    SELECT set_config('role', 'timber_<app>', true),
           set_config('timber.app', '<app>', true),
           set_config('timber.user_id', '<user id or empty>', true),
           set_config('search_path', 'public, pg_temp', true),
           set_config('lock_timeout', '<TIMBER_LOCK_TIMEOUT_MS>', true),
           set_config('statement_timeout', '<TIMBER_STATEMENT_TIMEOUT_MS>', true)

built from :func:`~timber_core.context.current_app` and
:func:`~timber_core.context.current_user`. All are transaction-local
(``true``), so they end with the transaction: a pooled connection returns to the
pool as the login role with no app and no user, whatever the previous user did; and
whatever session-level state app code left on the connection (``SET search_path``,
``SET timber.user_id``, ``SET row_security = off``, a temporary table named like a shared
one), the next transaction resets it (``RESET ALL``, sent in the same message as ``BEGIN``
and the context statement: no extra round trip) and sets the context again. ``pg_temp``
last in the search path means unqualified names find ``public``'s tables first
(PostgreSQL never looks up functions or operators in ``pg_temp``). The timeouts bound
what a lock held by another app's transaction can cost this one: it fails with SQLSTATE
55P03 after ``lock_timeout`` instead of hanging (0 turns either timeout off).
The login of ``DATABASE_URL`` must be a member of the app roles it switches to
(``GRANT timber_canopy TO canopy_web``); it should itself be NOINHERIT and own
nothing. Session-level ``SET``/``SET ROLE`` is never used: it would outlive the
transaction and follow the connection to its next checkout.

A service call that is one statement can go further (:meth:`DatabaseManager.one_statement`):
outside a unit of work, its statement travels in the same message as the context,
``RESET ALL; SELECT set_config(...); <statement>``, one simple-protocol query that PostgreSQL
runs as one implicit transaction: one round trip instead of three (context, statement,
``COMMIT``). The values of both are bound client-side by psycopg (``ClientCursor.mogrify``,
literals quoted by the driver's adapters, never by string formatting of Timber's), and the
settings end with that implicit transaction as with any other. A Core statement is prepared
on the connection the first time (``PREPARE timber_ps_<n> AS ...`` in the same message) and
sent as ``EXECUTE timber_ps_<n>(<values>)`` after.

``session_scope()`` is the unit of work, re-entrant per context (a contextvar): a
``session_scope()`` or ``connection()`` entered inside one, on the same database, thread,
app and user, joins it (same session, same transaction) and does not commit; only the
outermost scope commits or rolls back. Under another app or user it is refused
(IsolationError): a transaction's role and RLS user are set once, when it begins.

Failures to connect (refused, timed out after ``TIMBER_CONNECT_TIMEOUT`` seconds, login
or database rejected, an SQLite file that cannot be opened) raise
:class:`~timber_core.errors.DatabaseUnavailableError`, one line naming the URL (password
hidden), the host and port or file, and the fix. A connection lost while in use (the
server restarted, the backend was terminated) raises SQLAlchemy's ``OperationalError`` as
usual; Timber logs one warning line for it (with the traceback only under
``TIMBER_DEBUG``) and discards every pooled connection of that generation, so the next
checkout reconnects instead of failing once per pooled connection. ``pool_pre_ping`` stays
off: it would cost a round trip on every checkout to save one failure per outage.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import itertools
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import TextClause

from ._roles import context_role
from .config import debug_enabled
from .context import current_app, current_user
from .errors import ConfigurationError, DatabaseUnavailableError, IsolationError, NotInitializedError, TimberError

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

__all__ = ["DatabaseManager", "normalize_url", "embedded_url", "NO_CONTEXT", "CONTEXT_SQL"]

#: Execution option that skips the per-transaction context (migrations, ``timber doctor``):
#: such a connection runs as the login role of the URL itself.
NO_CONTEXT = "timber_no_context"

#: How long a SQLite statement waits for another process's write lock (ms).
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option (SQLite): this connection's transactions begin IMMEDIATE (units of work).
_IMMEDIATE = "timber_sqlite_immediate"

#: The one statement that opens every PostgreSQL transaction in an app or platform context.
CONTEXT_SQL = (
    "SELECT set_config('role', %s, true), set_config('timber.app', %s, true), "
    "set_config('timber.user_id', %s, true), set_config('search_path', 'public, pg_temp', true), "
    "set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)"
)
#: What an idle connection is sent: BEGIN, RESET ALL (every setting app code may have changed at
#: session level on this pooled connection back to the login's defaults, for this transaction;
#: it rolls back with it, but every transaction does it again), then the context.
_BEGIN_CONTEXT = ("BEGIN; RESET ALL; " + CONTEXT_SQL).encode()
#: Engine execution option holding (lock_timeout, statement_timeout) in milliseconds, as text.
_TIMEOUTS = "timber_timeouts"
#: Execution option (PostgreSQL): the connection runs one statement, sent with its context (autocommit).
_ONE_STATEMENT = "timber_one_statement"
#: Key in a pooled connection's ``info``: the context values the next one-statement execution sends.
_ARMED = "timber_context_armed"
#: Key in a pooled connection's ``info``: the psycopg ClientCursor that binds one-statement queries.
_BINDER = "timber_binder"

log = logging.getLogger("timber.db")


def embedded_url(home: str) -> str:
    """Return the URL of the embedded SQLite database under ``home`` (created if missing).

    Raise ConfigurationError naming ``TIMBER_HOME`` when it cannot be created or is read-only.
    """
    path = os.path.abspath(home)
    fix = "point TIMBER_HOME at a writable directory or set DATABASE_URL"
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"TIMBER_HOME {path} cannot be created ({exc.strerror or exc}): {fix}") from exc
    if not os.access(path, os.W_OK):
        raise ConfigurationError(f"TIMBER_HOME {path} is read-only: {fix}")
    return f"sqlite:///{os.path.join(path, 'timber.db')}"


def _reason(exc: BaseException) -> str:
    """The driver's reason in one line: ``Connection refused``, ``role "x" does not exist``...

    libpq prefixes it with where it tried (``connection to server at "h", port p failed: ``)
    and the server with its severity (``FATAL:  ``); hint lines start with a tab.
    """
    lines = [line for line in str(exc).splitlines() if line.strip() and not line.startswith("\t")]
    reason = lines[-1] if lines else type(exc).__name__
    reason = reason.rpartition(" failed: ")[2] if " failed: " in reason else reason
    return re.sub(r"^(?:FATAL|ERROR|PANIC):\s+", "", reason.strip()).strip()


#: Key in a pooled connection's ``info``: when it was opened (``time.monotonic()``).
_OPENED = "timber_opened"
#: Per engine: when a lost connection was last reported.
_lost_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _stamp_opened(_dbapi_connection: Any, record: Any) -> None:
    """``connect`` listener: remember when the connection was opened."""
    record.info[_OPENED] = time.monotonic()


def _connection_lost(engine: Any, info: Any, exc: BaseException) -> None:
    """Log a connection lost in use: one line per outage, the traceback only under TIMBER_DEBUG.

    A connection opened before the last reported loss belongs to that outage (the pool
    already discards it): it is not reported again.
    """
    if info is None or info.get(_OPENED, 0.0) <= _lost_at.get(engine, -1.0):
        return
    _lost_at[engine] = time.monotonic()
    log.warning(
        "timber: lost the connection to the database %s: %s; the pool's connections are discarded "
        "and reopened on next use", engine.url.render_as_string(hide_password=True), _reason(exc),
        exc_info=exc if debug_enabled() else None,
    )


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; plain ``postgresql://`` URLs get the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            f"database URL {str(url)!r} cannot be parsed ({exc}); use e.g. "
            f"postgresql://user@127.0.0.1:5432/db or sqlite:///path/timber.db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: Timber supports "
            f"sqlite and postgresql, not {parsed.get_backend_name()}"
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    """``connect`` (SQLite file): WAL journaling, so readers never block the writer (outside any transaction)."""
    dbapi_connection.execute("PRAGMA journal_mode=WAL")


def _driver_transactions_off(dbapi_connection: Any, _record: Any) -> None:
    """``connect`` (SQLite): the driver neither opens nor commits transactions; ``_sqlite_begin`` does.

    pysqlite otherwise opens transactions lazily, before the first write, and never
    before DDL: SQLAlchemy's documented recipe hands that to its ``begin`` event.
    """
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    """``begin`` (SQLite): ``BEGIN IMMEDIATE`` for units of work, plain ``BEGIN`` for admin reads.

    In WAL mode a deferred transaction that has read cannot become a writer once another
    process has committed: SQLite answers ``database is locked`` at once, without waiting
    (its snapshot is stale), and Timber's units of work read before they write. Taking
    the write lock when a unit of work begins (``session_scope()``, ``connection()``)
    makes every process wait its turn, up to :data:`SQLITE_BUSY_TIMEOUT_MS` (Django's
    ``transaction_mode="IMMEDIATE"``, Rails 8's default). The price: units of work of
    several processes run one at a time, so they must stay short, as Timber's are.
    ``admin_connection()`` (catalog reads) stays deferred and never waits for a writer.
    """
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")


def _context_values(options: Any) -> tuple[str, str, str, str, str]:
    """The values of CONTEXT_SQL for the caller's context: role, app, user, lock and statement timeouts.

    ``options``: the engine's execution options (the timeouts). Raise NotInitializedError when
    there is no app context.
    """
    try:
        app = current_app()
    except NotInitializedError as exc:
        raise NotInitializedError(
            f"a PostgreSQL transaction was opened without an app context, so Timber cannot choose "
            f"its role and row-level security would have nothing to go on: {exc}"
        ) from None
    user = current_user()
    lock_ms, statement_ms = options.get(_TIMEOUTS, ("5000", "30000"))
    return (context_role(app), app, "" if user is None else str(user), lock_ms, statement_ms)


def _set_transaction_context(conn: Any) -> None:
    """``begin`` listener (PostgreSQL): switch the transaction to the context's role, app and user.

    Raise NotInitializedError when there is no app context, and ConfigurationError
    when the login may not switch to the role, naming the grant that fixes it.
    """
    options = conn.get_execution_options()
    if options.get(NO_CONTEXT):
        return
    values = _context_values(options)
    role, app = values[0], values[1]
    if options.get(_ONE_STATEMENT):
        # Sent with the statement itself, by _execute_with_context.
        conn.info[_ARMED] = values
        return
    driver = conn.connection.driver_connection
    try:
        _send_context(driver, values)
    except Exception as exc:
        import psycopg

        if not isinstance(exc, psycopg.Error):
            raise
        if conn.dialect.is_disconnect(exc, driver, None):
            # SQLAlchemy's own disconnect handling does not cover the ``begin`` event: do what
            # it does (never roll back on the dead connection, which the pool's reset would
            # otherwise try and log with two tracebacks), and raise what it would raise.
            import sqlalchemy.exc

            _connection_lost(conn.engine, conn.info, exc)
            conn.engine.pool._invalidate(conn.connection, exc, _checkin=False)  # the others: reconnect on checkout
            conn.invalidate(exc)
            raise sqlalchemy.exc.DBAPIError.instance(
                CONTEXT_SQL, None, exc, psycopg.Error, connection_invalidated=True, dialect=conn.dialect
            ) from exc
        driver.rollback()
        raise _role_refused(conn.engine, app, role, exc) from None


def _role_refused(engine: Any, app: str, role: str, exc: BaseException) -> ConfigurationError:
    """The error for a login that may not switch to ``role``, naming the grant that fixes it."""
    login = engine.url.username or "the login of DATABASE_URL"
    return ConfigurationError(
        f"app context {app!r}: the database login {login!r} cannot act as role {role!r} "
        f"({str(exc).strip()}). Run the migrations (timber migrate) so the role exists, then, "
        f"as an administrator: GRANT {role} TO {login};"
    )


def _execute_with_context(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """``do_execute`` (PostgreSQL): send a one-statement connection's statement with its context.

    Other connections' statements are left to the driver (return False). On a connection of
    :meth:`DatabaseManager.one_statement` (autocommit), the context armed by its ``begin`` and the
    statement go as one simple query, ``RESET ALL; SELECT set_config(...); <statement>``, which
    PostgreSQL runs as one implicit transaction; the cursor is left on the statement's result.
    A compiled Core statement is prepared on the connection the first time (``PREPARE`` in the
    same message) and run with ``EXECUTE name(<values>)`` after: under row-level security,
    planning the statement anew costs more than the round trips saved.
    Raise TimberError for a second statement (it would run without any context) and for
    ``executemany``, ConfigurationError when the login may not switch to the context's role.
    """
    options = context.execution_options
    if not options.get(_ONE_STATEMENT) or options.get(NO_CONTEXT):
        return False  # a no-context connection's statement needs nothing before it
    conn = context.root_connection
    values = conn.info.pop(_ARMED, None)
    if values is None:
        raise TimberError(
            "one_statement(): this connection already ran its one statement (the context went with it): "
            "use DatabaseManager.connection() for a transaction of several statements"
        )
    import psycopg

    binder, prepared, head = _connection_state(conn.info, cursor.connection, values)
    compiled = getattr(context, "compiled", None)
    # Core statements only: raw text() may hold parameters whose type PostgreSQL cannot infer.
    raw = compiled is None or context.isddl or isinstance(compiled.statement, TextClause)
    form = None if raw else _numbered(statement)
    to_prepare = None
    if form is not None:
        sql, names = form
        to_prepare = (sql, _execute_of(names), tuple(parameters[n] for n in names))
    try:
        _send(cursor, binder, prepared, head, to_prepare, lambda: binder.mogrify(statement, parameters))
    except psycopg.errors.InsufficientPrivilege as exc:
        if str(exc).strip() == f'permission denied to set role "{values[0]}"':
            raise _role_refused(conn.engine, values[1], values[0], exc) from None
        raise
    return True


def _execute_of(names: tuple[str, ...]) -> str:
    """``EXECUTE {}(%s, ...)`` for a prepared statement of parameters ``names``: its name to fill in, then its values."""
    return "EXECUTE {}" if not names else "EXECUTE {}(" + ", ".join(["%s"] * len(names)) + ")"


def _send(cursor: Any, binder: Any, prepared: dict[str, str], head: str,
          to_prepare: tuple[str, str, tuple[Any, ...]] | None, inline: Callable[[], str]) -> None:
    """Send ``head`` and one statement as one simple query; leave ``cursor`` on the statement's result.

    ``to_prepare``: the statement numbered for PREPARE (``$1``...), its ``EXECUTE {}(%s, ...)`` and
    its values, or None when it must be sent inline. Such a statement is prepared on the connection
    the first time (``PREPARE`` in the same message; ``prepared`` maps its SQL to its name there)
    and run with ``EXECUTE`` after; once the connection holds ``_MAX_PREPARED`` of them a new one is
    sent inline, ``inline()`` (the statement with its values bound by ``binder``). psycopg's errors
    are raised as they come, but one: when app code dropped the prepared statements
    (``DEALLOCATE``/``DISCARD``) the whole message rolled back, so it is sent again, preparing anew.
    """
    import psycopg

    for attempt in (1, 2):
        name = None
        if to_prepare is not None:
            sql, run, args = to_prepare
            name = prepared.get(sql)
            if name is not None:
                query = head + binder.mogrify(run.format(name), args)
            elif len(prepared) < _MAX_PREPARED:
                name = f"timber_ps_{next(_prepared_names)}"
                query = head + f"PREPARE {name} AS {sql}; " + binder.mogrify(run.format(name), args)
        if name is None:
            query = head + inline()
        try:
            # prepare=False: each query is unique (its values are in it); counting it for automatic
            # preparation would only push the engine's real prepared statements out of psycopg's cache.
            cursor.execute(query, prepare=False)
        except psycopg.errors.InvalidSqlStatementName:
            prepared.clear()
            if attempt == 2:
                raise
            continue
        if name is not None:
            prepared[sql] = name
        break
    while cursor.nextset():  # RESET ALL, the set_config row, [PREPARE,] then the statement's result
        pass


def _connection_state(info: Any, driver: Any, values: tuple[str, ...] | None) -> tuple[Any, dict[str, str], str]:
    """What one-statement messages use on a pooled connection: its binder, its prepared statements, the head.

    ``info``: the pooled connection's ``info``; ``driver``: its psycopg connection. The binder is
    a psycopg ``ClientCursor`` (it quotes values with the driver's adapters); the prepared
    statements map numbered SQL to their names on this connection; the head is
    ``RESET ALL; SELECT set_config(...); `` for the context ``values`` (empty for None: a
    connection without context), bound once per connection and context.
    """
    import psycopg

    binder = info.get(_BINDER)
    if binder is None or binder.connection is not driver:
        binder = info[_BINDER] = psycopg.ClientCursor(driver)
        info[_PREPARED] = {}
        info[_HEADS] = {}
    if values is None:
        return binder, info[_PREPARED], ""
    heads: dict[tuple[str, ...], str] = info[_HEADS]
    head = heads.get(values)
    if head is None:  # the same app and user call again and again: bind their context once per connection
        if len(heads) >= _MAX_HEADS:
            heads.clear()
        head = heads[values] = "RESET ALL; " + binder.mogrify(CONTEXT_SQL, values) + "; "
    return binder, info[_PREPARED], head


#: The most statements one_statement() prepares on one connection (the services need about a dozen).
_MAX_PREPARED = 100
#: Keys in a pooled connection's ``info``: what one_statement() prepared there (SQL -> name),
#: and the context messages it bound there (context values -> text), at most _MAX_HEADS.
_PREPARED = "timber_prepared"
_HEADS = "timber_context_heads"
_MAX_HEADS = 1024
_prepared_names = itertools.count(1)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@functools.lru_cache(maxsize=512)
def _numbered(statement: str) -> tuple[str, tuple[str, ...]] | None:
    """``statement`` (pyformat) with ``$1``, ``$2``... for PREPARE, and the parameter names in order.

    None when it has a placeholder this cannot number (then the statement is sent with its values).
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%"
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = _PLACEHOLDER.sub(number, statement)
    if "%(" in _PLACEHOLDER.sub("", statement):
        return None
    return sql, tuple(names)


def _execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
    """``do_execute_no_params``: as :func:`_execute_with_context`, for a statement without parameters."""
    return _execute_with_context(cursor, statement, None, context)


def _refuse_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """``do_executemany``: a one-statement connection sends one parameter set, never many."""
    if context.execution_options.get(_ONE_STATEMENT) and not context.execution_options.get(NO_CONTEXT):
        raise TimberError("one_statement(): executemany() is several statements; use DatabaseManager.connection()")
    return False


@dataclasses.dataclass(eq=False)
class _Shape:
    """A kernel service's statement compiled once for :meth:`DatabaseManager._run_kernel_statement`."""

    statement: Any
    #: The compiled statement (``%(name)s`` placeholders) and the same with ``$1``, ``$2``... (what
    #: PREPARE takes; the same text one_statement() prepares, so both paths share the prepared statement).
    text: str
    sql: str
    #: Per ``$n``: (parameter name, its value compiled into the statement, the type's bind processor).
    binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    #: ``EXECUTE {}(%s, ...)``: the run of a prepared statement, its name to fill in.
    run: str
    #: Builds a ``Row`` from a tuple of the driver, keyed as SQLAlchemy keys rows of the statement;
    #: None for a statement without rows.
    make_row: Callable[[Any], Any] | None
    #: Per column, the type's result processor (None: the driver's value is the value).
    processors: tuple[Callable[[Any], Any] | None, ...] = ()


def _compile_shape(statement: Any, keys: tuple[str, ...], dialect: Any) -> _Shape | None:
    """Compile ``statement`` (``keys``: an INSERT's value columns) for the driver-level path.

    None when the statement needs what only SQLAlchemy's execution does: values computed at
    execution (Python-side column defaults, ``IN`` lists expanded per call), ``RETURNING``,
    placeholders this cannot number, or selected columns that are not plain table columns.
    """
    from sqlalchemy import Column
    from sqlalchemy.engine.result import result_tuple

    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
    if (compiled.post_compile_params or compiled.literal_execute_params or compiled.insert_prefetch
            or compiled.update_prefetch or compiled.returning):
        return None
    form = _numbered(compiled.string)
    if form is None:
        return None
    sql, names = form
    required = {name for bind, name in compiled.bind_names.items() if bind.required}
    fixed = compiled.construct_params(dict.fromkeys(required | set(keys)))
    types = {name: bind.type for bind, name in compiled.bind_names.items()}
    binds = tuple((n, fixed.get(n), types[n].dialect_impl(dialect).bind_processor(dialect)) for n in names)
    run = _execute_of(names)
    if not getattr(statement, "is_select", False):
        return _Shape(statement, compiled.string, sql, binds, run, None)
    columns = list(statement.selected_columns)
    if not all(isinstance(c, Column) for c in columns):
        return None
    # Keyed like SQLAlchemy's own rows of select(table): by column name (the fields), key and Column.
    make_row = result_tuple([c.name for c in columns], [(c.key, c) if c.key != c.name else (c,) for c in columns])
    processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    return _Shape(statement, compiled.string, sql, binds, run, make_row, processors if any(processors) else ())


def _listeners_pass(engine: Any) -> bool:
    """Whether nothing watches ``engine``'s statements but listeners that pass kernel statements.

    The driver-level path dispatches no SQLAlchemy execution events: it is taken only when no
    listener (a statement logger, a test's counter) would miss its statement, and not under ``echo``.
    """
    if engine.echo:
        return False
    dispatch = engine.dispatch
    for listeners in (dispatch.before_execute, dispatch.after_execute, dispatch.before_cursor_execute,
                      dispatch.after_cursor_execute):
        for fn in listeners:
            if not getattr(getattr(fn, "__func__", fn), "timber_passes_kernel_statements", False):
                return False
    return True


def _send_context(driver: Any, values: tuple[str, str, str, str, str]) -> None:
    """Open the transaction and set its context in one round trip.

    ``values``: the role, app, user, lock timeout and statement timeout of CONTEXT_SQL.
    psycopg would send its implicit ``BEGIN`` and then our statement: two round trips,
    which cost about a quarter of a short service call. On an idle connection we send
    ``BEGIN; RESET ALL; SELECT set_config(...)`` as one simple query instead (values escaped
    by libpq); psycopg reads the transaction state from libpq, so it sends no second BEGIN
    and commits or rolls back as usual. Raise psycopg.Error when the server refuses.
    """
    import psycopg
    from psycopg import pq

    pgconn = driver.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.IDLE or driver.autocommit:
        driver.execute(CONTEXT_SQL, values)
        return
    esc = pq.Escaping(pgconn)
    enc = driver.info.encoding
    query = _BEGIN_CONTEXT % tuple(esc.escape_literal(v.encode(enc)) for v in values)
    result = pgconn.exec_(query)
    if result.status != pq.ExecStatus.TUPLES_OK:
        message = (result.error_message or b"").decode(enc, "replace").strip() or f"status {result.status.name}"
        raise psycopg.OperationalError(message.removeprefix("ERROR:").strip())


@dataclasses.dataclass(eq=False)
class _Unit:
    """The unit of work a ``session_scope()`` opened: its session and the context it runs in."""

    db: DatabaseManager
    session: Session
    app: str | None
    user: str | None
    thread: int
    failed: BaseException | None = None


#: The unit of work open in this context (thread, asyncio task), if any.
_unit: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar("timber_unit_of_work", default=None)
#: The callbacks waiting for the commit of the ``connection()`` block open outside any unit, if any.
_block_callbacks: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "timber_block_after_commit", default=None)
#: ``Session.info`` key of the callbacks waiting for that session's commit.
_AFTER_COMMIT = "timber_after_commit"


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    """Run the after-commit callbacks; one that fails is logged, never raised: the commit happened."""
    for callback in callbacks:
        try:
            callback()
        except Exception:  # noqa: BLE001 - the caller's data is committed; a cache hiccup must not undo that
            log.warning("timber: an after-commit callback failed", exc_info=True)


def _session_committed(session: Session) -> None:
    _run_callbacks(session.info.pop(_AFTER_COMMIT, []))


def _session_transaction_ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the root transaction: rolled back (a commit ran them already)
        session.info.pop(_AFTER_COMMIT, None)


def _context() -> tuple[str | None, str | None]:
    """The caller's (app, user); app None before any kernel or app context exists."""
    try:
        app: str | None = current_app()
    except NotInitializedError:
        app = None
    return app, current_user()


def _describe(exc: BaseException) -> str:
    """``"RuntimeError: first line of the message"`` (just the class without a message)."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@contextlib.contextmanager
def _joined(unit: _Unit) -> Iterator[None]:
    """Run a nested scope in ``unit``: flush its writes when it ends; an error leaving it dooms the unit."""
    try:
        yield
        unit.session.flush()
    except BaseException as exc:
        if unit.failed is None:
            unit.failed = exc
        raise


class DatabaseManager:
    """One engine and one session factory; ``session_scope()`` is the unit of work."""

    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 10,
        max_overflow: int = 5,
        pool_timeout: int = 30,
        echo: bool = False,
        connect_timeout: int = 10,
        lock_timeout_ms: int = 5000,
        statement_timeout_ms: int = 30000,
    ) -> None:
        self.url = normalize_url(url)
        self.kernel: Kernel | None = None
        #: Seconds a new PostgreSQL connection may take (``connect_timeout`` in the URL wins).
        self.connect_timeout = connect_timeout
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
        if self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout,
                          execution_options={_TIMEOUTS: (str(lock_timeout_ms), str(statement_timeout_ms))})
            if "connect_timeout" not in self.url.query:
                kwargs["connect_args"] = {"connect_timeout": connect_timeout}
        self.engine: Engine = create_engine(self.url, **kwargs)
        #: The engine units of work run on (on SQLite: transactions that begin IMMEDIATE).
        self._work_engine: Any = self.engine
        event.listen(self.engine, "handle_error", self._on_error)
        event.listen(self.engine, "connect", _stamp_opened)
        if self.dialect == "postgresql":
            event.listen(self.engine, "begin", _set_transaction_context)
            event.listen(self.engine, "do_execute", _execute_with_context)
            event.listen(self.engine, "do_execute_no_params", _execute_no_params)
            event.listen(self.engine, "do_executemany", _refuse_executemany)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "connect", _driver_transactions_off)
            #: Called with the Connection before each SQLite BEGIN (the SQLite wall switches context there).
            self.before_sqlite_begin: list[Any] = []
            event.listen(self.engine, "begin", self._on_sqlite_begin)
            self._work_engine = self.engine.execution_options(**{_IMMEDIATE: True})
            if self.url.database and self.url.database != ":memory:":
                event.listen(self.engine, "connect", _sqlite_wal)
                with self.engine.connect():
                    pass  # the first connection switches the file to WAL (a no-op once it is)
        #: The engine of one_statement() (PostgreSQL): autocommit, so psycopg sends no BEGIN of its
        #: own and the message is its own implicit transaction; SQLAlchemy resets autocommit when
        #: the connection returns to the pool.
        self._one_engine: Any = None
        #: The kernel statements compiled for _run_kernel_statement, by (id of the statement, keys):
        #: (the statement, its _Shape or None when it must go through Core).
        self._shapes: dict[tuple[int, tuple[str, ...]], tuple[Any, Any]] = {}
        if self.dialect == "postgresql":
            self._one_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT", **{_ONE_STATEMENT: True})
        # expire_on_commit=False: objects returned from a scope stay readable after it.
        self.session_factory: sessionmaker[Session] = sessionmaker(self._work_engine, expire_on_commit=False)
        event.listen(self.session_factory, "after_commit", _session_committed)
        event.listen(self.session_factory, "after_transaction_end", _session_transaction_ended)

    def _on_sqlite_begin(self, conn: Any) -> None:
        """``begin`` (SQLite): the hooks of :attr:`before_sqlite_begin`, then :func:`_sqlite_begin`."""
        for hook in self.before_sqlite_begin:
            hook(conn)
        _sqlite_begin(conn)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for logs and messages."""
        return self.url.render_as_string(hide_password=True)

    def _on_error(self, ctx: Any) -> BaseException | None:
        """``handle_error``: a failed connect becomes DatabaseUnavailableError; a lost connection, one warning."""
        if ctx.is_pre_ping:
            return None
        if ctx.connection is None:  # opening a new connection failed
            return self.unavailable(ctx.original_exception)
        if ctx.is_disconnect:
            try:
                info = ctx.connection.info
            except Exception:  # already invalidated: part of a loss already reported
                info = None
            _connection_lost(self.engine, info, ctx.original_exception)
        return None

    def unavailable(self, exc: BaseException) -> DatabaseUnavailableError:
        """Return the DatabaseUnavailableError for ``exc``, raised while opening a connection."""
        url = self.display_url
        if self.dialect == "sqlite":
            path = os.path.abspath(self.url.database or "")
            directory = os.path.dirname(path)
            fix = (f"its directory {directory} is not writable: point DATABASE_URL at a writable location"
                   if os.path.isdir(directory) and not os.access(directory, os.W_OK)
                   else "check the path in DATABASE_URL")
            return DatabaseUnavailableError(f"cannot open the SQLite database {path}: {_reason(exc)}; {fix}", url)
        where = f"{self.url.host}:{self.url.port or 5432}" if self.url.host else "the local PostgreSQL socket"
        head = f"cannot connect to the database {url}"
        reason = _reason(exc)
        lower = str(exc).lower()
        if "connection refused" in lower:
            message = f"{where} refused the connection; start PostgreSQL there or point DATABASE_URL at a running server"
        elif "timeout expired" in lower:
            if "connect_timeout" in self.url.query:
                waited, knob = str(self.url.query["connect_timeout"]), "connect_timeout in DATABASE_URL"
                setting = f"connect_timeout={waited} in DATABASE_URL"
            else:
                waited, knob = str(max(self.connect_timeout, 2)), "TIMBER_CONNECT_TIMEOUT"
                setting = f"TIMBER_CONNECT_TIMEOUT={self.connect_timeout}" + (
                    ", raised to libpq's minimum of 2" if self.connect_timeout < 2 else "")
            message = (f"{where} did not answer within {waited} s ({setting}); check that the host and port are "
                       f"right and reachable, or raise {knob}")
        elif re.search(r'database ".*" does not exist', reason):
            message = (f"the server at {where} has no database {self.url.database!r}; create it or fix the "
                       f"database name in DATABASE_URL")
        elif "pg_hba.conf" in reason:
            message = (f"the server at {where} does not accept this login from this host ({reason}); allow it "
                       f"in the server's pg_hba.conf or fix DATABASE_URL")
        elif re.search(r'role ".*" does not exist|authentication failed|no password supplied', reason):
            message = (f"the server at {where} rejected the login {self.url.username!r} ({reason}); fix the user "
                       f"or password in DATABASE_URL")
        elif "could not translate host name" in lower:
            message = f"the host {self.url.host!r} cannot be resolved ({reason}); fix the host in DATABASE_URL"
        else:
            message = f"{reason}; check DATABASE_URL and that the server at {where} accepts connections"
        return DatabaseUnavailableError(f"{head}: {message}", url)

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Session]:
        """Yield the ORM session of the current unit of work; the outermost scope commits or rolls back.

        Outside any scope this opens a unit of work: a new session, committed when the
        block ends, rolled back if it raises. Inside one (same database, same thread, same
        app and user), it yields the outer scope's session and neither commits nor rolls
        back: its writes are flushed when it ends, and an error leaving it makes the whole
        unit roll back. Raise IsolationError when entered under another app or user than
        the open unit's, TimberError from another thread or once the unit has failed.
        """
        unit = self._joinable()
        if unit is not None:
            with _joined(unit):
                yield unit.session
            return
        session = self.session_factory()
        app, user = _context()
        unit = _Unit(self, session, app, user, threading.get_ident())
        token = _unit.set(unit)
        open_ = True

        def leave() -> None:
            # Hooks run by the real commit or rollback (the vector outbox's inline drain) must
            # see no open unit: they open transactions of their own, in other contexts.
            nonlocal open_
            if open_:
                open_ = False
                _unit.reset(token)

        try:
            yield session
            leave()
            if unit.failed is not None:
                raise TimberError(
                    f"session_scope(): nothing was committed: a nested scope failed ({_describe(unit.failed)}) "
                    f"and its error was caught inside the outer scope; let the error propagate, or catch it "
                    f"outside the outermost session_scope()"
                ) from unit.failed
            session.commit()
        except BaseException:
            leave()
            session.rollback()
            raise
        finally:
            leave()
            session.close()

    def _joinable(self) -> _Unit | None:
        """Return the open unit of work on this database that the caller may join, None if there is none.

        Raise IsolationError when the caller's app or user differs from the unit's, TimberError
        when the unit belongs to another thread or has already failed.
        """
        unit = _unit.get()
        if unit is None or unit.db is not self:
            return None
        if unit.thread != threading.get_ident():
            raise TimberError(
                "session_scope() cannot join a transaction opened in another thread (its context was copied, as "
                "asyncio.to_thread() does): a Session is not thread-safe; run it after the outer scope ends, or in "
                "a thread started without that context"
            )
        app, user = _context()
        if (app, user) != (unit.app, unit.user):
            raise IsolationError(
                f"session_scope() as app {app!r} (user {user!r}) cannot join the open transaction of app "
                f"{unit.app!r} (user {unit.user!r}): one transaction has one app and one user; enter "
                f"app_context()/user_context() before the outermost session_scope(), or run this after it ends"
            )
        if unit.failed is not None:
            raise TimberError(
                f"session_scope(): cannot join a transaction that is being rolled back: a nested scope failed "
                f"({_describe(unit.failed)}); let the error propagate, or catch it outside the outermost "
                f"session_scope()"
            )
        return unit

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """Yield a Core connection in a transaction in the current app context.

        Inside a ``session_scope()`` it is the unit of work's connection (the session's
        pending rows flushed first), committed with the unit; otherwise a transaction of
        its own, committed when the block ends.
        """
        unit = self._joinable()
        if unit is not None:
            with _joined(unit):
                unit.session.flush()
                yield unit.session.connection()
            return
        callbacks: list[Callable[[], None]] = []
        token = _block_callbacks.set(callbacks)
        try:
            with self._work_engine.begin() as conn:
                yield conn
        finally:
            _block_callbacks.reset(token)
        _run_callbacks(callbacks)  # reached only when the block committed

    def in_transaction(self) -> bool:
        """Return whether the caller runs inside a ``session_scope()`` or ``connection()`` of this database."""
        unit = _unit.get()
        return (unit is not None and unit.db is self) or _block_callbacks.get() is not None

    def after_commit(self, callback: Callable[[], None], *, session: Session | None = None) -> None:
        """Run ``callback`` once the caller's transaction has committed; never if it rolls back.

        The transaction is ``session``'s (an ORM session of this database), else the open
        ``session_scope()``, else the open ``connection()`` block; with none, ``callback`` runs
        now. A callback that raises is logged on ``timber.db``, not raised: the data is
        committed by then. What the cache uses to drop entries only after the write is visible.
        """
        if session is not None:
            session.info.setdefault(_AFTER_COMMIT, []).append(callback)
            return
        unit = _unit.get()
        if unit is not None and unit.db is self:
            unit.session.info.setdefault(_AFTER_COMMIT, []).append(callback)
            return
        pending = _block_callbacks.get()
        if pending is not None:
            pending.append(callback)
            return
        _run_callbacks([callback])

    @contextlib.contextmanager
    def one_statement(self) -> Iterator[Any]:
        """Yield a Core connection for exactly one statement in the current app context.

        On PostgreSQL outside a unit of work, the statement is sent in one message with the
        per-transaction context and runs as its own implicit transaction (committed when it
        succeeds, rolled back when it fails): one round trip. A second statement, or an
        ``executemany``, on that connection raises TimberError. Inside a ``session_scope()``,
        and on SQLite, this is :meth:`connection`.
        """
        if self._one_engine is None or self._joinable() is not None:
            with self.connection() as conn:
                yield conn
            return
        with self._one_engine.begin() as conn:
            yield conn

    def _run_kernel_statement(self, statement: Any, params: dict[str, Any], keys: tuple[str, ...] = ()) -> Any:
        """Run one of the kernel services' own statements as one statement in the current context.

        Return its rows (a list of ``Row``, keyed as SQLAlchemy keys them) or, for a statement
        without rows, its rowcount. ``statement`` must be built once and reused (it is compiled
        once per ``keys``, the column keys of an INSERT's values) and reach only kernel tables:
        the isolation guard passes such statements, and this path does not consult it.

        On PostgreSQL, outside a unit of work, the statement goes under SQLAlchemy Core: the
        message of :meth:`one_statement` (``RESET ALL; SELECT set_config(...); EXECUTE ...``,
        values bound by psycopg) is sent on the pooled driver connection in autocommit, which is
        switched back before the connection returns to the pool; the rows are built from the
        driver's tuples. Errors are raised as SQLAlchemy raises them (``sqlalchemy.exc.DBAPIError``
        subclasses with ``.orig``); a lost connection is reported and the pool's connections
        discarded as for any other statement. Elsewhere (SQLite, inside a ``session_scope()``,
        under ``echo`` or an execution-event listener) this is ``one_statement()`` with Core.
        """
        shape = None
        if self._one_engine is not None and self._joinable() is None and _listeners_pass(self.engine):
            key = (id(statement), keys)
            known = self._shapes.get(key)
            if known is not None and known[0] is statement:
                shape = known[1]
            else:  # first use (or another statement now has that id): compile it
                if len(self._shapes) >= _MAX_PREPARED:
                    self._shapes.clear()
                shape = _compile_shape(statement, keys, self.engine.dialect)
                self._shapes[key] = (statement, shape)
        if shape is None:
            with self.one_statement() as conn:
                result = conn.execute(statement, params)
                return result.all() if result.returns_rows else result.rowcount
        return self._run_shape(shape, params)

    def _run_shape(self, shape: _Shape, params: dict[str, Any]) -> Any:
        """Send ``shape`` with ``params`` and its context in one message on a pooled connection (see above)."""
        import psycopg
        import sqlalchemy.exc

        engine = self.engine
        options = engine.get_execution_options()
        values = None if options.get(NO_CONTEXT) else _context_values(options)
        args = tuple(params.get(name, fixed) if processor is None else processor(params.get(name, fixed))
                     for name, fixed, processor in shape.binds)
        try:
            fairy = engine.raw_connection()
        except psycopg.Error as exc:
            raise self.unavailable(exc) from exc
        driver = fairy.driver_connection
        binder = None
        lost = False
        try:
            binder, prepared, head = _connection_state(fairy.info, driver, values)
            driver.autocommit = True  # the message is its own implicit transaction: no BEGIN from psycopg
            _send(binder, binder, prepared, head, (shape.sql, shape.run, args),
                  lambda: binder.mogrify(shape.text, dict(zip((b[0] for b in shape.binds), args))))
            if shape.make_row is None:
                return binder.rowcount
            rows = binder.fetchall()
            if shape.processors:
                procs = shape.processors
                rows = [tuple(v if p is None else p(v) for p, v in zip(procs, r)) for r in rows]
            return list(map(shape.make_row, rows))
        except psycopg.Error as exc:
            if values is not None and isinstance(exc, psycopg.errors.InsufficientPrivilege) and (
                    str(exc).strip() == f'permission denied to set role "{values[0]}"'):
                raise _role_refused(engine, values[1], values[0], exc) from None
            lost = bool(engine.dialect.is_disconnect(exc, driver, binder))
            if lost:
                _connection_lost(engine, fairy.info, exc)
                engine.pool._invalidate(fairy, exc, _checkin=False)  # the others: reconnect on checkout
                fairy.invalidate(exc)
            raise sqlalchemy.exc.DBAPIError.instance(
                shape.text, dict(zip((b[0] for b in shape.binds), args)), exc, psycopg.Error,
                hide_parameters=engine.hide_parameters, connection_invalidated=lost, dialect=engine.dialect) from exc
        finally:
            if not lost:
                try:
                    driver.autocommit = False
                except psycopg.Error as exc:  # the connection broke under us: it must not be reused
                    fairy.invalidate(exc)
            fairy.close()

    @contextlib.contextmanager
    def admin_connection(self) -> Iterator[Any]:
        """Yield a Core connection in a transaction *without* the app context.

        It runs as the login role of the URL itself: for migrations and ``timber doctor``,
        which read catalogs and ``alembic_version``, never app rows.
        """
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{NO_CONTEXT: True})
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
