"""Role, grant and row-level-security operations, called from revision files.

Generated revisions call these as ``tops.<name>(...)`` with literal arguments, so a
revision file states exactly which roles, grants and policies it changes. Every
operation emits plain SQL through ``op.execute`` (so ``timber migrate --sql``
prints it) and does nothing on SQLite, where the ORM isolation stands alone.

Roles are cluster-wide and may already exist (another database on the same server,
an earlier install): creation is idempotent and races between two databases
migrating at once are tolerated. Roles are never dropped by a downgrade: other
databases may depend on them (see docs/isolation.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from .. import policies
from .._roles import APPS_ROLE, OWNER_ROLE, PLATFORM_ROLE, app_role

__all__ = [
    "ensure_kernel_roles",
    "ensure_app_role",
    "own_and_grant",
    "platform_only",
    "enable_rls",
    "disable_rls",
    "restrict_types",
    "create_policy",
    "drop_policy",
    "restrict_policy_name",
    "apps_insert_own",
    "apps_own_rows",
    "user_reads_app_writes",
    "users_self_update",
    "unguard",
    "user_owned_rows",
    "drop_user_owned_rows",
    "platform_advisory_locks",
    "public_advisory_locks",
    "OWN_APP",
    "ACTING_USER",
    "PLATFORM_POLICY",
    "APPS_INSERT_POLICY",
    "OWNED_BY_USER_POLICY",
    "TABLE_PRIVILEGES",
]

#: What a role is granted on a table it may use (never TRUNCATE, REFERENCES or TRIGGER).
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
#: The platform role's policy on every RLS table: it sees and writes every row.
PLATFORM_POLICY = "timber_platform_all"
#: The apps' policy on a table they may only add their own rows to (see :func:`apps_insert_own`).
APPS_INSERT_POLICY = "timber_apps_insert_own"
_COMMANDS = ("ALL", "SELECT", "INSERT", "UPDATE", "DELETE")

#: The transaction's app, as a policy expression: derived from the role the transaction runs as
#: (``timber_<app>``), never from ``timber.app``, which raw SQL can set to anything. A login that
#: is a member of only its own app's role cannot become another app's role, and role names are
#: unique, so ``timber_<x>`` is app ``x``'s role or a kernel role (apps named like those cannot
#: run). Outside a ``timber_`` role it is NULL: no row matches. A scalar subquery, so it is
#: computed once per statement.
OWN_APP = "(SELECT substr(current_user, 8) WHERE left(current_user, 7) = 'timber_')"
#: The transaction's user (``timber.user_id``); NULL when unset or empty, which matches no row.
ACTING_USER = policies.ACTING_USER
#: The apps' policies on the kernel's guarded tables (see the functions below).
APPS_OWN_POLICY = "timber_apps_own_app"
APPS_READ_POLICY = "timber_apps_read"
APPS_INSERT_OWN_POLICY = "timber_apps_insert_own_app"
APPS_UPDATE_POLICY = "timber_apps_update_own_user"
APPS_DELETE_POLICY = "timber_apps_delete_own_app"
APPS_INSERT_ANY_POLICY = "timber_apps_insert"
#: The app's policy on a private table that declares ``owned_by`` (see :func:`user_owned_rows`).
OWNED_BY_USER_POLICY = "timber_owned_by_user"
#: The advisory-lock functions apps may not call (a held key stalls the drain or migrations).
_ADVISORY = (
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_unlock", "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
)


def _pg() -> bool:
    return op.get_context().dialect.name == "postgresql"


def q(identifier: str) -> str:
    """Quote an SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def restrict_policy_name(app: str) -> str:
    """Return the name of app ``app``'s RESTRICTIVE session-type policy on a table."""
    return f"timber_{app}_types"


def _ensure_role(role: str, member_of: str | None = None) -> None:
    # CREATE ROLE has no IF NOT EXISTS; a concurrent creation from another database
    # raises duplicate_object or unique_violation, which is the state we want.
    op.execute(
        f"""DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {lit(role)}) THEN
    BEGIN
      CREATE ROLE {q(role)} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
END $$"""
    )
    if member_of:
        op.execute(
            f"""DO $$
BEGIN
  IF NOT pg_catalog.pg_has_role({lit(role)}, {lit(member_of)}, 'MEMBER') THEN
    BEGIN
      GRANT {q(member_of)} TO {q(role)};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
END $$"""
        )


def ensure_kernel_roles() -> None:
    """Create the owner, the app group and the platform role (if missing); set up the schema.

    ``timber_owner`` gets CREATE on schema ``public`` so it can own tables;
    ``alembic_version`` becomes readable by every role so ``timber doctor`` can
    report pending migrations from an app's own login.
    """
    if not _pg():
        return
    _ensure_role(OWNER_ROLE)
    _ensure_role(APPS_ROLE)
    _ensure_role(PLATFORM_ROLE, member_of=APPS_ROLE)
    op.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {q(OWNER_ROLE)}")
    op.execute("GRANT SELECT ON alembic_version TO PUBLIC")


def ensure_app_role(app: str) -> None:
    """Create ``timber_<app>`` (NOLOGIN NOSUPERUSER NOBYPASSRLS) if missing, as a member of ``timber_apps``.

    Membership of ``timber_apps`` is what grants an app the shared tables.
    """
    if not _pg():
        return
    _ensure_role(app_role(app), member_of=APPS_ROLE)


def own_and_grant(table: str, app: str | None, shared: bool) -> None:
    """Give ``table`` to ``timber_owner`` and grant it to whoever may use it.

    A shared table (the kernel's, or one an app marks ``shared``) is granted to
    ``timber_apps``; a private one only to ``timber_<app>``. The platform role
    gets every table. Nothing is granted to PUBLIC.
    """
    if not _pg():
        return
    grantee = APPS_ROLE if shared or app is None else app_role(app)
    op.execute(f"ALTER TABLE {q(table)} OWNER TO {q(OWNER_ROLE)}")
    op.execute(f"REVOKE ALL ON {q(table)} FROM PUBLIC")
    op.execute(f"GRANT {TABLE_PRIVILEGES} ON {q(table)} TO {q(grantee)}")
    op.execute(f"GRANT {TABLE_PRIVILEGES} ON {q(table)} TO {q(PLATFORM_ROLE)}")


def platform_only(table: str) -> None:
    """Give kernel table ``table`` to ``timber_owner`` and grant it to ``timber_platform`` only.

    Neither PUBLIC nor ``timber_apps`` (so no app role) gets any privilege: used for the
    password hashes (``user_credentials``, docs/isolation.md), which only the kernel's auth
    code reads, in ``platform_context()``.
    """
    if not _pg():
        return
    op.execute(f"ALTER TABLE {q(table)} OWNER TO {q(OWNER_ROLE)}")
    op.execute(f"REVOKE ALL ON {q(table)} FROM PUBLIC")
    op.execute(f"REVOKE ALL ON {q(table)} FROM {q(APPS_ROLE)}")
    op.execute(f"GRANT {TABLE_PRIVILEGES} ON {q(table)} TO {q(PLATFORM_ROLE)}")


def enable_rls(table: str) -> None:
    """ENABLE and FORCE row-level security on ``table`` and let the platform role see every row.

    With RLS on, an app role sees nothing until its app's policies are created.
    """
    if not _pg():
        return
    op.execute(f"ALTER TABLE {q(table)} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {q(table)} FORCE ROW LEVEL SECURITY")
    op.execute(f"DROP POLICY IF EXISTS {q(PLATFORM_POLICY)} ON {q(table)}")
    op.execute(
        f"CREATE POLICY {q(PLATFORM_POLICY)} ON {q(table)} AS PERMISSIVE FOR ALL "
        f"TO {q(PLATFORM_ROLE)} USING (true) WITH CHECK (true)"
    )


def apps_insert_own(table: str, column: str) -> None:
    """Narrow a kernel table granted by :func:`own_and_grant` so apps may only add their own rows.

    ``timber_apps`` keeps INSERT only (SELECT, UPDATE, DELETE revoked); RLS is enabled and
    forced with the platform's policy (:func:`enable_rls`) and a PERMISSIVE ``FOR INSERT`` policy
    for ``timber_apps`` whose check is ``<column> = the transaction's app`` (:data:`OWN_APP`, from
    the role). The platform role keeps every privilege. Used for the vector outbox (docs/vectors.md).
    """
    if not _pg():
        return
    op.execute(f"REVOKE SELECT, UPDATE, DELETE ON {q(table)} FROM {q(APPS_ROLE)}")
    enable_rls(table)
    op.execute(f"DROP POLICY IF EXISTS {q(APPS_INSERT_POLICY)} ON {q(table)}")
    op.execute(
        f"CREATE POLICY {q(APPS_INSERT_POLICY)} ON {q(table)} AS PERMISSIVE FOR INSERT TO {q(APPS_ROLE)} "
        f"WITH CHECK ({q(column)} = {OWN_APP})"
    )


def _policy(name: str, table: str, command: str, using: str | None, check: str | None) -> None:
    clauses = (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else "")
    op.execute(f"DROP POLICY IF EXISTS {q(name)} ON {q(table)}")
    op.execute(f"CREATE POLICY {q(name)} ON {q(table)} AS PERMISSIVE FOR {command} TO {q(APPS_ROLE)}{clauses}")


def apps_own_rows(table: str, column: str) -> None:
    """RLS on a shared kernel table whose rows each belong to one app: an app reads and writes only its own.

    Enabled and forced, the platform's policy, and ``timber_apps_own_app`` (PERMISSIVE, ALL,
    ``TO timber_apps``): ``<column> = the transaction's app`` (:data:`OWN_APP`) for USING and
    WITH CHECK, so an app can neither see, change, delete nor forge another app's rows, nor
    move its own to another app. Used for ``events``.
    """
    if not _pg():
        return
    enable_rls(table)
    _policy(APPS_OWN_POLICY, table, "ALL", f"{q(column)} = {OWN_APP}", f"{q(column)} = {OWN_APP}")


def user_reads_app_writes(table: str, app_column: str, user_column: str, updatable: Sequence[str]) -> None:
    """RLS on a table shared per user across apps (``notifications``).

    * SELECT: the acting user's rows, whichever app wrote them (``<user_column> = timber.user_id``);
    * INSERT and DELETE: only rows stamped with the transaction's own app (:data:`OWN_APP`);
    * UPDATE: only the ``updatable`` columns (the read state), of the acting user's rows. No other
      column can be changed by any app, so a notification's text, app and user are as written.
    """
    if not _pg():
        return
    op.execute(f"REVOKE UPDATE ON {q(table)} FROM {q(APPS_ROLE)}")
    op.execute(f"GRANT UPDATE ({', '.join(q(c) for c in updatable)}) ON {q(table)} TO {q(APPS_ROLE)}")
    enable_rls(table)
    own_app, own_user = f"{q(app_column)} = {OWN_APP}", f"{q(user_column)} = {ACTING_USER}"
    _policy(APPS_READ_POLICY, table, "SELECT", own_user, None)
    _policy(APPS_INSERT_OWN_POLICY, table, "INSERT", None, own_app)
    _policy(APPS_UPDATE_POLICY, table, "UPDATE", own_user, own_user)
    _policy(APPS_DELETE_POLICY, table, "DELETE", own_app, None)


def users_self_update(table: str, id_column: str, updatable: Sequence[str]) -> None:
    """RLS on ``users``: apps read every account and create accounts, change only the acting user's, delete none.

    ``timber_apps`` loses DELETE (deleting a user cascades into every app's tables: a platform
    operation) and keeps UPDATE only on the ``updatable`` columns (never the id), of the row
    whose ``<id_column>`` is the acting user (``timber.user_id``). Row locks (``FOR UPDATE``,
    ``FOR SHARE``) need the UPDATE policy too, so an app can lock only that row.
    """
    if not _pg():
        return
    op.execute(f"REVOKE UPDATE, DELETE ON {q(table)} FROM {q(APPS_ROLE)}")
    op.execute(f"GRANT UPDATE ({', '.join(q(c) for c in updatable)}) ON {q(table)} TO {q(APPS_ROLE)}")
    enable_rls(table)
    own_user = f"{q(id_column)} = {ACTING_USER}"
    _policy(APPS_READ_POLICY, table, "SELECT", "true", None)
    _policy(APPS_INSERT_ANY_POLICY, table, "INSERT", None, "true")
    _policy(APPS_UPDATE_POLICY, table, "UPDATE", own_user, own_user)


def unguard(table: str, privileges: str = TABLE_PRIVILEGES) -> None:
    """Undo :func:`apps_own_rows`, :func:`user_reads_app_writes` or :func:`users_self_update` on ``table``.

    Drops the apps' policies, disables RLS and gives ``timber_apps`` back ``privileges``.
    """
    if not _pg():
        return
    for name in (APPS_OWN_POLICY, APPS_READ_POLICY, APPS_INSERT_OWN_POLICY, APPS_UPDATE_POLICY, APPS_DELETE_POLICY,
                 APPS_INSERT_ANY_POLICY):
        op.execute(f"DROP POLICY IF EXISTS {q(name)} ON {q(table)}")
    disable_rls(table)
    op.execute(f"REVOKE UPDATE ON {q(table)} FROM {q(APPS_ROLE)}")  # and its column grants
    op.execute(f"GRANT {privileges} ON {q(table)} TO {q(APPS_ROLE)}")


def user_owned_rows(app: str, table: str, column: str) -> None:
    """RLS on app ``app``'s private ``table``: its role reads and writes only the acting user's rows.

    Enabled and forced, the platform's policy (:func:`enable_rls`), and ``timber_owned_by_user``
    (PERMISSIVE, ALL, ``TO timber_<app>``) with ``<column> = the acting user`` (:data:`ACTING_USER`,
    ``timber.user_id``) for USING and WITH CHECK: another user's rows are invisible (SELECT, UPDATE
    and DELETE skip them) and a row written for another user is refused; with no user context no
    row matches. Recreating it with another ``column`` replaces the policy. The model option
    ``owned_by`` generates it (docs/models.md, docs/isolation.md).
    """
    if not _pg():
        return
    enable_rls(table)
    op.execute(f"DROP POLICY IF EXISTS {q(OWNED_BY_USER_POLICY)} ON {q(table)}")
    own_user = f"{q(column)} = {ACTING_USER}"
    op.execute(
        f"CREATE POLICY {q(OWNED_BY_USER_POLICY)} ON {q(table)} AS PERMISSIVE FOR ALL TO {q(app_role(app))} "
        f"USING ({own_user}) WITH CHECK ({own_user})"
    )


def drop_user_owned_rows(table: str) -> None:
    """Undo :func:`user_owned_rows`: drop the policy and disable RLS (the app's role sees every row again)."""
    if not _pg():
        return
    op.execute(f"DROP POLICY IF EXISTS {q(OWNED_BY_USER_POLICY)} ON {q(table)}")
    disable_rls(table)


def _advisory(sql: str) -> None:
    names = ", ".join(lit(n) for n in _ADVISORY)
    op.execute(
        f"""DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN ({names}) LOOP
    {sql}
  END LOOP;
END $$"""
    )


def platform_advisory_locks() -> None:
    """Take PostgreSQL's advisory-lock functions from PUBLIC; grant them to the platform and the owner.

    An app holding the drain's or the migrations' key would stall them (or every app, if it held
    a key the apps share). The drain takes its lock in the platform context; the migration lock
    is taken by the migration login (a superuser, or a member of ``timber_owner``). Function
    privileges belong to the database, so this holds in this database only.
    """
    if not _pg():
        return
    _advisory(f"EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f); "
              f"EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {q(PLATFORM_ROLE)}, {q(OWNER_ROLE)}', f);")


def public_advisory_locks() -> None:
    """Undo :func:`platform_advisory_locks` (PostgreSQL's default: every role may call them)."""
    if not _pg():
        return
    _advisory(f"EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f); "
              f"EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM {q(PLATFORM_ROLE)}, {q(OWNER_ROLE)}', f);")


def disable_rls(table: str) -> None:
    """Undo :func:`enable_rls`."""
    if not _pg():
        return
    op.execute(f"DROP POLICY IF EXISTS {q(PLATFORM_POLICY)} ON {q(table)}")
    op.execute(f"ALTER TABLE {q(table)} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {q(table)} DISABLE ROW LEVEL SECURITY")


def restrict_types(app: str, table: str, column: str, types: Sequence[str]) -> None:
    """(Re)create app ``app``'s RESTRICTIVE policy on ``table``: only rows whose ``column`` is one of ``types``.

    It applies to ``USING`` and ``WITH CHECK`` alike, and, being restrictive, is
    AND-ed with every permissive policy: no grant can widen the app past its types.
    An empty ``types`` restricts the app to nothing. The policy's comment records
    the types so ``timber doctor`` can compare them with the registry.
    """
    if not _pg():
        return
    name = restrict_policy_name(app)
    types = sorted(types)
    cond = f"{q(column)} IN ({', '.join(lit(t) for t in types)})" if types else "false"
    op.execute(f"DROP POLICY IF EXISTS {q(name)} ON {q(table)}")
    op.execute(
        f"CREATE POLICY {q(name)} ON {q(table)} AS RESTRICTIVE FOR ALL TO {q(app_role(app))} "
        f"USING ({cond}) WITH CHECK ({cond})"
    )
    op.execute(f"COMMENT ON POLICY {q(name)} ON {q(table)} IS {lit('timber session types: ' + ','.join(types))}")


def create_policy(app: str, name: str, table: str, command: str, using: str, check: str | None = None) -> None:
    """(Re)create a PERMISSIVE policy ``name`` on ``table`` for ``timber_<app>``.

    ``command`` is ALL, SELECT, INSERT, UPDATE or DELETE; ``using`` and ``check``
    are SQL expressions as the app's ``timber_rls_policies()`` returned them
    (``check`` defaults to ``using``; SELECT and DELETE take no check, INSERT no using).
    """
    if not _pg():
        return
    command = command.upper()
    if command not in _COMMANDS:
        raise ValueError(f"policy {name!r} of app {app!r}: command {command!r} is not one of {', '.join(_COMMANDS)}")
    check = using if check is None else check
    clauses = ""
    if command != "INSERT":
        clauses += f" USING ({using})"
    if command not in ("SELECT", "DELETE"):
        clauses += f" WITH CHECK ({check})"
    op.execute(f"DROP POLICY IF EXISTS {q(name)} ON {q(table)}")
    op.execute(
        f"CREATE POLICY {q(name)} ON {q(table)} AS PERMISSIVE FOR {command} TO {q(app_role(app))}{clauses}"
    )


def drop_policy(name: str, table: str) -> None:
    """Drop policy ``name`` on ``table`` if it exists."""
    if not _pg():
        return
    op.execute(f"DROP POLICY IF EXISTS {q(name)} ON {q(table)}")
