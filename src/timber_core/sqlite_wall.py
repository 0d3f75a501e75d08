"""The SQLite wall: what the database itself refuses to an app, on SQLite.

PostgreSQL confines raw SQL with roles and row-level security. SQLite has neither, so
every connection of the kernel's engine carries two things, switched to the context of
each transaction (``app_context`` / ``platform_context``) when it begins and when the
connection is checked out of the pool:

* an **authorizer** (``sqlite3.Connection.set_authorizer``), consulted by SQLite for every
  table, column, function and pragma a statement uses, when the statement is prepared.
  In an app's context it refuses: another app's private tables (read or write); reading
  ``main.sessions`` other than through the filtered view below (a write on it may read
  its own target row, but no subquery or join may read it); writing ``alembic_version``
  or ``timber_revisions``; reading or writing ``user_credentials`` (password hashes) or
  ``timber_gdpr_audit`` (GDPR erasure records), or anything but inserting into the vector outbox; ``ATTACH``/``DETACH``; setting a
  pragma; ``load_extension()``; dropping or altering anything; creating temporary
  objects, views, triggers or virtual tables; deleting from ``users``. A write on a table
  another app's private table references may check that key and run its ``ON DELETE``/
  ``ON UPDATE`` action there, as PostgreSQL's key checks do past grants and policies, but not
  query it. Setting the authorizer again when the
  context changes expires every prepared statement, so a statement cached under the
  platform context is re-authorized before it runs in an app's.
* **temporary objects** for each shared typed table (``sessions``): a view of the same
  name, ``SELECT * FROM main.sessions WHERE session_type IN (<own types>)``, which
  shadows the table for every unqualified read; and ``BEFORE`` triggers on
  ``main.sessions`` that skip (``RAISE(IGNORE)``) updates and deletes of rows of other
  types and abort inserts or updates writing a type the app does not own. Writes name
  the table itself (SQLite's views are read-only and a temporary trigger cannot write a
  main table), so the statement's target ``sessions`` is rewritten to ``main.sessions``
  before it is sent; ``recursive_triggers`` is on, so ``INSERT OR REPLACE`` cannot delete
  another app's row.
* for each of the app's own private tables that declares ``owned_by`` (docs/models.md), the
  same pair per user: a temporary view ``SELECT * FROM main.<table> WHERE <owner> =
  timber_acting_user()`` and ``BEFORE`` triggers that skip updates and deletes of other users'
  rows and abort inserts or updates writing a row whose owner is not the acting user.
  ``timber_acting_user()`` is a function registered on the connection that returns the user
  of the transaction (``user_context``, taken when the transaction begins), NULL without one,
  so no row matches then; the view and triggers do not change when the user does.

In the platform context, and on admin connections (``NO_CONTEXT``), there is no
temporary object and the authorizer allows everything. Migrations use connections of
their own, which carry neither.

Denials raise :class:`~timber_core.errors.IsolationError` saying what was refused and why.
"""

from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from .apps import KERNEL_APP
from .context import PLATFORM, current_app, current_user
from .db import NO_CONTEXT
from .errors import IsolationError, NotInitializedError, TimberError

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

__all__ = ["SqliteWall"]

_KEY = "timber_sqlite_wall"
_OK, _DENY = sqlite3.SQLITE_OK, sqlite3.SQLITE_DENY
_WRITES = {sqlite3.SQLITE_INSERT: "insert", sqlite3.SQLITE_UPDATE: "update", sqlite3.SQLITE_DELETE: "delete"}
_DROP_OR_ALTER = {
    sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_TEMP_INDEX,
    sqlite3.SQLITE_DROP_TEMP_TABLE, sqlite3.SQLITE_DROP_TEMP_TRIGGER, sqlite3.SQLITE_DROP_TEMP_VIEW,
    sqlite3.SQLITE_DROP_TRIGGER, sqlite3.SQLITE_DROP_VIEW, sqlite3.SQLITE_DROP_VTABLE, sqlite3.SQLITE_ALTER_TABLE,
}
_CREATE_OTHER = {
    sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
    sqlite3.SQLITE_CREATE_TEMP_VIEW, sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_CREATE_VIEW,
    sqlite3.SQLITE_CREATE_VTABLE,
}
#: Pragmas an app may run with an argument: they only describe the schema.
_SCHEMA_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "foreign_key_check", "table_list",
})
#: Tables an app may not read: SQLite's own windows on pages, statements and index samples.
_HIDDEN = frozenset({"dbstat", "sqlite_dbpage", "sqlite_stmt", "sqlite_stat3", "sqlite_stat4"})
#: Functions an app may not call.
_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
_OUTBOX = "timber_vector_outbox"
#: Migration bookkeeping (Alembic's heads; Timber's record of applied revisions, migrations.applied).
_MIGRATION_TABLES = frozenset({"alembic_version", "timber_revisions"})
#: The password hashes (timber_0004): no app reads or writes them; the kernel's auth code does,
#: in platform_context() (as on PostgreSQL, where only timber_platform is granted the table).
_CREDENTIALS = "user_credentials"
#: The GDPR erasure records (timber_0005): only the platform's erase_user reads or writes them
#: (as on PostgreSQL, where only timber_platform is granted the table).
_GDPR_AUDIT = "timber_gdpr_audit"
_OUTBOX_GUARD = f"timber_wall_{_OUTBOX}_bi"
#: The SQL function the per-user views and triggers compare the owner column with.
_ACTING_USER = "timber_acting_user"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _Conn:
    """The wall's state on one DBAPI connection."""

    __slots__ = ("dbapi", "app", "user", "applied", "building", "select", "direct", "denied", "wall", "guarded",
                 "written")

    def __init__(self, wall: SqliteWall, dbapi: Any) -> None:
        self.wall = wall
        self.dbapi = dbapi
        self.app: str | None = None  # None: open (platform, admin, no context)
        #: The acting user of the transaction (what ``timber_acting_user()`` returns).
        self.user: str | None = None
        self.applied = False
        self.building = False
        self.select = False  # the statement being prepared has a SELECT (top level or nested)
        self.direct: str | None = None  # ... and reads this main.<filtered table> directly
        #: Tables the statement being prepared writes, itself or through foreign-key actions.
        self.written: set[str] = set()
        self.denied: str | None = None
        #: The tables whose guards (view, triggers) exist on this connection.
        self.guarded: frozenset[str] = frozenset()

    def deny(self, message: str) -> int:
        self.denied = f"SQLite wall: app {self.app!r} {message}"
        return _DENY

    def authorize(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        app = self.app
        if app is None or self.building:
            return _OK
        wall = self.wall
        if action == sqlite3.SQLITE_READ:
            if db == "temp" or arg1 is None:
                return _OK
            owner = wall.private.get(arg1)
            if owner is not None and owner != app:
                # SQLite authorizes a SELECT before the columns it reads, so a query reading this
                # table (a subquery in WHERE, VALUES, SET or RETURNING) has set ``select`` by now.
                if source is None and not self.select and wall.enforces_key(arg1, arg2, self.written):
                    return _OK
                return self.deny(wall.private_message(arg1, owner, "read"))
            if arg1 in _HIDDEN:
                return self.deny(f"may not read table {arg1!r}")
            if arg1 == _GDPR_AUDIT:
                return self.deny(f"may not read table {arg1!r}: GDPR erasure records are the platform's "
                                 f"(timber_core.gdpr), read in platform_context()")
            if arg1 == _CREDENTIALS:
                if source is None and not self.select and arg2 == "user_id" and "users" in self.written:
                    return _OK  # the check of its key into users, when the app writes users
                return self.deny(f"may not read table {arg1!r}: password hashes are read only by the kernel's "
                                 f"auth code (timber_core.auth), in platform_context()")
            if arg1 in wall.own_objects and source not in wall.own_objects[arg1]:
                self.direct = arg1
                if self.select:
                    return self.deny(wall.direct_message(arg1))
            elif arg1 == _OUTBOX and source != _OUTBOX_GUARD:
                return self.deny(f"may only insert into table {_OUTBOX!r}")
            return _OK
        if action == sqlite3.SQLITE_SELECT:
            if source is None:
                self.select = True
                if self.direct:
                    return self.deny(wall.direct_message(self.direct))
            return _OK
        verb = _WRITES.get(action)
        if verb is not None:
            if arg1 is None or db == "temp" or arg1.startswith("sqlite_"):
                return _OK
            owner = wall.private.get(arg1)
            if owner is not None and owner != app:
                if source is None and wall.acts_on(arg1, self.written):
                    self.written.add(arg1)  # an ON DELETE/UPDATE action, as PostgreSQL runs it
                    return _OK
                return self.deny(wall.private_message(arg1, owner, "write"))
            if arg1 == "users" and verb == "delete":  # as on PostgreSQL: its ON DELETE CASCADE reaches every app
                return self.deny("may not delete from table 'users': accounts are deleted only in "
                                 "timber_core.platform_context(), as on PostgreSQL")
            if arg1 == _CREDENTIALS:
                return self.deny(f"may not {verb} table {arg1!r}: password hashes are written only by the "
                                 f"kernel's auth code (timber_core.auth), in platform_context()")
            if arg1 == _GDPR_AUDIT:
                return self.deny(f"may not {verb} table {arg1!r}: GDPR erasure records are written only by "
                                 f"timber_core.gdpr.erase_user, in platform_context()")
            if arg1 in _MIGRATION_TABLES or (arg1 == _OUTBOX and verb != "insert"):
                return self.deny(f"may not {verb} table {arg1!r}: it is the kernel's"
                                 + (" (apps may only insert into it)" if arg1 == _OUTBOX else ""))
            if (arg1 in wall.own_objects or arg1 == _OUTBOX) and arg1 not in self.guarded:
                return self.deny(f"may not {verb} table {arg1!r} on a connection opened before it existed; "
                                 f"dispose of the engine's connections (kernel.db.dispose()) and retry")
            if source is None:
                self.written.add(arg1)
            return _OK
        if action == sqlite3.SQLITE_PRAGMA:
            if arg2 is None or (arg1 or "").lower() in _SCHEMA_PRAGMAS:
                return _OK
            return self.deny(f"may not set PRAGMA {arg1}")
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return self.deny("may not ATTACH or DETACH databases")
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in _FUNCTIONS:
                return self.deny(f"may not call {arg2.lower()}()")  # type: ignore[union-attr]
            return _OK
        if action in _DROP_OR_ALTER:
            return self.deny("may not drop or alter tables, indexes, views or triggers")
        if action in _CREATE_OTHER:
            return self.deny("may not create temporary tables, views, triggers or virtual tables")
        return _OK

    # -- switching context ---------------------------------------------------
    def enter(self, app: str | None) -> None:
        """Make this connection walled for ``app`` (None: open). Cheap when nothing changes."""
        if self.applied and app == self.app:
            return
        dbapi = self.dbapi
        if dbapi.in_transaction:
            raise TimberError("SQLite wall: cannot switch a connection's context inside an open transaction")
        self.building = True
        try:
            for sql in self.wall.drop_sql:
                dbapi.execute(sql)
            self.guarded = frozenset()
            if app is not None:
                statements, self.guarded = self.wall.create_sql(app, dbapi)
                for sql in statements:
                    dbapi.execute(sql)
        finally:
            self.building = False
        self.app = app
        self.applied = True
        # Setting the authorizer again expires every prepared statement (the driver's cache
        # included): each is authorized anew, for this context, before it next runs.
        dbapi.set_authorizer(self.authorize)


class SqliteWall:
    """The SQLite wall of one kernel: its tables' owners and the apps' session types."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        # Every model's spec, mapped yet or not (an app's classes are mapped on first need): the
        # wall covers every table from the start.
        specs = kernel.schema.models
        #: Private table -> owning app.
        self.private = {s.table_name: s.app for s in specs if not s.shared and s.app != KERNEL_APP}
        #: Shared typed table -> its type column.
        self.typed = {s.table_name: s.typed_by for s in specs if s.typed_by}
        #: App -> its private tables declaring ``owned_by`` -> the owner column.
        self.owned: dict[str, dict[str, str]] = {}
        for s in specs:
            if s.owned_by and s.table_name in self.private:
                self.owned.setdefault(s.app, {})[s.table_name] = s.owned_by
        #: Every table read through a filtered view -> the view and its guard triggers.
        filtered = [*self.typed, *(t for tables in self.owned.values() for t in tables)]
        self.own_objects = {t: frozenset({t, *(f"timber_wall_{t}_{k}" for k in ("bi", "bu", "bd"))})
                            for t in filtered}
        self.drop_sql = [f"DROP VIEW IF EXISTS temp.{t}" for t in filtered] + [
            f"DROP TRIGGER IF EXISTS temp.timber_wall_{t}_{k}" for t in filtered for k in ("bi", "bu", "bd")
        ] + [f"DROP TRIGGER IF EXISTS temp.timber_wall_{_OUTBOX}_bi"]
        #: Private table -> {(its foreign-key column, the table it references)}; and the private
        #: tables an ON DELETE/UPDATE action of a foreign key writes -> the tables whose writes fire it.
        self._keys: dict[str, set[tuple[str, str]]] = {}
        self._actions: dict[str, set[str]] = {}
        for table in kernel.metadata.tables.values():
            if table.name not in self.private:
                continue
            for fk in table.foreign_keys:
                parent = fk.column.table.name
                self._keys.setdefault(table.name, set()).add((fk.parent.name, parent))
                if fk.ondelete or fk.onupdate:
                    self._actions.setdefault(table.name, set()).add(parent)
        names = "|".join(re.escape(t) for t in filtered) or "(?!)"
        self._target = re.compile(
            r"^(\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+)"
            rf"(\"?)({names})\2(?=[\s(]|$)",
            re.IGNORECASE,
        )
        self._engine: Any = None

    # -- foreign keys ----------------------------------------------------------
    # SQLite enforces a foreign key by reading the child table when the parent is written, and runs
    # its ON DELETE/UPDATE action on the child, inside the statement that writes the parent; the
    # authorizer sees those reads and writes. PostgreSQL's key checks and actions bypass the apps'
    # grants and policies the same way. Both are allowed only as part of a write to the parent
    # (``written``), with no trigger behind them (``source`` None) and no query in the statement.
    def enforces_key(self, table: str, column: str | None, written: set[str]) -> bool:
        """Whether reading ``table.column`` can only be the check of a key into a table ``written``."""
        return any(col == column and parent in written for col, parent in self._keys.get(table, ()))

    def acts_on(self, table: str, written: set[str]) -> bool:
        """Whether writing ``table`` is the ON DELETE/UPDATE action of a key into a table ``written``."""
        return bool(self._actions.get(table, set()) & written)

    # -- messages --------------------------------------------------------------
    @staticmethod
    def private_message(table: str, owner: str, verb: str) -> str:
        return (f"may not {verb} table {table!r}: it is private to app {owner!r}. Reach app {owner}'s data "
                f"through its services, or run cross-app work in timber_core.platform_context()")

    @staticmethod
    def direct_message(table: str) -> str:
        return (f"may read table {table!r} only through Timber's filtered view: write {table!r}, not "
                f"'main.{table}', and no subquery or join on main.{table} in a write")

    # -- the temporary objects -------------------------------------------------
    def create_sql(self, app: str, dbapi: Any) -> tuple[list[str], frozenset[str]]:
        """The statements creating ``app``'s temporary view and triggers, and the tables they guard
        (those that exist: writing one that does not is refused on this connection)."""
        existing = {r[0] for r in dbapi.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
        types = sorted(self.kernel.apps.session_types_of(app))
        own = "(" + ", ".join(_quote(t) for t in types) + ")"
        message = _quote(f"SQLite wall: app {app!r} may write only sessions of its own types "
                         f"({', '.join(types) or 'none'}) into table {{table!r}}")
        out: list[str] = []
        for table, column in self.typed.items():
            if table not in existing:
                continue
            abort = message.replace("{table!r}", repr(table).replace("'", "''"))
            out += [
                f"CREATE TEMP VIEW {table} AS SELECT * FROM main.{table} WHERE {column} IN {own}",
                f"CREATE TEMP TRIGGER timber_wall_{table}_bi BEFORE INSERT ON main.{table} "
                f"WHEN NEW.{column} IS NULL OR NEW.{column} NOT IN {own} BEGIN SELECT RAISE(ABORT, {abort}); END",
                f"CREATE TEMP TRIGGER timber_wall_{table}_bu BEFORE UPDATE ON main.{table} BEGIN "
                f"SELECT RAISE(IGNORE) WHERE OLD.{column} NOT IN {own}; "
                f"SELECT RAISE(ABORT, {abort}) WHERE NEW.{column} IS NULL OR NEW.{column} NOT IN {own}; END",
                f"CREATE TEMP TRIGGER timber_wall_{table}_bd BEFORE DELETE ON main.{table} "
                f"WHEN OLD.{column} NOT IN {own} BEGIN SELECT RAISE(IGNORE); END",
            ]
        for table, column in self.owned.get(app, {}).items():
            if table not in existing:
                continue
            mine = f"{column} = {_ACTING_USER}()"
            abort = _quote(f"SQLite wall: app {app!r} may write into table {table!r} only rows whose {column!r} "
                           f"is the acting user (user_context()); no row without one")
            out += [
                f"CREATE TEMP VIEW {table} AS SELECT * FROM main.{table} WHERE {mine}",
                f"CREATE TEMP TRIGGER timber_wall_{table}_bi BEFORE INSERT ON main.{table} "
                f"WHEN (NEW.{mine}) IS NOT 1 BEGIN SELECT RAISE(ABORT, {abort}); END",
                f"CREATE TEMP TRIGGER timber_wall_{table}_bu BEFORE UPDATE ON main.{table} BEGIN "
                f"SELECT RAISE(IGNORE) WHERE (OLD.{mine}) IS NOT 1; "
                f"SELECT RAISE(ABORT, {abort}) WHERE (NEW.{mine}) IS NOT 1; END",
                f"CREATE TEMP TRIGGER timber_wall_{table}_bd BEFORE DELETE ON main.{table} "
                f"WHEN (OLD.{mine}) IS NOT 1 BEGIN SELECT RAISE(IGNORE); END",
            ]
        if _OUTBOX in existing:
            stamp = _quote(f"SQLite wall: app {app!r} may add to {_OUTBOX!r} only rows of its own app")
            out.append(f"CREATE TEMP TRIGGER timber_wall_{_OUTBOX}_bi BEFORE INSERT ON main.{_OUTBOX} "
                       f"WHEN NEW.app IS NOT {_quote(app)} BEGIN SELECT RAISE(ABORT, {stamp}); END")
        guarded = (*self.typed, *self.owned.get(app, {}), _OUTBOX)
        return out, frozenset(t for t in guarded if t in existing)

    # -- installation ----------------------------------------------------------
    def install(self, engine: Any) -> None:
        """Wall every connection of ``engine`` (those already pooled included)."""
        self._engine = engine
        event.listen(engine, "checkout", self._on_checkout)
        # Before the kernel's BEGIN IMMEDIATE: the context switches outside any transaction.
        self.kernel.db.before_sqlite_begin.append(self._on_begin)
        event.listen(engine, "before_cursor_execute", self._on_statement, retval=True)
        event.listen(engine, "handle_error", self._on_error)

    def uninstall(self) -> None:
        """Remove the wall (for benchmarks): the engine's pooled connections are closed."""
        engine = self._engine
        for name, fn in (("checkout", self._on_checkout), ("before_cursor_execute", self._on_statement),
                         ("handle_error", self._on_error)):
            event.remove(engine, name, fn)
        self.kernel.db.before_sqlite_begin.remove(self._on_begin)
        engine.dispose()
        self._engine = None

    def _state(self, dbapi: Any, info: dict[str, Any]) -> _Conn:
        state = info.get(_KEY)
        if state is None or state.dbapi is not dbapi:
            dbapi.execute("PRAGMA recursive_triggers = ON")  # INSERT OR REPLACE fires the delete guard
            state = info[_KEY] = _Conn(self, dbapi)
            # Not deterministic: its value changes between transactions, so SQLite may not cache it.
            dbapi.create_function(_ACTING_USER, 0, lambda: state.user)
        return state

    @staticmethod
    def _context_app() -> str | None:
        try:
            app = current_app()
        except NotInitializedError:
            return None
        return None if app == PLATFORM else app

    def _on_checkout(self, dbapi: Any, record: Any, _proxy: Any) -> None:
        state = record.info.get(_KEY)
        if state is None or state.dbapi is not dbapi:
            state = self._state(dbapi, record.info)
        app = self._context_app()
        if app != state.app or not state.applied:
            state.enter(app)
        state.user = None if app is None else current_user()

    def _on_begin(self, conn: Any) -> None:
        fairy = conn.connection
        state = fairy.info.get(_KEY)
        if state is None or state.dbapi is not fairy.dbapi_connection:
            state = self._state(fairy.dbapi_connection, fairy.info)
        app = None if conn.get_execution_options().get(NO_CONTEXT) else self._context_app()
        if app != state.app or not state.applied:
            state.enter(app)
        state.user = None if app is None else current_user()

    def _on_statement(self, conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                      _many: bool) -> tuple[str, Any]:
        state = conn.connection.info.get(_KEY)
        if state is not None:
            state.select, state.direct = False, None
            state.written = set()
            state.denied = None
            if state.app is not None and not statement.startswith("SELECT"):
                statement = self._target.sub(r"\1main.\2\3\2", statement, count=1)
        return statement, parameters

    def _on_error(self, ctx: Any) -> BaseException | None:
        exc = ctx.original_exception
        if not isinstance(exc, sqlite3.DatabaseError) or ctx.connection is None:
            return None
        message = str(exc)
        if message.startswith("SQLite wall: "):
            return IsolationError(message)
        try:
            state = ctx.connection.connection.info.get(_KEY)
        except Exception:
            return None
        if state is not None and state.denied and ("authoriz" in message or "prohibited" in message):
            denied, state.denied = state.denied, None
            return IsolationError(denied)
        return None
