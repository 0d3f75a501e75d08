"""ORM guards that keep each app to its own data, on every database.

Three walls, all driven by the current app context (:mod:`timber_core.context`):

* model boundaries: another app's private model cannot be fetched
  (:meth:`Isolation.check_model`) nor queried or written through the ORM;
* automatic filters: every ORM statement touching a shared, typed table (the
  ``sessions`` table, typed by ``session_type``) is limited to the context's
  own session types with ``with_loader_criteria``, lazy loads included;
* write checks: a flush or ORM insert that would write a row of a type the
  context does not own is refused;
* per-user tables: an app's private model declaring ``owned_by`` is filtered to
  the rows whose owner column is the acting user (``user_context``; no rows
  without one), and a flush or ORM insert/update writing a row for another user
  (or for anyone, without a user context) is refused.

Every compiled statement (ORM or Core) is also checked just before it is sent: each
table its SQL reaches (FROM, JOIN, joined eager loads, ``any()``/``has()`` subqueries,
``select_from``) must be the context's own, shared or the kernel's. A write may not
set the type column to a type the context does not own, and an upsert
(``INSERT ... ON CONFLICT DO UPDATE``) on a shared typed table is refused: its
conflicting row could be another app's.

The platform context passes all of these. Raw SQL (``text()``) is beyond the ORM's
reach; the database walls close that gap: PostgreSQL's roles and row-level security,
and SQLite's authorizer and temporary views (:mod:`timber_core.sqlite_wall`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Table, event, false
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import Alias
from sqlalchemy.sql.util import find_tables

from .apps import KERNEL_APP, AppRegistry
from .context import PLATFORM, current_app, current_user
from .db import NO_CONTEXT
from .errors import IsolationError, NotInitializedError
from .schema.build import attribute_name
from .schema.spec import ModelSpec

__all__ = ["Isolation"]


def _spec(cls: type) -> ModelSpec | None:
    return getattr(cls, "__timber_model__", None)


class Isolation:
    """The ORM guards for one kernel: its apps and its mapped classes."""

    def __init__(self, apps: AppRegistry, classes: dict[str, type], specs: list[ModelSpec] | None = None) -> None:
        """Guard ``classes`` (the mapped ones) and every table of ``specs`` (default: the classes' specs).

        A kernel maps an app's classes on first need (docs/plugins.md, "What a process builds"):
        ``specs`` lists every model, built or not, so the check of compiled statements knows
        every table from the start; :meth:`add` takes the classes mapped later.
        """
        self.apps = apps
        self.classes: dict[str, type] = {}
        self.typed: list[tuple[type, Any, str]] = []
        #: (class, owner column attribute, owner column name) of every model declaring ``owned_by``.
        self.owned: list[tuple[type, Any, str]] = []
        if specs is None:
            specs = [spec for cls in classes.values() if (spec := _spec(cls)) is not None]
        #: Table name -> spec, for the check of compiled statements.
        self.tables: dict[str, ModelSpec] = {spec.table_name: spec for spec in specs}
        #: Table name -> type column name, for the shared typed tables.
        self.typed_tables: dict[str, str] = {
            spec.table_name: spec.typed_by for spec in self.tables.values() if spec.typed_by
        }
        self.add(classes)

    def add(self, classes: dict[str, type]) -> None:
        """Guard ``classes``, just mapped: their type and owner filters apply from the next statement."""
        # New lists, swapped in whole: a statement running in another thread keeps the list it read.
        self.classes = {**self.classes, **classes}
        self.typed = self.typed + [
            (cls, getattr(cls, attribute_name(spec.typed_by)), spec.typed_by)
            for cls in classes.values()
            if (spec := _spec(cls)) is not None and spec.typed_by
        ]
        self.owned = self.owned + [
            (cls, getattr(cls, attribute_name(spec.owned_by)), spec.owned_by)
            for cls in classes.values()
            if (spec := _spec(cls)) is not None and spec.owned_by
        ]

    # -- model boundaries -------------------------------------------------
    def check_model(self, spec: ModelSpec, app: str, action: str = "use") -> None:
        """Raise IsolationError when ``app`` may not touch the model of ``spec``."""
        if app == PLATFORM or spec.shared or spec.app == app:
            return
        raise IsolationError(
            f"app {app!r} may not {action} model {spec.name!r} (table {spec.table_name!r}): it is "
            f"private to app {spec.app!r}. Reach app {spec.app}'s data through its services, or "
            f"run cross-app work in timber_core.platform_context()"
        )

    def check_type(self, session_type: Any, app: str, action: str = "write", what: str = "a session of type") -> None:
        """Raise IsolationError when ``app`` does not own ``session_type``."""
        if app == PLATFORM or session_type in self.apps.session_types_of(app):
            return
        owner = self.apps.owner_of_session_type(str(session_type))
        own = ", ".join(sorted(self.apps.session_types_of(app))) or "none"
        if owner is None:
            raise IsolationError(
                f"app {app!r} cannot {action} {what} {session_type!r}: no installed app "
                f"owns that type. App {app!r} owns: {own}; declare new types in its timber_session_types()"
            )
        raise IsolationError(
            f"app {app!r} cannot {action} {what} {session_type!r}: that type is owned by "
            f"app {owner!r}. App {app!r} owns: {own}"
        )

    def check_owner(self, spec: ModelSpec, owner: Any, app: str, action: str = "write") -> None:
        """Raise IsolationError when ``app`` may not write a row of ``spec`` owned by ``owner``.

        A model declaring ``owned_by`` takes only rows of the acting user (``current_user()``),
        and none without a user context; the platform context writes any.
        """
        if app == PLATFORM or not spec.owned_by:
            return
        user = current_user()
        if user is not None and owner == user:
            return
        acting = f"the acting user is {user!r}" if user is not None else "there is no user context"
        raise IsolationError(
            f"app {app!r} may not {action} a row of model {spec.name!r} (table {spec.table_name!r}) owned by "
            f"{owner!r}: its rows are owned_by {spec.owned_by!r} and {acting}. Act for the row's user "
            f"(user_context(user_id)), or run cross-user work in timber_core.platform_context()"
        )

    def _owner_criteria(self) -> list[Any]:
        """Loader criteria keeping every ``owned_by`` model to the acting user's rows (none without one)."""
        user = current_user()
        return [with_loader_criteria(cls, false() if user is None else column == user, include_aliases=True)
                for cls, column, _ in self.owned]

    # -- installation -----------------------------------------------------
    def install(self, factory: sessionmaker[Session]) -> None:
        """Attach the guards to every session ``factory`` makes."""
        event.listen(factory, "do_orm_execute", self._on_execute)
        event.listen(factory, "before_flush", self._on_flush)
        engine = factory.kw.get("bind")
        if engine is not None:
            # retval=True: registered as itself (not wrapped), so DatabaseManager can tell it apart.
            event.listen(engine, "before_cursor_execute", self._on_cursor, retval=True)

    # -- every compiled statement -------------------------------------------
    def _on_cursor(self, conn: Any, _cursor: Any, sql: str, params: Any, context: Any, _many: bool) -> tuple[str, Any]:
        """``before_cursor_execute``: refuse a compiled statement reaching another app's private table."""
        compiled = getattr(context, "compiled", None)
        if compiled is None or conn.get_execution_options().get(NO_CONTEXT):
            return sql, params
        try:
            app = current_app()
        except NotInitializedError:
            return sql, params
        if app == PLATFORM:
            return sql, params
        memo = compiled.__dict__
        passed = memo.get("_timber_passed")  # the apps this compiled statement was already checked for
        if passed is not None and app in passed:
            return sql, params
        tables = memo.get("_timber_tables")
        if tables is None:
            tables = memo["_timber_tables"] = self._tables_of(compiled)
        write = getattr(compiled, "isinsert", False) or getattr(compiled, "isupdate", False) or getattr(
            compiled, "isdelete", False)
        for name in tables:
            spec = self.tables.get(name)
            if spec is not None and spec.app != KERNEL_APP:
                self.check_model(spec, app, "write" if write else "query")
        memo["_timber_passed"] = (passed or frozenset()) | {app}
        return sql, params

    # Kernel statements on kernel tables always pass this guard, so the driver-level path of the
    # shared services (DatabaseManager._run_kernel_statement), which dispatches no events, may skip it.
    _on_cursor.timber_passes_kernel_statements = True  # type: ignore[attr-defined]

    @staticmethod
    def _tables_of(compiled: Any) -> tuple[str, ...]:
        """The names of every table the compiled statement's SQL reaches (joins, eager loads, subqueries)."""
        state = getattr(compiled, "compile_state", None)
        statement = getattr(state, "statement", None)
        if statement is None:
            statement = compiled.statement
        if statement is None:
            return ()
        names: set[str] = set()
        for found in find_tables(statement, include_aliases=True, include_crud=True):
            while isinstance(found, Alias):
                found = found.element
            if isinstance(found, Table):
                names.add(found.name)
        return tuple(sorted(names))

    def _on_execute(self, state: ORMExecuteState) -> None:
        app = current_app()
        if app == PLATFORM:
            return
        for mapper in state.all_mappers:
            spec = _spec(mapper.class_)
            if spec is not None:
                self.check_model(spec, app, "query")
        if (state.is_insert or state.is_update) and self.typed:
            self._check_write(state, app)
        if (state.is_insert or state.is_update) and self.owned:
            self._check_owner_write(state, app)
        if self.owned and (state.is_select or state.is_update or state.is_delete):
            user = current_user()
            state.statement = state.statement.options(*self._owner_criteria())
            if state.is_column_load:
                mapped = {m.class_ for m in state.all_mappers}
                for cls, column, _ in self.owned:
                    if cls in mapped:
                        state.statement = state.statement.where(false() if user is None else column == user)
        if self.typed and (state.is_select or state.is_update or state.is_delete):
            own = sorted(self.apps.session_types_of(app))
            state.statement = state.statement.options(
                *[
                    with_loader_criteria(cls, column.in_(own), include_aliases=True)
                    for cls, column, _ in self.typed
                ]
            )
            if state.is_column_load:
                # A refresh or an expired attribute's load (of an object loaded in another
                # context, say the platform's) does not take loader criteria: filter it here.
                mapped = {m.class_ for m in state.all_mappers}
                for cls, column, _ in self.typed:
                    if cls in mapped:
                        state.statement = state.statement.where(column.in_(own))

    def _check_write(self, state: ORMExecuteState, app: str) -> None:
        """Refuse an ORM insert/update setting a type the app does not own, and upserts on typed tables."""
        typed = {cls: name for cls, _, name in self.typed}
        statement = state.statement
        for mapper in state.all_mappers:
            name = typed.get(mapper.class_)
            if name is None:
                continue
            if type(getattr(statement, "_post_values_clause", None)).__name__ == "OnConflictDoUpdate":
                spec = _spec(mapper.class_)
                raise IsolationError(
                    f"app {app!r} may not upsert (INSERT ... ON CONFLICT) into shared table "
                    f"{spec.table_name!r} (model {spec.name!r}): the conflicting row may belong to another "  # type: ignore[union-attr]
                    f"app. Insert new rows and update your own with UPDATE"
                )
            verb = "create" if state.is_insert else "change"
            what = "a session of type" if state.is_insert else "a session to type"
            refusal = (f"app {app!r} may not set {name!r} of model {mapper.class_.__name__!r} from an SQL "
                       f"expression: give the type as a value, one of the app's own types")
            for value in _written_values(state, name, refusal):
                self.check_type(value, app, verb, what)

    def _check_owner_write(self, state: ORMExecuteState, app: str) -> None:
        """Refuse an ORM insert/update (``insert(Model).values(...)``, bulk) writing another user's row."""
        owned = {cls: name for cls, _, name in self.owned}
        for mapper in state.all_mappers:
            name = owned.get(mapper.class_)
            if name is None:
                continue
            spec = _spec(mapper.class_)
            assert spec is not None
            refusal = (f"app {app!r} may not set {name!r} of model {spec.name!r} from an SQL expression: "
                       f"give the acting user's id as a value")
            for value in _written_values(state, name, refusal):
                self.check_owner(spec, value, app, "create" if state.is_insert else "change")

    def _on_flush(self, session: Session, _ctx: Any, _instances: Any) -> None:
        app = current_app()
        if app == PLATFORM:
            return
        for verb, objects in (("create", session.new), ("change", session.dirty), ("delete", session.deleted)):
            for obj in objects:
                spec = _spec(type(obj))
                if spec is None:
                    continue
                self.check_model(spec, app, verb)
                if spec.typed_by:
                    self.check_type(getattr(obj, attribute_name(spec.typed_by)), app, verb)
                if spec.owned_by:
                    self.check_owner(spec, getattr(obj, attribute_name(spec.owned_by)), app, verb)


def _statement_rows(statement: Any) -> list[dict[str, Any]]:
    """The rows of an insert's or update's ``values()``, keyed by column name."""
    rows: list[dict[str, Any]] = []
    values = getattr(statement, "_values", None)
    ordered = getattr(statement, "_ordered_values", None)
    if values:
        rows.append({getattr(k, "key", k): v for k, v in values.items()})
    if ordered:
        rows.append({getattr(k, "key", k): v for k, v in ordered})
    for batch in getattr(statement, "_multi_values", ()) or ():
        for row in batch:
            if isinstance(row, dict):
                rows.append({getattr(k, "key", k): v for k, v in row.items()})
    return rows


def _written_values(state: ORMExecuteState, name: str, refusal: str) -> Iterator[Any]:
    """Yield the value each row of an ORM insert or update writes into column ``name``.

    An insert that leaves the column out yields None; an update that leaves it out yields
    nothing. A value given as an SQL expression cannot be checked: raise IsolationError(refusal).
    """
    keys = (attribute_name(name), name)
    rows = _statement_rows(state.statement)
    params = state.parameters
    if state.is_insert or isinstance(params, list):
        rows += params if isinstance(params, list) else [params] if params else []
    if state.is_insert and not rows:
        rows = [{}]
    for row in rows:
        present = [k for k in keys if k in row]
        if state.is_update and not present:
            continue
        value = row.get(present[0]) if present else None
        if isinstance(value, BindParameter):
            value = value.effective_value
        elif value is not None and type(value).__module__.startswith("sqlalchemy"):
            raise IsolationError(refusal)
        yield value

