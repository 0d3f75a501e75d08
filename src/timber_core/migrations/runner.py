"""Upgrade, downgrade, status and check of the one graph, for a kernel.

Every function runs without app context (the login of ``DATABASE_URL`` itself,
which for migrations on PostgreSQL must be a superuser or the database owner with
CREATEROLE; see docs/isolation.md). Whatever changes the schema (``upgrade``,
``downgrade``, ``ensure_schema``) holds the migration lock (:mod:`.lock`: one
migration at a time per database, across processes), reads the database's state
only once it holds it, and runs in one transaction (:mod:`.transaction`: a process
killed halfway leaves the database as it was).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..apps import KERNEL_APP
from ..errors import ConfigurationError
from . import security, unrecorded
from .autogen import app_head, head_snapshot
from .config import make_config
from .lock import migration_lock
from .transaction import migration_connection

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["upgrade", "downgrade", "status", "check", "AppStatus", "migrated_apps", "current_heads", "ensure_schema"]

log = logging.getLogger("timber.migrations")

#: Told once that this process waits for another one's migration (default: a warning in the log).
OnWait = Callable[[str], None]


def _log_wait(message: str) -> None:
    log.warning("%s", message)


@contextlib.contextmanager
def _migrating(kernel: Kernel, on_wait: OnWait | None) -> Iterator[Any]:
    """Hold the migration lock, then yield a connection in the one transaction of the migration."""
    timeout = kernel.config.MIGRATION_LOCK_TIMEOUT
    with migration_lock(kernel.db, timeout=timeout, on_wait=on_wait or _log_wait):
        with migration_connection(kernel.db) as conn:
            yield conn


def migrated_apps(kernel: Kernel) -> list[str]:
    """Return the loaded apps that have a revision, kernel first."""
    script = ScriptDirectory.from_config(make_config(kernel))
    return [a.name for a in kernel.apps.loaded() if app_head(script, a.name) is not None]


def upgrade(
    kernel: Kernel,
    app: str | None = None,
    *,
    sql: bool = False,
    drop_unrecorded: bool = False,
    on_wait: OnWait | None = None,
) -> str | None:
    """Upgrade to every head, or to ``app``'s head (with what it depends on).

    With ``sql=True`` nothing is run: return the SQL of an upgrade from an empty database.
    Raise ConfigurationError, changing nothing, when the database has tables with no
    recorded revision (see :mod:`.unrecorded`); with ``drop_unrecorded`` drop them
    first if they hold no rows. ``on_wait`` is told once if another process is migrating.
    """
    target = "heads" if app is None else f"{_branch(kernel, app)}@head"
    if sql:
        buf = io.StringIO()
        command.upgrade(make_config(kernel, output=buf), target, sql=True)
        return buf.getvalue()
    with _migrating(kernel, on_wait) as conn:
        leftovers = unrecorded.find(kernel, conn)
        if leftovers:
            if not drop_unrecorded:
                raise ConfigurationError(unrecorded.describe(kernel, leftovers))
            unrecorded.drop(kernel, conn, leftovers)
        command.upgrade(make_config(kernel, connection=conn), target)
    return None


def downgrade(kernel: Kernel, app: str, revision: str, *, with_dependents: bool = False,
              on_wait: OnWait | None = None) -> list[str]:
    """Downgrade ``app``'s branch to ``revision`` (a revision id, ``base`` or ``-N``).

    Alembic would also take down every other app whose applied revisions depend on a
    revision being removed (the kernel's first revision, for every app): that is refused
    with ConfigurationError naming those apps and the command for each, unless
    ``with_dependents`` (``timber downgrade --all``). Return the other apps taken down.
    Raise ConfigurationError for a revision that is not on the app's branch.
    ``on_wait`` is told once if another process is migrating.
    """
    branch = _branch(kernel, app)
    script = ScriptDirectory.from_config(make_config(kernel))
    if revision == "base" or revision.startswith("-"):
        target = f"{branch}@{revision}"
    else:
        try:
            rev = script.get_revision(revision)
        except Exception as exc:
            raise ConfigurationError(f"downgrade --app {app}: {exc}") from None
        if rev is None or branch not in rev.branch_labels:
            raise ConfigurationError(
                f"downgrade --app {app}: revision {revision!r} is not on app {app!r}'s branch; "
                f"see `timber migrations status` for its revisions"
            )
        target = rev.revision
    with _migrating(kernel, on_wait) as conn:
        dependents = _dependents(kernel, script, conn, app, revision)
        if dependents and not with_dependents:
            raise ConfigurationError(_dependents_refusal(app, revision, dependents))
        command.downgrade(make_config(kernel, connection=conn), target)
    return [name for name, _current, _to in dependents]


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _ancestors(script: ScriptDirectory, revision: Any) -> set[str]:
    """Every revision ``revision`` needs applied: its down revisions and ``depends_on``, transitively."""
    seen: set[str] = set()
    stack = [revision]
    while stack:
        current = stack.pop()
        for name in _as_tuple(current.down_revision) + _as_tuple(current.dependencies):
            try:
                parent = script.get_revision(name)
            except Exception:  # a symbolic dependency Alembic cannot resolve alone: nothing to follow
                continue
            if parent is not None and parent.revision not in seen:
                seen.add(parent.revision)
                stack.append(parent)
    return seen


def _dependents(kernel: Kernel, script: ScriptDirectory, conn: Any, app: str, revision: str) -> list[tuple[str, str, str]]:
    """The other apps a downgrade of ``app`` to ``revision`` would take down: (app, current, how far down)."""
    heads = MigrationContext.configure(conn).get_current_heads()
    if not heads:
        return []
    applied = {r.revision for r in script.iterate_revisions(heads, "base")}

    def applied_branch(name: str) -> list[Any]:  # newest first
        return [r for r in script.walk_revisions() if name in r.branch_labels and r.revision in applied]

    own = applied_branch(app)
    if revision == "base":
        removed = own
    elif revision.startswith("-"):
        removed = own[:int(revision[1:])]
    else:
        ids = [r.revision for r in own]
        removed = own[:ids.index(revision)] if revision in ids else []
    removed_ids = {r.revision for r in removed}
    if not removed_ids:
        return []
    found = []
    for other in kernel.apps.loaded():
        if other.name == app:
            continue
        revisions = applied_branch(other.name)
        hit = next((r for r in reversed(revisions) if _ancestors(script, r) & removed_ids), None)
        if hit is None:
            continue
        own_ids = {r.revision for r in revisions}
        down = _as_tuple(hit.down_revision)
        to = down[0] if len(down) == 1 and down[0] in own_ids else "base"
        found.append((other.name, revisions[0].revision, to))
    return found


def _dependents_refusal(app: str, revision: str, dependents: list[tuple[str, str, str]]) -> str:
    apps = " and ".join(f"app {name!r} (at {current})" for name, current, _to in dependents)
    commands = ", ".join(f"`timber downgrade --app {name} {to}`" for name, _current, to in dependents)
    one = len(dependents) == 1
    return (f"downgrade --app {app} {revision} would also take down {apps}: {'its' if one else 'their'} revisions "
            f"depend on what it removes. Take {'it' if one else 'them'} down first ({commands}), or pass --all to "
            f"take {'it' if one else 'them'} down with it")


def _branch(kernel: Kernel, app: str) -> str:
    kernel.apps.require_loaded(app)
    script = ScriptDirectory.from_config(make_config(kernel))
    if app_head(script, app) is None:
        raise ConfigurationError(
            f"app {app!r} has no migrations yet; create its first with "
            f"`timber create-migration \"initial\" --app {app}`"
        )
    return app


def current_heads(kernel: Kernel) -> tuple[str, ...]:
    """Return the revisions recorded in ``alembic_version`` (empty for a new database)."""
    with kernel.db.admin_connection() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


@dataclasses.dataclass
class AppStatus:
    """Where one app's branch stands: the applied revision, the head and what is pending."""

    app: str
    current: str | None
    head: str | None
    pending: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def status(kernel: Kernel) -> list[AppStatus]:
    """Return the status of every loaded app's branch, kernel first."""
    script = ScriptDirectory.from_config(make_config(kernel))
    heads = current_heads(kernel)
    applied = {r.revision for r in script.iterate_revisions(heads, "base")} if heads else set()
    result = []
    for app in kernel.apps.loaded():
        tip = app_head(script, app.name)
        branch = [r for r in script.walk_revisions() if app.name in r.branch_labels]
        current = next((r.revision for r in branch if r.revision in applied), None)  # walk is newest first
        pending = [r.revision for r in reversed(branch) if r.revision not in applied]
        result.append(AppStatus(app.name, current, None if tip is None else tip.revision, pending))
    return result


def check(kernel: Kernel) -> list[str]:
    """Return every disagreement between the models and the database (empty when clean).

    Compares the tables of every loaded app with the database, each app's roles and
    policies with its head revision's snapshot, and lists pending revisions and apps
    without any revision. Tables with no recorded revision (a half-applied migration)
    are the one problem reported then: every other difference follows from them.
    """
    with kernel.db.admin_connection() as conn:
        leftovers = unrecorded.find(kernel, conn)
    if leftovers:
        return [unrecorded.describe(kernel, leftovers)]
    problems: list[str] = []
    script = ScriptDirectory.from_config(make_config(kernel))
    for st in status(kernel):
        if st.head is None:
            if kernel.models_of(st.app):
                problems.append(
                    f"app {st.app!r} has tables but no migrations: run "
                    f"`timber create-migration \"initial\" --app {st.app}`"
                )
            continue
        if st.pending:
            problems.append(
                f"app {st.app!r}: {len(st.pending)} revision(s) not applied ({', '.join(st.pending)}): "
                f"run `timber migrate`"
            )
        calls = security.diff(head_snapshot(script, st.app), security.desired(kernel, st.app))
        if calls:
            steps = "; ".join(f"{n}{a!r}" for n, a in calls)
            problems.append(
                f"app {st.app!r}: roles/policies differ from its migrations ({steps}): run "
                f"`timber create-migration \"...\" --app {st.app}`"
            )
    with kernel.db.admin_connection() as conn:
        known = {t.name for t in kernel.metadata.sorted_tables}

        def include_name(name: str | None, type_: str, _parents: Any) -> bool:
            return name in known if type_ == "table" else True

        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name, "target_metadata": kernel.metadata}
        )
        for change in compare_metadata(ctx, kernel.metadata):
            owner = _owner_of_change(kernel, change)
            problems.append(
                f"app {owner!r}: the database differs from the models: {_describe(change)}: run "
                f"`timber create-migration \"...\" --app {owner}` then `timber migrate`"
            )
    return problems


def _owner_of_change(kernel: Kernel, change: Any) -> str:
    """Return the app owning the table an Alembic diff entry is about (the kernel when unknown)."""
    diff = change[0] if isinstance(change, list) else change
    known = {t.name for t in kernel.metadata.sorted_tables}
    for item in diff[1:]:
        if isinstance(item, str) and item in known:
            return kernel.table_owner(item)
        table = item if hasattr(item, "columns") and hasattr(item, "name") else getattr(item, "table", None)
        if table is not None and getattr(table, "name", None) in known:
            return kernel.table_owner(table.name)
    return KERNEL_APP


def _describe(change: Any) -> str:
    """Say one Alembic diff entry as ``<kind> <table>[.<column>|: <index>]``."""
    diff = change[0] if isinstance(change, list) else change
    kind = str(diff[0])
    if kind in ("add_table", "remove_table"):
        return f"{kind} {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {diff[2]}.{diff[3].name}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return f"{kind} {diff[1].table.name}: {diff[1].name}"
    if kind.startswith("modify_"):
        return f"{kind} {diff[2]}.{diff[3]}"
    return kind


def _complete(kernel: Kernel) -> bool:
    """Whether the database records every head of the graph and has every table of the registry."""
    from sqlalchemy import inspect

    script = ScriptDirectory.from_config(make_config(kernel))
    with kernel.db.admin_connection() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
        existing = set(inspect(conn).get_table_names())
    return heads == set(script.get_heads()) and set(kernel.metadata.tables) <= existing


def ensure_schema(kernel: Kernel) -> None:
    """Bring the database to every head, then create the tables of apps that have no revision.

    This is what ``initialize_timber`` does when ``create_tables`` is on (the default on
    SQLite): the embedded database goes through the same revisions as PostgreSQL
    (batch mode; roles and RLS are skipped there). Apps without a migrations
    directory or revision (e.g. an app given only ``model_config_dirs``) get
    ``create_all`` for their own tables. A database that already has Timber's tables
    but no ``alembic_version`` (made before migrations existed) is left to
    ``create_all`` too, with a warning, rather than failing on existing tables. Any
    other table without its app's revision recorded raises ConfigurationError with the
    fix (see :mod:`.unrecorded`).

    Several processes starting at once on a new database is safe: they take turns
    under the migration lock, and each reads the database only once it holds it, so
    the later ones find the work done. A waiting process logs a warning once. A
    database already at every head with every table (the usual start) is only read:
    no lock, no write transaction.
    """
    from sqlalchemy import inspect

    if _complete(kernel):
        return
    migrated = set(migrated_apps(kernel))
    with _migrating(kernel, None) as conn:
        existing = set(inspect(conn).get_table_names())
        heads = MigrationContext.configure(conn).get_current_heads()
        legacy = not heads and any(
            m.table_name in existing for m in kernel.schema.models if m.app in migrated
        )
        if legacy:
            log.warning(
                "timber: %s has Timber tables but no alembic_version (created before migrations); "
                "creating missing tables directly. Start from a new database to use the migrations.",
                kernel.db.display_url,
            )
        elif migrated:
            leftovers = unrecorded.find(kernel, conn)
            if leftovers:  # an app's tables without its revision: upgrading would fail on them
                raise ConfigurationError(unrecorded.describe(kernel, leftovers))
            command.upgrade(make_config(kernel, connection=conn), "heads")
        rest = [
            kernel.metadata.tables[m.table_name]
            for m in kernel.schema.models
            if legacy or m.app not in migrated
        ]
        if rest:
            kernel.metadata.create_all(conn, tables=rest, checkfirst=True)
