"""Upgrade, downgrade, status and check of the one graph, for a kernel.

Every function runs without app context (the login of ``DATABASE_URL`` itself,
which for migrations on PostgreSQL must be a superuser or the database owner with
CREATEROLE; see docs/isolation.md). Whatever changes the schema (``upgrade``,
``downgrade``, ``ensure_schema``) holds the migration lock (:mod:`.lock`: one
migration at a time per database, across processes), reads the database's state
only once it holds it, and runs in one transaction (:mod:`.transaction`: a process
killed halfway leaves the database as it was).

Revisions the database records but the installed code does not have (an app
uninstalled, disabled or broken, or installed in an older version) are set aside
around every Alembic run and filtered out of every read (:mod:`.applied`): the other
apps migrate and start, and :func:`unknown_revisions` says what each such revision is
and what to do. An app whose own recorded revision is unknown while it is installed (a
downgraded distribution) is left out of upgrades: the others still migrate.
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
from sqlalchemy import Table

from ..apps import KERNEL_APP
from ..errors import ConfigurationError
from . import applied, security, unrecorded
from .autogen import app_head, head_snapshot
from .config import make_config
from .lock import migration_lock
from .transaction import migration_connection

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = [
    "upgrade", "downgrade", "status", "check", "AppStatus", "migrated_apps", "current_heads", "ensure_schema",
    "unknown_revisions",
]

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

    Revisions of apps that are not installed are left alone (see :mod:`.applied`); an
    installed app whose applied revision its code lacks is left out, the others upgraded
    (:func:`unknown_revisions` says which); asked for alone (``app``), it raises
    ConfigurationError with the fix.
    """
    target = "heads" if app is None else f"{_branch(kernel, app)}@head"
    if sql:
        buf = io.StringIO()
        command.upgrade(make_config(kernel, output=buf), target, sql=True)
        return buf.getvalue()
    script = ScriptDirectory.from_config(make_config(kernel))
    with _migrating(kernel, on_wait) as conn, applied.set_aside(kernel, script, conn) as state:
        leftovers = unrecorded.find(kernel, conn)
        if leftovers:
            if not drop_unrecorded:
                raise ConfigurationError(unrecorded.describe(kernel, leftovers))
            unrecorded.drop(kernel, conn, leftovers)
        _run_upgrade(kernel, conn, state, app)
    return None


def _run_upgrade(kernel: Kernel, conn: Any, state: applied.Applied, app: str | None) -> None:
    """Upgrade on ``conn`` to every head (or ``app``'s), leaving out the apps older than the database."""
    left_out = applied.excluded_apps(state)
    if app is not None and app in left_out:
        raise ConfigurationError(next(u.message() for u in state.unknown if u.app == app))
    if app is not None:
        command.upgrade(make_config(kernel, connection=conn), f"{app}@head")
    elif not left_out:
        command.upgrade(make_config(kernel, connection=conn), "heads")
    else:  # branch by branch, kernel first, so the app left out is never touched
        for name in migrated_apps(kernel):
            if name not in left_out:
                command.upgrade(make_config(kernel, connection=conn), f"{name}@head")


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
    with _migrating(kernel, on_wait) as conn, applied.set_aside(kernel, script, conn) as state:
        if app in applied.excluded_apps(state):
            raise ConfigurationError(next(u.message() for u in state.unknown if u.app == app))
        dependents = _dependents(kernel, script, state, app, revision)
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


def _dependents(kernel: Kernel, script: ScriptDirectory, state: applied.Applied, app: str,
                revision: str) -> list[tuple[str, str, str]]:
    """The other apps a downgrade of ``app`` to ``revision`` would take down: (app, current, how far down)."""
    if not state.heads:
        return []
    done = state.applied(script)

    def applied_branch(name: str) -> list[Any]:  # newest first
        return [r for r in script.walk_revisions() if name in r.branch_labels and r.revision in done]

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
    """Return the revisions recorded in ``alembic_version`` (empty for a new database), known or not."""
    with kernel.db.admin_connection() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


def _read(kernel: Kernel, script: ScriptDirectory) -> applied.Applied:
    with kernel.db.admin_connection() as conn:
        return applied.read(kernel, script, conn)


def unknown_revisions(kernel: Kernel) -> list[applied.Unknown]:
    """Return the revisions the database records that the installed code does not have.

    Each says (``message()``) its app, the revision and the fix; ``severity`` is "error" for
    an installed app older than the database (left out of migrations, cannot start), else
    "warning" (an app not installed: its tables are left alone).
    """
    return list(_read(kernel, ScriptDirectory.from_config(make_config(kernel))).unknown)


@dataclasses.dataclass
class AppStatus:
    """Where one app's branch stands: the applied revision, the head and what is pending.

    ``version`` is the installed app's version (its distribution's unless its plugin says
    otherwise); ``installed`` is False for an app the database records but that is not
    loaded (``version`` None, ``head`` None). ``problem`` says what is wrong when the
    applied revision is one the installed code does not have.
    """

    app: str
    current: str | None
    head: str | None
    pending: list[str]
    version: str | None = None
    installed: bool = True
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def status(kernel: Kernel) -> list[AppStatus]:
    """Return the status of every loaded app's branch, kernel first, then the apps recorded but not installed."""
    script = ScriptDirectory.from_config(make_config(kernel))
    state = _read(kernel, script)
    done = state.applied(script)
    result = []
    for app in kernel.apps.loaded():
        tip = app_head(script, app.name)
        branch = [r for r in script.walk_revisions() if app.name in r.branch_labels]
        current = next((r.revision for r in branch if r.revision in done), None)  # walk is newest first
        pending = [r.revision for r in reversed(branch) if r.revision not in done]
        ahead = next((u for u in state.unknown if u.installed and u.app == app.name), None)
        if ahead is not None:
            current, pending = ahead.revision, []
        result.append(AppStatus(app.name, current, None if tip is None else tip.revision, pending,
                                app.version or None, True, None if ahead is None else ahead.message()))
    for u in state.unknown:
        if not u.installed:
            result.append(AppStatus(u.app or "?", u.revision, None, [], None, False, u.message()))
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
    status_rows = status(kernel)
    for st in status_rows:
        if not st.installed:
            continue  # a warning, not a disagreement: :func:`unknown_revisions`
        if st.problem is not None:
            problems.append(st.problem)
            continue
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
        left_out = {st.app for st in status_rows if st.problem is not None}
        for change in compare_metadata(ctx, kernel.metadata):
            owner = _owner_of_change(kernel, change)
            if owner in left_out:
                continue  # an app older than the database: its problem is said above, not each column
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
        # An Index or a constraint has .columns and .name too: its table is .table, never itself.
        table = item if isinstance(item, Table) else getattr(item, "table", None)
        if isinstance(table, Table) and table.name in known:
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


def _complete(kernel: Kernel, script: ScriptDirectory) -> bool:
    """Whether the database records every head of the graph and has every table of the registry.

    The heads of apps older than the database (left out of migrations) do not count. Said
    first: each revision the installed code lacks (see :func:`_report_unknown`).
    """
    from sqlalchemy import inspect

    with kernel.db.admin_connection() as conn:
        state = applied.read(kernel, script, conn)
        existing = set(inspect(conn).get_table_names())
    _report_unknown(kernel, state)
    return applied.wanted_heads(script, state) <= state.applied(script) and set(kernel.metadata.tables) <= existing


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

    Revisions of apps that are not installed are logged as warnings and left alone; an
    installed app older than the database (see :mod:`.applied`) is left out with its
    error logged, or raises ConfigurationError when it is the app starting.
    """
    from sqlalchemy import inspect

    script = ScriptDirectory.from_config(make_config(kernel))
    if _complete(kernel, script):
        return
    migrated = {a.name for a in kernel.apps.loaded() if app_head(script, a.name) is not None}
    with _migrating(kernel, None) as conn, applied.set_aside(kernel, script, conn) as state:
        existing = set(inspect(conn).get_table_names())
        heads = state.recorded
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
            _run_upgrade(kernel, conn, state, None)
        rest = [
            kernel.metadata.tables[m.table_name]
            for m in kernel.schema.models
            if legacy or m.app not in migrated
        ]
        if rest:
            kernel.metadata.create_all(conn, tables=rest, checkfirst=True)


def _report_unknown(kernel: Kernel, state: applied.Applied) -> None:
    """Log each revision the installed code lacks; raise ConfigurationError if it is the starting app's."""
    for u in state.unknown:
        if u.installed and u.app == kernel.app_name:
            raise ConfigurationError(u.message())
        log.warning("timber: %s: %s", kernel.db.display_url, u.message())
