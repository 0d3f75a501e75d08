"""An app's database security as data: what the registry wants, and the steps between two states.

A *snapshot* is a plain dict, written into every generated revision as
``timber_security``, describing what the app's migrations have set up once that
revision is applied::

    {"app": "canopy", "role": "timber_canopy",
     "tables": {"orders": {"shared": False}, ...},        # owned by the app, granted
     # (a private table declaring ``owned_by: user_id`` has {"shared": False, "owned_by": "user_id"})
     "rls_tables": {},                                     # own shared typed tables: RLS on
     "restrict": {"sessions": {"column": "session_type", "types": ["paper_trading", "trading"]}},
     "policies": {"canopy_own_sessions": {"table": "sessions", "command": "ALL",
                                          "using": "...", "check": None}}}

Policies are versioned this way, with the tables: ``create-migration`` compares the
snapshot of the app's head revision with :func:`desired` and renders only the
difference, for that app's own role and policies, never another app's.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .._roles import app_role
from ..apps import KERNEL_APP
from ..errors import ConfigurationError
from .ops import restrict_policy_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["Call", "desired", "empty", "diff", "typed_tables", "APPS_INSERT_OWN", "GUARDED", "ADVISORY_LOCKS"]

Snapshot = dict[str, Any]
#: One rendered step: the name of a function of :mod:`timber_core.migrations.ops` and its arguments.
Call = tuple[str, tuple[Any, ...]]


#: Kernel tables the apps may only add rows to, each stamped with the adding app in the named
#: column: apps get INSERT (no SELECT, UPDATE, DELETE) under RLS ``WITH CHECK (<column> = the
#: transaction's app)``; only the platform reads and removes rows. The vector outbox is one:
#: an app records index work in its own transaction but can neither read nor drop another
#: app's pending work (which would leak row and user ids, or lose index updates).
APPS_INSERT_OWN: dict[str, str] = {"timber_vector_outbox": "app"}

#: Shared kernel tables the apps may use only in part, each with the ops call (name and arguments)
#: that sets up its grants and RLS policies (see timber_core.migrations.ops and docs/isolation.md):
#: ``users`` read by all, updated only by the acting user (id never), deleted by no app;
#: ``events`` each app's own; ``notifications`` read by their user from any app, created and
#: deleted only by the app stamped on them, only their read state changed.
GUARDED: dict[str, list[Any]] = {
    "users": ["users_self_update", "id", ["email", "username", "updated_at"]],
    "events": ["apps_own_rows", "app_name"],
    "notifications": ["user_reads_app_writes", "app_name", "user_id", ["is_read", "read_at", "updated_at"]],
}
#: The kernel snapshot's ``advisory_locks``: who may call PostgreSQL's advisory-lock functions.
ADVISORY_LOCKS = "platform"
#: What each guard's undo gives the apps back.
_UNGUARD_PRIVILEGES = {"users_self_update": "UPDATE, DELETE", "user_reads_app_writes": "UPDATE"}


def empty(app: str) -> Snapshot:
    """Return the snapshot of an app with no migrations applied."""
    return {"app": app, "role": None, "tables": {}, "rls_tables": {}, "restrict": {}, "policies": {}}


def typed_tables(kernel: Kernel) -> dict[str, str]:
    """Return every shared, typed table of the registry and its type column."""
    return {m.table_name: m.typed_by for m in kernel.schema.models if m.shared and m.typed_by}


def desired(kernel: Kernel, app: str) -> Snapshot:
    """Return the security state the registry asks of app ``app`` (``"timber"`` for the kernel).

    Raise ConfigurationError for a policy on a table that is not shared and typed,
    or whose name another app's policy already uses on that table.
    """
    the_app = kernel.apps.require_loaded(app)
    typed = typed_tables(kernel)
    snap = empty(app)
    snap["role"] = None if app == KERNEL_APP else app_role(app)
    for spec in kernel.models_of(app):
        snap["tables"][spec.table_name] = {"shared": bool(spec.shared)}
        if app == KERNEL_APP and spec.table_name in APPS_INSERT_OWN:
            snap["tables"][spec.table_name]["apps_insert_own"] = APPS_INSERT_OWN[spec.table_name]
        if app == KERNEL_APP and spec.table_name in GUARDED:
            snap["tables"][spec.table_name]["guard"] = copy.deepcopy(GUARDED[spec.table_name])
        if spec.owned_by:
            snap["tables"][spec.table_name]["owned_by"] = spec.owned_by
        if spec.shared and spec.typed_by:
            snap["rls_tables"][spec.table_name] = spec.typed_by
    if app == KERNEL_APP:
        snap["advisory_locks"] = ADVISORY_LOCKS
        return snap
    for table, column in sorted(typed.items()):
        snap["restrict"][table] = {"column": column, "types": sorted(the_app.session_types)}
    seen: dict[tuple[str, str], str] = {}
    for other in kernel.apps.loaded():
        for pol in other.rls_policies:
            key = (str(pol.get("table")), str(pol.get("name")))
            if key in seen and seen[key] != other.name:
                raise ConfigurationError(
                    f"RLS policy {key[1]!r} on table {key[0]!r} is declared by app {seen[key]!r} and by app "
                    f"{other.name!r}; policy names are per table: rename one in its timber_rls_policies()"
                )
            seen[key] = other.name
    for pol in the_app.rls_policies:
        missing = [k for k in ("name", "table", "command", "using") if not pol.get(k)]
        if missing:
            raise ConfigurationError(
                f"app {app!r}: an entry of timber_rls_policies() lacks {', '.join(missing)}: {pol!r}; "
                f"give name, table, command, using (and optionally check)"
            )
        if pol["table"] not in typed:
            raise ConfigurationError(
                f"app {app!r}: RLS policy {pol['name']!r} is on table {pol['table']!r}, which is not a shared, "
                f"typed table (those are: {', '.join(sorted(typed)) or 'none'}); row-level security is only "
                f"enabled there"
            )
        snap["policies"][str(pol["name"])] = {
            "table": str(pol["table"]),
            "command": str(pol["command"]).upper(),
            "using": str(pol["using"]),
            "check": None if pol.get("check") is None else str(pol["check"]),
        }
    return snap


def diff(source: Snapshot, target: Snapshot) -> list[Call]:
    """Return the ops calls that take the database from ``source`` to ``target`` (same app).

    Tables that ``target`` no longer has are being dropped by the schema part of the
    same revision; steps on them are left out, since dropping a table drops its
    grants and policies.
    """
    app = target["app"] or source["app"]
    calls: list[Call] = []
    dropped = set(source["tables"]) - set(target["tables"])
    if target["role"] and not source["role"]:
        calls.append(("ensure_app_role", (app,)))
    if app == KERNEL_APP and not source["tables"] and target["tables"]:
        calls.append(("ensure_kernel_roles", ()))
    for table, info in target["tables"].items():
        if table not in source["tables"]:
            calls.append(("own_and_grant", (table, None if app == KERNEL_APP else app, info["shared"])))
            if info.get("apps_insert_own"):
                calls.append(("apps_insert_own", (table, info["apps_insert_own"])))
        old_owner = source["tables"].get(table, {}).get("owned_by")
        if info.get("owned_by") and info["owned_by"] != old_owner:
            calls.append(("user_owned_rows", (app, table, info["owned_by"])))
        elif old_owner and not info.get("owned_by"):
            calls.append(("drop_user_owned_rows", (table,)))
        old_guard = source["tables"].get(table, {}).get("guard")
        if info.get("guard") and info["guard"] != old_guard:
            calls.append((info["guard"][0], (table, *info["guard"][1:])))
        elif old_guard and not info.get("guard"):
            calls.append(("unguard", (table, _UNGUARD_PRIVILEGES.get(old_guard[0], "SELECT, INSERT, UPDATE, DELETE"))))
    if target.get("advisory_locks") != source.get("advisory_locks"):
        calls.append(("platform_advisory_locks" if target.get("advisory_locks") else "public_advisory_locks", ()))
    for table in target["rls_tables"]:
        if table not in source["rls_tables"]:
            calls.append(("enable_rls", (table,)))
    for table in source["rls_tables"]:
        if table not in target["rls_tables"] and table not in dropped:
            calls.append(("disable_rls", (table,)))
    for table, r in target["restrict"].items():
        if source["restrict"].get(table) != r:
            calls.append(("restrict_types", (app, table, r["column"], list(r["types"]))))
    for table in source["restrict"]:
        if table not in target["restrict"] and table not in dropped:
            calls.append(("drop_policy", (restrict_policy_name(app), table)))
    for name, p in target["policies"].items():
        if source["policies"].get(name) != p:
            old = source["policies"].get(name)
            if old is not None and old["table"] != p["table"] and old["table"] not in dropped:
                calls.append(("drop_policy", (name, old["table"])))
            calls.append(("create_policy", (app, name, p["table"], p["command"], p["using"], p["check"])))
    for name, p in source["policies"].items():
        if name not in target["policies"] and p["table"] not in dropped:
            calls.append(("drop_policy", (name, p["table"])))
    return calls


def copy_snapshot(snap: Snapshot) -> Snapshot:
    """Return a deep copy (snapshots read from revision modules must not be mutated)."""
    return copy.deepcopy(snap)
