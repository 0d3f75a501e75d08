"""``timber doctor``: is the database as safe and as migrated as the registry says it should be?

Each :class:`Finding` names the thing, what is wrong and the fix. Errors are
states in which isolation does not hold or the app cannot work (RLS off or not
forced, an app role that owns a table or bypasses RLS, a login that cannot act
as its app's role, missing tables or policies); warnings are states that work
but need attention (pending revisions, connection arithmetic, a superuser login, the
revisions of an app that is not installed, another app older than the database).
``initialize_timber`` runs it on PostgreSQL, raising on errors and logging warnings.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import text

from .._roles import APPS_ROLE, OWNER_ROLE, PLATFORM_ROLE, app_role
from ..apps import KERNEL_APP
from ..errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["Finding", "run_doctor", "startup_check", "skip_startup_check"]

log = logging.getLogger("timber.doctor")
_skip: contextvars.ContextVar[bool] = contextvars.ContextVar("timber_skip_startup_check", default=False)


@contextlib.contextmanager
def skip_startup_check() -> Iterator[None]:
    """Within the block, ``initialize_timber`` does not run the startup check.

    For the migration commands, which must work on the very databases the check rejects.
    """
    token = _skip.set(True)
    try:
        yield
    finally:
        _skip.reset(token)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem: ``severity`` (error or warning), which ``check``, the ``message`` and the ``fix``."""

    severity: Literal["error", "warning"]
    check: str
    message: str
    fix: str

    def __str__(self) -> str:
        # Capitalized like every command's error line (`Error: ...`, _cli_support.report).
        return f"{self.severity.capitalize()}: [{self.check}] {self.message}. Fix: {self.fix}"


def run_doctor(kernel: Kernel, *, instances: int | None = None) -> list[Finding]:
    """Return every finding for ``kernel``'s database (empty when all is well).

    ``instances`` is the number of processes per app for the connection arithmetic
    (default: ``TIMBER_APP_INSTANCES``).
    """
    findings = _migrations(kernel)
    if kernel.db.dialect != "postgresql":
        return findings
    with kernel.db.admin_connection() as conn:
        findings += _postgres(kernel, conn, instances)
    return findings


def startup_check(kernel: Kernel) -> None:
    """Run :func:`run_doctor`; log warnings, raise ConfigurationError listing every error."""
    if _skip.get():
        return
    findings = run_doctor(kernel)
    for f in findings:
        if f.severity == "warning":
            log.warning("timber doctor: %s", f)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise ConfigurationError(
            f"the database {kernel.db.display_url} is not safe to run "
            f"{f'app {kernel.app_name!r}' if kernel.app_name else 'Timber'} on "
            f"({len(errors)} problem(s), from `timber doctor`):\n" + "\n".join(f"  - {e}" for e in errors)
        )


def _migrations(kernel: Kernel) -> list[Finding]:
    from . import unrecorded
    from .runner import status, unknown_revisions

    with kernel.db.admin_connection() as conn:
        leftovers = unrecorded.find(kernel, conn)
    if leftovers:  # a half-applied migration: its pending revisions are not the fix, so say only this
        return [Finding("error", "migrations", *unrecorded.message_and_fix(kernel, leftovers))]
    found = []
    for st in status(kernel):
        if st.problem is not None:
            continue  # said below, from unknown_revisions
        if st.head is None and kernel.models_of(st.app):
            found.append(Finding(
                "error", "migrations", f"app {st.app!r} has tables but no migrations",
                f"run `timber create-migration \"initial\" --app {st.app}`, then `timber migrate`",
            ))
        elif st.pending:
            found.append(Finding(
                "warning", "migrations",
                f"app {st.app!r} has {len(st.pending)} revision(s) not applied: {', '.join(st.pending)}",
                "run `timber migrate` (as the migration login)",
            ))
    for u in unknown_revisions(kernel):  # a revision the installed code lacks (see migrations.applied)
        # Fatal only to the app it is about: the others start (an app not installed is a warning).
        severity: Literal["error", "warning"] = "error" if u.installed and u.app == kernel.app_name else "warning"
        found.append(Finding(severity, "migrations", u.problem(), u.fix()))
    return found


def _postgres(kernel: Kernel, conn: Any, instances: int | None) -> list[Finding]:
    found: list[Finding] = []
    tables = {t.name for t in kernel.metadata.sorted_tables}
    rows = conn.execute(text(
        "SELECT c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    )).all()
    present = {r[0]: r for r in rows}
    missing = sorted(tables - set(present))
    if missing:
        found.append(Finding("error", "tables", f"tables missing from the database: {', '.join(missing)}",
                             "run `timber migrate`"))
    from .runner import migrated_apps

    migrated = [a for a in migrated_apps(kernel) if a != KERNEL_APP]
    ours = [OWNER_ROLE, APPS_ROLE, PLATFORM_ROLE] + [app_role(a.name) for a in kernel.apps.loaded()
                                                     if a.name != KERNEL_APP]
    roles = {r[0]: r for r in conn.execute(text(
        "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = ANY(:names)"
    ), {"names": ours}).all()}
    for name, owner, _rls, _force in rows:
        if owner in roles and owner != OWNER_ROLE:
            found.append(Finding("error", "owners", f"table {name!r} is owned by {owner!r}, a role Timber "
                                 f"runs transactions as, so RLS does not bind it there",
                                 f"ALTER TABLE {name} OWNER TO {OWNER_ROLE};"))
        elif name in tables and owner != OWNER_ROLE:
            found.append(Finding("error", "owners", f"table {name!r} is owned by {owner!r}, not {OWNER_ROLE!r}",
                                 f"ALTER TABLE {name} OWNER TO {OWNER_ROLE}; (migrations do this: run them "
                                 f"through `timber migrate`)"))
    typed = {m.table_name: m.typed_by for m in kernel.schema.models if m.shared and m.typed_by}
    for table in sorted(typed):
        row = present.get(table)
        if row is None:
            continue
        if not row[2] or not row[3]:
            what = "not enabled" if not row[2] else "enabled but not forced"
            found.append(Finding("error", "rls", f"row-level security on shared typed table {table!r} is {what}",
                                 f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} "
                                 f"FORCE ROW LEVEL SECURITY; (or run `timber migrate`)"))
    from .security import APPS_INSERT_OWN, GUARDED

    for table in sorted(set(GUARDED) | set(APPS_INSERT_OWN)):
        row = present.get(table)
        if row is not None and (not row[2] or not row[3]):
            what = "not enabled" if not row[2] else "enabled but not forced"
            found.append(Finding("error", "rls", f"row-level security on kernel table {table!r} is {what}, so "
                                 f"apps are not held to their own rows there",
                                 "run `timber migrate` (timber_0003 sets it up; docs/isolation.md)"))
    for spec in kernel.schema.models:
        row = present.get(spec.table_name)
        if spec.owned_by and spec.app in migrated and row is not None and (not row[2] or not row[3]):
            what = "not enabled" if not row[2] else "enabled but not forced"
            found.append(Finding("error", "rls", f"row-level security on table {spec.table_name!r} of app "
                                 f"{spec.app!r} is {what}; the model declares owned_by {spec.owned_by!r}, "
                                 f"which needs it enabled and forced",
                                 f"run `timber migrate`; if it persists, `timber create-migration \"owned_by\" "
                                 f"--app {spec.app}`"))
    expected = [OWNER_ROLE, APPS_ROLE, PLATFORM_ROLE] + [app_role(a) for a in migrated]
    for role in expected:
        if role not in roles:
            found.append(Finding("error", "roles", f"role {role!r} does not exist", "run `timber migrate`"))
    for name, sup, bypass, login in roles.values():
        if sup or bypass:
            found.append(Finding("error", "roles", f"role {name!r} is {'SUPERUSER' if sup else 'BYPASSRLS'}, "
                                 f"so row-level security does not apply to it",
                                 f"ALTER ROLE {name} NOSUPERUSER NOBYPASSRLS;"))
        if login:
            found.append(Finding("warning", "roles", f"role {name!r} can log in; Timber's roles are NOLOGIN",
                                 f"ALTER ROLE {name} NOLOGIN; and connect through a separate login that is a "
                                 f"member of it"))
    found += _policies(kernel, conn, typed, set(present), migrated)
    found += _login(kernel, conn, roles)
    found += _connections(kernel, conn, instances)
    return found


def _policies(
    kernel: Kernel, conn: Any, typed: dict[str, str], present: set[str], migrated: list[str]
) -> list[Finding]:
    from .ops import OWNED_BY_USER_POLICY, restrict_policy_name

    found: list[Finding] = []
    rows = conn.execute(text(
        "SELECT p.tablename, p.policyname, p.permissive, p.roles::text[], "
        "obj_description(pol.oid, 'pg_policy') FROM pg_policies p "
        "JOIN pg_policy pol ON pol.polname = p.policyname "
        "JOIN pg_class c ON c.oid = pol.polrelid AND c.relname = p.tablename "
        "WHERE p.schemaname = current_schema()"
    )).all()
    by_key = {(r[0], r[1]): r for r in rows}
    for spec in kernel.schema.models:
        if not spec.owned_by or spec.app not in migrated or spec.table_name not in present:
            continue
        row = by_key.get((spec.table_name, OWNED_BY_USER_POLICY))
        if row is None or row[2] != "PERMISSIVE" or list(row[3]) != [app_role(spec.app)]:
            found.append(Finding("error", "policies", f"table {spec.table_name!r} of app {spec.app!r} declares "
                                 f"owned_by {spec.owned_by!r} but has no PERMISSIVE policy "
                                 f"{OWNED_BY_USER_POLICY!r} for {app_role(spec.app)}",
                                 f"run `timber migrate`; if it persists, `timber create-migration \"owned_by\" "
                                 f"--app {spec.app}`"))
    for table in sorted(typed):
        if table not in present:
            continue
        for app in kernel.apps.loaded():
            if app.name not in migrated:
                continue
            name = restrict_policy_name(app.name)
            row = by_key.get((table, name))
            want = "timber session types: " + ",".join(sorted(app.session_types))
            if row is None:
                found.append(Finding("error", "policies", f"app {app.name!r} has no RESTRICTIVE policy {name!r} on "
                                     f"{table!r}", f"run `timber migrate`; if it is still missing, "
                                     f"`timber create-migration \"policies\" --app {app.name}`"))
            elif row[2] != "RESTRICTIVE" or list(row[3]) != [app_role(app.name)]:
                found.append(Finding("error", "policies", f"policy {name!r} on {table!r} is {row[2]} for {row[3]}, "
                                     f"not RESTRICTIVE for {app_role(app.name)}", "run `timber migrate`"))
            elif row[4] != want:
                found.append(Finding("error", "policies", f"policy {name!r} on {table!r} allows "
                                     f"{(row[4] or '?').removeprefix('timber session types: ')!r} but app "
                                     f"{app.name!r} owns {','.join(sorted(app.session_types))!r}",
                                     f"`timber create-migration \"session types\" --app {app.name}`, then "
                                     f"`timber migrate`"))
    return found


def _login(kernel: Kernel, conn: Any, roles: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    if kernel.app_name is None:  # no app to act as (`timber doctor` without --app): no login to check
        return found
    login, sup, bypass = conn.execute(text(
        "SELECT session_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = session_user"
    )).one()
    role = app_role(kernel.app_name)
    if sup or bypass:
        found.append(Finding(
            "warning", "login", f"the login {login!r} is {'a superuser' if sup else 'BYPASSRLS'}: Timber's "
            f"transactions still run as {role!r} under RLS, but raw SQL in this process could switch to any role",
            f"connect app {kernel.app_name!r} as a NOINHERIT login that is a member of {role} only (and of "
            f"{PLATFORM_ROLE} if it runs cross-app jobs): CREATE ROLE {kernel.app_name}_web LOGIN NOINHERIT; "
            f"GRANT {role} TO {kernel.app_name}_web;",
        ))
    elif role in roles and not conn.execute(
        text("SELECT pg_has_role(session_user, :r, 'MEMBER')"), {"r": role}
    ).scalar():
        found.append(Finding("error", "login", f"the login {login!r} is not a member of {role!r}, so app "
                             f"{kernel.app_name!r} cannot act as it", f"GRANT {role} TO {login};"))
    return found


def _connections(kernel: Kernel, conn: Any, instances: int | None) -> list[Finding]:
    pool = kernel.db.engine.pool
    per_process = int(getattr(pool, "size", lambda: 0)()) + max(int(getattr(pool, "_max_overflow", 0)), 0)
    n = instances if instances is not None else int(kernel.config.APP_INSTANCES)
    apps = [a.name for a in kernel.apps.loaded() if a.name != KERNEL_APP]
    maximum = int(conn.execute(text("SHOW max_connections")).scalar())
    reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar())
    need = len(apps) * n * per_process
    available = maximum - reserved
    if need > available:
        return [Finding(
            "warning", "connections",
            f"{len(apps)} app(s) x {n} instance(s) x (pool_size + max_overflow = {per_process}) = {need} "
            f"connections, but the server allows {available} (max_connections {maximum} - "
            f"superuser_reserved_connections {reserved})",
            "lower DB_POOL_SIZE / DB_MAX_OVERFLOW, raise max_connections, or put PgBouncer in transaction "
            "mode in front (Timber's settings are transaction-local, so that is safe)",
        )]
    return []
