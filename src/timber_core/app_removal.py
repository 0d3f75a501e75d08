"""Removing one installed app's data from a database (``timber apps remove``), the others untouched.

:func:`plan_removal` reads what the app has (nothing changes); :func:`remove_app` takes
it away, in this order, each step idempotent, so that a run killed between any two steps
leaves a state from which the next run completes the job:

1. **downgrade the app's branch to base** (:func:`timber_core.migrations.runner.downgrade`:
   one transaction under the migration lock): its tables, grants and policies go. First,
   because the app's tables may reference rows of the shared tables (a foreign key to
   ``sessions``) that step 2 deletes. An app without revisions has its tables dropped.
2. **delete its rows from the shared tables** in one transaction, in the platform
   context: ``sessions`` of its session types (or stamped with it in ``app_name``),
   ``notifications`` and ``events`` stamped with it, its vector-outbox rows. Every kernel
   table that records the owning app (``app_name``, or ``app`` for the outbox) is covered.
3. **drop its vector collections** (one per vector-enabled model, named after its table),
   holding the drain lock. No drain can write a point of the app afterwards: its outbox
   rows and its tables are gone.

The app's PostgreSQL role is left in place: roles belong to the whole server and other
databases may use it. :attr:`RemovalPlan.role_sql` is the SQL to drop it once none does.

The app must still be installed (its migrations say how to take its tables down); it
can be uninstalled afterwards. Removal is refused, before anything changes, while
another loaded app depends on it (``depends`` in its ``timber_app_info``, or applied
revisions that depend on the app's).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, inspect, or_, select, text

from .apps import KERNEL_APP
from .context import platform_context
from .errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

__all__ = ["RemovalPlan", "plan_removal", "remove_app"]

log = logging.getLogger("timber.migrations")

#: Columns of the kernel's tables that record the app a row belongs to.
_APP_COLUMNS = ("app_name", "app")


@dataclasses.dataclass
class RemovalPlan:
    """What removing ``app`` from ``database`` takes away (see the module docstring for the order).

    ``revisions``: the app's applied revisions, newest first (empty: its branch is at base).
    ``tables``: its tables present in the database and their rows. ``shared_rows``: its
    rows per shared table (tables with none are left out). ``collections``: its vector
    collections present in the store and their points. ``role``: its PostgreSQL role (None
    on SQLite). ``refusals``: why it cannot be removed now (empty: it can).
    """

    app: str
    distribution: str
    version: str
    database: str
    session_types: list[str]
    revisions: list[str]
    tables: dict[str, int]
    shared_rows: dict[str, int]
    collections: dict[str, int]
    role: str | None
    refusals: list[str]

    @property
    def empty(self) -> bool:
        """True when nothing of the app is left in the database or the vector store."""
        return not (self.revisions or self.tables or self.shared_rows or self.collections)

    @property
    def role_sql(self) -> list[str]:
        """The statements that drop the app's role, to run once no database on the server uses it."""
        if self.role is None:
            return []
        role = '"' + self.role.replace('"', '""') + '"'
        return [f"DROP OWNED BY {role};", f"DROP ROLE {role};"]

    def refusal(self) -> str:
        """The one-line reason removal is refused (empty when it is not)."""
        if not self.refusals:
            return ""
        return f"app {self.app!r} cannot be removed: " + "; ".join(self.refusals)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["role_sql"] = self.role_sql
        return data

    def describe(self) -> list[str]:
        """The plan as lines for a person: what goes, what stays."""
        def counted(items: dict[str, int], unit: str) -> str:
            return ", ".join(f"{name} ({n} {unit}{'' if n == 1 else 's'})" for name, n in items.items()) or "none"

        lines = [f"removing app {self.app!r} ({self.distribution} {self.version}) from {self.database}:",
                 f"  revisions to downgrade: {', '.join(self.revisions) or 'none'}",
                 f"  tables to drop: {counted(self.tables, 'row')}",
                 f"  rows to delete from shared tables: {counted(self.shared_rows, 'row')}"
                 f" (session types: {', '.join(self.session_types) or 'none'})",
                 f"  vector collections to drop: {counted(self.collections, 'point')}"]
        if self.role is not None:
            lines.append(f"  role {self.role}: kept (roles belong to the whole PostgreSQL server); "
                         f"the SQL to drop it is printed at the end")
        return lines


def plan_removal(kernel: Kernel, app: str) -> RemovalPlan:
    """Return what removing installed app ``app`` takes away; change nothing.

    Raise ConfigurationError for the kernel itself; NotFoundError or PluginError (from the
    registry) for an app that is not installed and loaded.
    """
    if app == KERNEL_APP:
        raise ConfigurationError("the kernel ('timber') cannot be removed; remove apps one at a time")
    the_app = kernel.apps.require_loaded(app)
    revisions = _applied_revisions(kernel, app)
    return RemovalPlan(
        app=app,
        distribution=the_app.distribution,
        version=the_app.version,
        database=kernel.db.display_url,
        session_types=sorted(the_app.session_types),
        revisions=revisions,
        tables=_own_tables(kernel, app),
        shared_rows=_shared_rows(kernel, app),
        collections=_collections(kernel, app),
        role=_role(kernel, app),
        refusals=_refusals(kernel, app),
    )


#: Told each step as it is done (one line for a person).
OnStep = Callable[[str], None]


def _log_wait(message: str) -> None:
    log.warning("%s", message)


def remove_app(kernel: Kernel, plan: RemovalPlan, on_step: OnStep | None = None,
               on_wait: OnStep | None = None) -> None:
    """Take away everything ``plan`` lists, in the order of the module docstring.

    Raise ConfigurationError, changing nothing, when the plan has refusals (or a dependent
    app appeared since it was made). Safe to run again after an interruption: each step
    does only what is left. ``on_step`` is told each step done; ``on_wait`` once if another
    process is migrating the database.
    """
    say = on_step or (lambda _line: None)
    if plan.refusals:
        raise ConfigurationError(plan.refusal())
    app = plan.app
    if plan.revisions:
        from .migrations.runner import downgrade

        try:
            downgrade(kernel, app, "base", on_wait=on_wait)
        except ConfigurationError:
            refusals = _refusals(kernel, app)  # an app migrated since the plan: say it the removal's way
            if refusals:
                raise ConfigurationError(dataclasses.replace(plan, refusals=refusals).refusal()) from None
            raise
        say(f"downgraded app {app!r} to base ({', '.join(plan.revisions)})")
    elif plan.tables:
        _drop_tables(kernel, list(plan.tables), on_wait)
    if plan.tables:
        say(f"dropped its tables: {', '.join(plan.tables)}")
    if plan.shared_rows:
        deleted = _delete_shared_rows(kernel, app)
        say("deleted its rows from the shared tables: "
            + ", ".join(f"{table} {n}" for table, n in deleted.items()))
    if plan.collections:
        dropped = _drop_collections(kernel, app)
        say(f"dropped its vector collections: {', '.join(dropped) or 'none (already gone)'}")


# -- reading ------------------------------------------------------------------------------------


def _script(kernel: Kernel) -> Any:
    from .migrations.config import script_directory

    return script_directory(kernel)


def _applied(kernel: Kernel, script: Any) -> set[str]:
    from .migrations.runner import current_heads

    heads = current_heads(kernel)
    return {r.revision for r in script.iterate_revisions(heads, "base")} if heads else set()


def _applied_revisions(kernel: Kernel, app: str) -> list[str]:
    script = _script(kernel)
    applied = _applied(kernel, script)
    return [r.revision for r in script.walk_revisions() if app in r.branch_labels and r.revision in applied]


def _own_tables(kernel: Kernel, app: str) -> dict[str, int]:
    """The app's tables present in the database, with their rows (read in the platform context)."""
    existing = _existing_tables(kernel)
    names = [m.table_name for m in kernel.models_of(app) if m.table_name in existing]
    counts: dict[str, int] = {}
    with platform_context(), kernel.db.connection() as conn:
        for name in names:
            counts[name] = int(conn.execute(select(func.count()).select_from(kernel.metadata.tables[name])).scalar_one())
    return counts


def _existing_tables(kernel: Kernel) -> set[str]:
    with kernel.db.admin_connection() as conn:
        return set(inspect(conn).get_table_names())


def _shared_conditions(kernel: Kernel, app: str) -> dict[str, Any]:
    """For each kernel table (present in the database) recording owning apps, the condition matching ``app``'s rows."""
    types = sorted(kernel.apps.session_types_of(app))
    existing = _existing_tables(kernel)
    conditions: dict[str, Any] = {}
    for spec in kernel.models_of(KERNEL_APP):
        if spec.table_name not in existing:
            continue
        table = kernel.metadata.tables[spec.table_name]
        clauses = [table.c[column] == app for column in _APP_COLUMNS if column in table.c]
        if spec.typed_by and types:
            clauses.append(table.c[spec.typed_by].in_(types))
        if clauses:
            conditions[spec.table_name] = or_(*clauses)
    return conditions


def _shared_rows(kernel: Kernel, app: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    with platform_context(), kernel.db.connection() as conn:
        for name, condition in _shared_conditions(kernel, app).items():
            table = kernel.metadata.tables[name]
            n = int(conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one())
            if n:
                counts[name] = n
    return counts


def _vector_collections(kernel: Kernel, app: str) -> list[str]:
    return sorted(m.collection for m in kernel.vectors.models.values() if m.app == app)


def _collections(kernel: Kernel, app: str) -> dict[str, int]:
    names = _vector_collections(kernel, app)
    if not names:
        return {}  # the store is not opened for an app without vector search
    store = kernel.vectors.store
    present = set(store.collections())
    return {name: store.count(name) for name in names if name in present}


def _role(kernel: Kernel, app: str) -> str | None:
    if kernel.db.dialect != "postgresql":
        return None
    from ._roles import app_role

    return app_role(app)


def _refusals(kernel: Kernel, app: str) -> list[str]:
    """Why ``app`` cannot be removed now: loaded apps that depend on it, by ``depends`` or by revisions."""
    reasons = [
        f"app {other.name!r} depends on it (`depends` in its timber_app_info): remove app {other.name!r} first "
        f"(`timber apps remove {other.name}`) and uninstall it"
        for other in kernel.apps.loaded() if app in other.depends
    ]
    script = _script(kernel)
    applied = _applied(kernel, script)
    own = {r.revision for r in script.walk_revisions() if app in r.branch_labels and r.revision in applied}
    if not own:
        return reasons
    for other in kernel.apps.loaded():
        if other.name in (app, KERNEL_APP):
            continue
        theirs = [r for r in script.walk_revisions() if other.name in r.branch_labels and r.revision in applied]
        if theirs and own & {r.revision for r in script.iterate_revisions(theirs[0].revision, "base")}:
            reasons.append(
                f"the applied revisions of app {other.name!r} (at {theirs[0].revision}) depend on its revisions: "
                f"remove app {other.name!r} first (`timber apps remove {other.name}`)"
            )
    return reasons


# -- changing -----------------------------------------------------------------------------------


def _drop_tables(kernel: Kernel, names: list[str], on_wait: OnStep | None) -> None:
    """Drop the tables of an app that has no revisions (created by ``create_all``), in one transaction."""
    from .migrations.lock import migration_lock
    from .migrations.transaction import migration_connection

    tables = [kernel.metadata.tables[n] for n in names]
    with migration_lock(kernel.db, timeout=kernel.config.MIGRATION_LOCK_TIMEOUT, on_wait=on_wait or _log_wait):
        with migration_connection(kernel.db) as conn:
            kernel.metadata.drop_all(conn, tables=tables, checkfirst=True)


def _delete_shared_rows(kernel: Kernel, app: str) -> dict[str, int]:
    """Delete ``app``'s rows from every shared table in one transaction; return the rows deleted per table."""
    deleted: dict[str, int] = {}
    with platform_context(), kernel.db.connection() as conn:
        if kernel.db.dialect == "postgresql":
            # An app's years of events can take longer than TIMBER_STATEMENT_TIMEOUT_MS to delete; a
            # timeout would roll back every time, and the removal could never complete.
            conn.execute(text("SELECT set_config('statement_timeout', '0', true)"))
        for name, condition in _shared_conditions(kernel, app).items():
            n = conn.execute(delete(kernel.metadata.tables[name]).where(condition)).rowcount
            if n:
                deleted[name] = int(n)
    return deleted


def _drop_collections(kernel: Kernel, app: str) -> list[str]:
    """Drop ``app``'s vector collections that exist, holding the drain lock; return those dropped."""
    runtime = kernel.vectors
    dropped: list[str] = []
    with runtime.exclusive():
        present = set(runtime.store.collections())
        for name in _vector_collections(kernel, app):
            if name in present:
                runtime.store.drop_collection(name)
                dropped.append(name)
            runtime.forget_collection(name)
    return dropped
