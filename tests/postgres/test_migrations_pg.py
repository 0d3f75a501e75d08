"""One migration graph on PostgreSQL: upgrade, per-app downgrade, check, a late plugin, a policy change.

The tests of this module share one scratch database and run in file order: each
leaves it at every head.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

import timber_core
from timber_core.migrations import autogen, commands, doctor, runner
from timber_core.migrations.doctor import skip_startup_check

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HEADS = {"timber": "timber_0005", "canopy": "canopy_0002", "grove": "grove_0002"}


def kernel_for(url: URL, app: str = "canopy", **settings: Any) -> Any:
    with skip_startup_check():
        return timber_core.initialize_timber(app, database_url=url, create_tables=False, **settings)


def q(url: URL, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def policies(url: URL) -> list[tuple[Any, ...]]:
    return q(url, "SELECT tablename, policyname, permissive, roles::text FROM pg_policies ORDER BY 1, 2")


def tables(url: URL) -> list[str]:
    return [r[0] for r in q(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


def versions(url: URL) -> list[str]:
    return sorted(r[0] for r in q(url, "SELECT version_num FROM alembic_version"))


def current(kernel: Any) -> dict[str, Any]:
    return {s.app: (s.current, s.pending) for s in runner.status(kernel)}


def cli() -> click.Group:
    group = click.Group("timber")
    commands.register(group)
    return group


def test_upgrade_from_empty_to_heads(pg_database: URL) -> None:
    kernel = kernel_for(pg_database)
    assert current(kernel) == {
        "timber": (None, ["timber_0001", "timber_0002", "timber_0003", "timber_0004", "timber_0005"]),
        "canopy": (None, ["canopy_0001", "canopy_0002"]),
        "grove": (None, ["grove_0001", "grove_0002"]),
    }
    runner.upgrade(kernel)
    assert current(kernel) == {app: (rev, []) for app, rev in HEADS.items()}
    assert versions(pg_database) == ["canopy_0002", "grove_0002", "timber_0005"]
    assert tables(pg_database) == [
        "alembic_version", "events", "notifications", "orders", "research_reports", "research_sessions",
        "sessions", "timber_gdpr_audit", "timber_revisions", "timber_vector_outbox", "trading_sessions",
        "user_credentials", "users",
    ]
    assert q(pg_database, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'sessions'") == [
        (True, True)
    ]
    assert policies(pg_database) == [
        ("events", "timber_apps_own_app", "PERMISSIVE", "{timber_apps}"),
        ("events", "timber_platform_all", "PERMISSIVE", "{timber_platform}"),
        ("notifications", "timber_apps_delete_own_app", "PERMISSIVE", "{timber_apps}"),
        ("notifications", "timber_apps_insert_own_app", "PERMISSIVE", "{timber_apps}"),
        ("notifications", "timber_apps_read", "PERMISSIVE", "{timber_apps}"),
        ("notifications", "timber_apps_update_own_user", "PERMISSIVE", "{timber_apps}"),
        ("notifications", "timber_platform_all", "PERMISSIVE", "{timber_platform}"),
        ("sessions", "canopy_own_sessions", "PERMISSIVE", "{timber_canopy}"),
        ("sessions", "grove_own_sessions", "PERMISSIVE", "{timber_grove}"),
        ("sessions", "timber_canopy_types", "RESTRICTIVE", "{timber_canopy}"),
        ("sessions", "timber_grove_types", "RESTRICTIVE", "{timber_grove}"),
        ("sessions", "timber_platform_all", "PERMISSIVE", "{timber_platform}"),
        ("timber_vector_outbox", "timber_apps_insert_own", "PERMISSIVE", "{timber_apps}"),
        ("timber_vector_outbox", "timber_platform_all", "PERMISSIVE", "{timber_platform}"),
        ("users", "timber_apps_insert", "PERMISSIVE", "{timber_apps}"),
        ("users", "timber_apps_read", "PERMISSIVE", "{timber_apps}"),
        ("users", "timber_apps_update_own_user", "PERMISSIVE", "{timber_apps}"),
        ("users", "timber_platform_all", "PERMISSIVE", "{timber_platform}"),
    ]
    assert q(pg_database, "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname IN "
                          "('timber_vector_outbox', 'users', 'events', 'notifications') ORDER BY 1") == [
        ("events", True, True), ("notifications", True, True), ("timber_vector_outbox", True, True),
        ("users", True, True)]
    assert runner.check(kernel) == []
    kernel.close()


def test_migrations_check_and_status_commands(pg_database: URL) -> None:
    env = {"DATABASE_URL": pg_database.render_as_string(hide_password=False), "TIMBER_APP": "canopy"}
    result = CliRunner().invoke(cli(), ["migrations", "check"], env=env)
    assert (result.exit_code, result.output) == (0, "models, migrations and database agree\n")
    result = CliRunner().invoke(cli(), ["migrations", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    import json

    assert json.loads(result.output) == [
        {"app": app, "current": rev, "head": rev, "pending": [], "version": version, "installed": True,
         "problem": None}
        for (app, rev), version in zip(HEADS.items(), ["0.1.0", "1.0.0", "1.0.0"])
    ]
    result = CliRunner().invoke(cli(), ["doctor"], env=env)
    assert result.exit_code == 0, result.output


def test_check_fails_when_the_database_drifts(pg_database: URL) -> None:
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE orders ADD COLUMN stray integer"))
    try:
        env = {"DATABASE_URL": pg_database.render_as_string(hide_password=False), "TIMBER_APP": "canopy"}
        result = CliRunner().invoke(cli(), ["migrations", "check"], env=env)
        assert result.exit_code == 1
        assert result.output == (
            "app 'canopy': the database differs from the models: remove_column orders.stray: run "
            "`timber create-migration \"...\" --app canopy` then `timber migrate`\n"
        )
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE orders DROP COLUMN stray"))
        engine.dispose()


def test_downgrade_each_app_to_base_and_back_leaves_the_others_alone(pg_database: URL) -> None:
    kernel = kernel_for(pg_database)
    before = policies(pg_database)
    for app, others in (("canopy", "grove"), ("grove", "canopy")):
        their_tables = {"canopy": ["orders", "trading_sessions"], "grove": ["research_reports", "research_sessions"]}
        runner.downgrade(kernel, app, "base")
        assert current(kernel)[app][0] is None
        assert current(kernel)[others] == (HEADS[others], [])
        assert not set(their_tables[app]) & set(tables(pg_database))
        assert set(their_tables[others]) <= set(tables(pg_database))
        assert [p for p in policies(pg_database) if app in p[1] or app in p[3]] == []
        assert [p for p in policies(pg_database) if others in p[1]] == [p for p in before if others in p[1]]
        runner.upgrade(kernel, app)
        assert current(kernel)[app] == (HEADS[app], [])
        assert policies(pg_database) == before
    assert runner.check(kernel) == []
    kernel.close()


def test_downgrade_one_revision_drops_the_added_column_and_index(pg_database: URL) -> None:
    kernel = kernel_for(pg_database)
    cols = "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'exchange'"
    idx = "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_orders_exchange'"
    assert (q(pg_database, cols), q(pg_database, idx)) == ([("exchange",)], [("ix_orders_exchange",)])
    runner.downgrade(kernel, "canopy", "-1")
    assert (q(pg_database, cols), q(pg_database, idx)) == ([], [])
    assert current(kernel)["canopy"] == ("canopy_0001", ["canopy_0002"])
    with pytest.raises(Exception, match=r"revision 'grove_0001' is not on app 'canopy''s branch"):
        runner.downgrade(kernel, "canopy", "grove_0001")
    runner.upgrade(kernel)
    assert runner.check(kernel) == []
    kernel.close()


def test_upgrade_sql_prints_the_ddl_roles_and_policies(pg_database: URL) -> None:
    kernel = kernel_for(pg_database)
    sql = runner.upgrade(kernel, sql=True)
    kernel.close()
    assert sql is not None
    assert "CREATE TABLE orders (" in sql
    assert 'ALTER TABLE "sessions" FORCE ROW LEVEL SECURITY;' in sql
    assert ('CREATE POLICY "timber_canopy_types" ON "sessions" AS RESTRICTIVE FOR ALL TO "timber_canopy" '
            "USING (\"session_type\" IN ('paper_trading', 'trading')) WITH CHECK (\"session_type\" IN "
            "('paper_trading', 'trading'));") in sql
    assert "SET ROLE" not in sql and "SET SESSION" not in sql


@pytest.fixture
def bonsai(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the test-only app 'bonsai' (a copy, so its generated revision lands in tmp_path)."""
    root = tmp_path / "site"
    shutil.copytree(FIXTURES / "bonsai", root)
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield root
    for name in [m for m in sys.modules if m == "bonsai_app" or m.startswith("bonsai_app.")]:
        del sys.modules[name]


def test_a_plugin_added_later_gets_its_branch_without_touching_the_others(pg_database: URL, bonsai: Path) -> None:
    before_policies, before_versions = policies(pg_database), versions(pg_database)
    kernel = kernel_for(pg_database)
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "bonsai", "canopy", "grove"]
    path = autogen.create_migration(kernel, "bonsai trees", "bonsai", rev_id="bonsai_0001")
    assert path == str(bonsai / "bonsai_app" / "migrations" / "versions" / "bonsai_0001_bonsai_trees.py")
    source = Path(path).read_text()
    assert "branch_labels: str | Sequence[str] | None = ('bonsai',)" in source
    assert "depends_on: str | Sequence[str] | None = 'timber_0005'" in source
    assert sorted(set(re.findall(r"op\.create_table\('(\w+)'", source))) == ["bonsai_trees"]
    assert re.findall(r"tops\.\w+\(.*\)", source) == [
        "tops.ensure_app_role('bonsai')",
        "tops.own_and_grant('bonsai_trees', 'bonsai', False)",
        "tops.restrict_types('bonsai', 'sessions', 'session_type', ['pruning'])",
        "tops.create_policy('bonsai', 'bonsai_own_sessions', 'sessions', 'ALL', \"user_id = (SELECT "
        "NULLIF(current_setting('timber.user_id', true), ''))\", None)",
        "tops.drop_policy('timber_bonsai_types', 'sessions')",
        "tops.drop_policy('bonsai_own_sessions', 'sessions')",
    ]
    assert current(kernel)["bonsai"] == (None, ["bonsai_0001"])
    runner.upgrade(kernel)
    assert current(kernel) == {**{a: (r, []) for a, r in HEADS.items()}, "bonsai": ("bonsai_0001", [])}
    # bonsai_0001 depends on the kernel's head, which is then implied rather than a head of its own.
    assert versions(pg_database) == sorted([v for v in before_versions if v != "timber_0005"] + ["bonsai_0001"])
    after = policies(pg_database)
    assert [p for p in after if "bonsai" not in p[1]] == before_policies
    assert q(pg_database, "SELECT has_table_privilege('timber_bonsai', 'orders', 'SELECT'), "
                          "has_table_privilege('timber_bonsai', 'bonsai_trees', 'SELECT'), "
                          "has_table_privilege('timber_canopy', 'bonsai_trees', 'SELECT')") == [(False, True, False)]
    assert runner.check(kernel) == []
    assert [f for f in doctor.run_doctor(kernel) if f.severity == "error"] == []
    runner.downgrade(kernel, "bonsai", "base")
    assert policies(pg_database) == before_policies
    kernel.close()


def test_a_new_session_type_changes_only_that_apps_restrictive_policy(pg_database: URL, tmp_path: Path) -> None:
    # Canopy gains the type 'options'; its revisions are copied so the new one is written to tmp_path.
    kernel = kernel_for(pg_database, session_types=["options"])
    canopy = kernel.apps.get("canopy")
    copy = tmp_path / "canopy_versions"
    shutil.copytree(canopy.migrations_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    canopy.migrations_dir = str(copy)
    errors = [str(f) for f in doctor.run_doctor(kernel) if f.severity == "error"]
    assert errors == [
        "Error: [policies] policy 'timber_canopy_types' on 'sessions' allows 'paper_trading,trading' but app "
        "'canopy' owns 'options,paper_trading,trading'. Fix: `timber create-migration \"session types\" --app "
        "canopy`, then `timber migrate`"
    ]
    assert runner.check(kernel) == [
        "app 'canopy': roles/policies differ from its migrations (restrict_types('canopy', 'sessions', "
        "'session_type', ['options', 'paper_trading', 'trading'])): run `timber create-migration \"...\" --app canopy`"
    ]
    before = policies(pg_database)
    path = autogen.create_migration(kernel, "options sessions", "canopy", rev_id="canopy_0003")
    assert path is not None
    source = Path(path).read_text()
    body = source[source.index("def upgrade"):]
    assert [line.strip() for line in body.splitlines() if line.strip().startswith(("op.", "tops.", "with "))] == [
        "tops.restrict_types('canopy', 'sessions', 'session_type', ['options', 'paper_trading', 'trading'])",
        "tops.restrict_types('canopy', 'sessions', 'session_type', ['paper_trading', 'trading'])",
    ]
    assert "down_revision: str | Sequence[str] | None = 'canopy_0002'" in source
    runner.upgrade(kernel)
    assert policies(pg_database) == before
    assert q(pg_database, "SELECT obj_description(oid, 'pg_policy') FROM pg_policy WHERE polname = "
                          "'timber_canopy_types'") == [("timber session types: options,paper_trading,trading",)]
    assert [f for f in doctor.run_doctor(kernel) if f.severity == "error"] == []
    assert runner.check(kernel) == []
    # Nothing further to generate.
    assert autogen.create_migration(kernel, "again", "canopy") is None
    runner.downgrade(kernel, "canopy", "canopy_0002")
    kernel.close()


def test_startup_check_refuses_a_database_where_rls_is_off(pg_database: URL) -> None:
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE sessions NO FORCE ROW LEVEL SECURITY"))
    try:
        with pytest.raises(timber_core.errors.ConfigurationError) as err:
            timber_core.initialize_timber("canopy", database_url=pg_database)
        assert str(err.value).endswith(
            "  - Error: [rls] row-level security on shared typed table 'sessions' is enabled but not forced. "
            "Fix: ALTER TABLE sessions ENABLE ROW LEVEL SECURITY; ALTER TABLE sessions FORCE ROW LEVEL SECURITY; "
            "(or run `timber migrate`)"
        )
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE sessions FORCE ROW LEVEL SECURITY"))
        engine.dispose()


def test_doctor_reports_connection_arithmetic(pg_database: URL) -> None:
    kernel = kernel_for(pg_database)
    max_conn = q(pg_database, "SHOW max_connections")[0][0]
    reserved = q(pg_database, "SHOW superuser_reserved_connections")[0][0]
    found = [f for f in doctor.run_doctor(kernel, instances=50) if f.check == "connections"]
    kernel.close()
    assert [f.message for f in found] == [
        f"2 app(s) x 50 instance(s) x (pool_size + max_overflow = 15) = 1500 connections, but the server allows "
        f"{int(max_conn) - int(reserved)} (max_connections {max_conn} - superuser_reserved_connections {reserved})"
    ]


def test_migrate_command_on_an_empty_database_as_the_admin(pg_database: URL) -> None:
    # Roles already exist (cluster-wide, from the earlier tests): a second database must migrate anyway.
    other = pg_database.set(database=f"{pg_database.database}_b")
    server = create_engine(pg_database.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{other.database}"'))
    try:
        env = {"DATABASE_URL": other.render_as_string(hide_password=False), "TIMBER_APP": "grove"}
        result = CliRunner().invoke(cli(), ["migrate"], env=env)
        assert (result.exit_code, result.output) == (0, f"migrated {other.render_as_string()} to every head\n")
        assert versions(other) == ["canopy_0002", "grove_0002", "timber_0005"]
        result = CliRunner().invoke(cli(), ["downgrade", "--app", "grove", "base"], env=env)
        assert (result.exit_code, result.output) == (0, "downgraded app 'grove' to base\n")
        assert versions(other) == ["canopy_0002", "timber_0005"]
    finally:
        timber_core.shutdown()
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{other.database}" WITH (FORCE)'))
        server.dispose()
