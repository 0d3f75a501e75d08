"""``create-migration``: a revision for one app, from the difference between its models and the database.

The schema part is Alembic's autogenerate limited to the tables the app owns;
the security part is :func:`timber_core.migrations.security.diff` between the
snapshot of the app's head revision and what the registry asks now, rendered as
``tops.<op>(...)`` calls. Nothing of another app (tables, roles, policies) is
ever compared, so nothing of it can be dropped or changed.
"""

from __future__ import annotations

import os
import pprint
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.autogenerate import renderers
from alembic.operations.ops import MigrateOperation, MigrationScript
from alembic.script import Script, ScriptDirectory

from ..apps import KERNEL_APP
from ..errors import ConfigurationError
from . import security
from .config import make_config

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["create_migration", "app_head", "head_snapshot", "TimberCall"]


class TimberCall(MigrateOperation):
    """One call of :mod:`timber_core.migrations.ops`, rendered into a revision."""

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        self.name = name
        self.args = args

    def reverse(self) -> MigrateOperation:  # pragma: no cover - we render both directions ourselves
        raise NotImplementedError


@renderers.dispatch_for(TimberCall)
def _render(_autogen_context: Any, call: TimberCall) -> str:
    return f"tops.{call.name}({', '.join(repr(a) for a in call.args)})"


def app_head(script: ScriptDirectory, app: str) -> Script | None:
    """Return the head revision of ``app``'s branch, or None when it has no revision yet."""
    mine = {r.revision: r for r in script.walk_revisions() if app in r.branch_labels}
    if not mine:
        return None
    # A revision another branch depends on is not one of alembic's "heads", so find the tips ourselves.
    tips = [r for r in mine.values() if not any(n in mine for n in r.nextrev)]
    if len(tips) != 1:
        raise ConfigurationError(
            f"app {app!r} has {len(tips)} heads in its migrations ({', '.join(h.revision for h in tips)}); "
            f"merge them (alembic merge) before creating another revision"
        )
    return tips[0]


def head_snapshot(script: ScriptDirectory, app: str) -> dict[str, Any]:
    """Return the ``timber_security`` of ``app``'s head revision (empty when it has none)."""
    head = app_head(script, app)
    if head is None:
        return security.empty(app)
    snap = getattr(head.module, "timber_security", None)
    if not isinstance(snap, dict):
        raise ConfigurationError(
            f"revision {head.revision} of app {app!r} ({head.path}) has no timber_security snapshot; "
            f"add `timber_security = ...` as create-migration writes it, describing the roles and policies "
            f"its migrations set up"
        )
    return security.copy_snapshot(snap)


def _refuse_taken(script: ScriptDirectory, rev_id: str) -> None:
    """Refuse a revision id the graph already has: Alembic would write a second file and break the graph."""
    taken = next((r for r in script.walk_revisions() if r.revision == rev_id), None)
    if taken is not None:
        raise ConfigurationError(
            f"revision id {rev_id!r} is already used by {taken.path}; choose another --rev-id "
            f"(e.g. <app>_<next number>) or leave it out for a random one"
        )


def _refuse_pending(script: ScriptDirectory, state: Any) -> None:
    """Raise ConfigurationError naming every head not applied: autogenerate compares with a migrated database."""
    from .applied import wanted_heads

    pending = sorted(wanted_heads(script, state) - state.applied(script))
    if pending:
        apps = ", ".join(f"{_app_of(script, h)} ({h})" for h in pending)
        raise ConfigurationError(
            f"the database is not at every head: not applied yet: {apps}. "
            f"create-migration compares the models with a migrated database: run `timber migrate` first"
        )


def _app_of(script: ScriptDirectory, revision: str) -> str:
    rev = script.get_revision(revision)
    return sorted(rev.branch_labels)[0] if rev is not None and rev.branch_labels else revision


def create_migration(kernel: Kernel, message: str, app: str, *, rev_id: str | None = None) -> str | None:
    """Write ``app``'s next revision into its migrations directory; return its path, or None if nothing changed.

    The database must be at every head (``timber migrate`` first). The app's first
    revision gets ``branch_labels=(app,)`` and ``depends_on`` the kernel's head.
    ``rev_id`` names the revision (its file is ``<rev_id>_<message as a slug>.py``);
    without it Alembic picks 12 random hex digits. An id already in the graph (any
    app's) raises ConfigurationError. Column types are written as Timber's own
    (:mod:`.rendering`), so the file runs on SQLite and PostgreSQL alike.
    """
    the_app = kernel.apps.require_loaded(app)
    if not the_app.migrations_dir:
        raise ConfigurationError(
            f"app {app!r} ({the_app.distribution}) has no migrations directory; return one from its "
            f"timber_migrations_dir() hook"
        )
    os.makedirs(the_app.migrations_dir, exist_ok=True)
    cfg = make_config(kernel)
    script = ScriptDirectory.from_config(cfg)
    if rev_id is not None:
        _refuse_taken(script, rev_id)
    head = app_head(script, app)
    source = head_snapshot(script, app)
    target = security.desired(kernel, app)
    up_calls = security.diff(source, target)
    down_calls = security.diff(target, source)
    kwargs: dict[str, Any] = {}
    if head is None:
        kwargs.update(head="base", branch_label=app)
        if app != KERNEL_APP:
            kernel_head = app_head(script, KERNEL_APP)
            if kernel_head is None:
                raise ConfigurationError(
                    f"the kernel has no revision yet, so app {app!r} has nothing to depend on; "
                    f"create the kernel's first (create-migration --app {KERNEL_APP})"
                )
            kwargs["depends_on"] = kernel_head.revision
    else:
        kwargs["head"] = head.revision
    written: dict[str, bool] = {}

    def process(_context: Any, _revision: Any, directives: list[MigrationScript]) -> None:
        ms = directives[0]
        up, down = ms.upgrade_ops, ms.downgrade_ops
        assert up is not None and down is not None
        if up.is_empty() and not up_calls:
            directives[:] = []
            return
        up.ops.extend(TimberCall(n, a) for n, a in up_calls)
        down.ops.extend(TimberCall(n, a) for n, a in down_calls)
        written["yes"] = True

    with kernel.db.admin_connection() as conn:
        from .applied import read, set_rows

        state = read(kernel, script, conn)
        _refuse_pending(script, state)
        # Alembic compares alembic_version with the graph: give it the known heads only (revisions
        # of apps not installed are set aside), in a savepoint rolled back below, so nothing is written.
        nested = conn.begin_nested() if state.unknown else None
        try:
            if nested is not None:
                set_rows(conn, state.heads)
            cfg = make_config(
                kernel,
                connection=conn,
                timber_app=app,
                timber_app_tables=sorted(source["tables"]),  # a table whose model was removed is dropped
                timber_security=pprint.pformat(target, indent=4, width=100, sort_dicts=True),
                process_revision_directives=process,
            )
            scripts = command.revision(
                cfg,
                message=message,
                autogenerate=True,
                version_path=os.path.abspath(the_app.migrations_dir),
                rev_id=rev_id,
                **kwargs,
            )
        finally:
            if nested is not None:
                nested.rollback()
    if not written:
        return None
    result = scripts[0] if isinstance(scripts, list) else scripts
    return None if result is None else str(result.path)
