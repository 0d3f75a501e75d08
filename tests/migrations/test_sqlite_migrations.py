"""The same migration graph on SQLite: the embedded default goes through it (batch mode, no roles or RLS)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

import timber_core
from timber_core.errors import ConfigurationError
from timber_core.migrations import autogen, commands, doctor, runner

HEADS = {"timber": "timber_0005", "canopy": "canopy_0002", "grove": "grove_0002"}
ALL_TABLES = [
    "alembic_version", "events", "notifications", "orders", "research_reports", "research_sessions",
    "sessions", "timber_gdpr_audit", "timber_revisions", "timber_vector_outbox", "trading_sessions",
    "user_credentials", "users",
]


def table_names(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def columns(url: str, table: str) -> list[str]:
    engine = create_engine(url)
    try:
        return [c["name"] for c in inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def indexes(url: str, table: str) -> list[str]:
    engine = create_engine(url)
    try:
        return sorted(str(i["name"]) for i in inspect(engine).get_indexes(table))
    finally:
        engine.dispose()


def status(kernel: Any) -> dict[str, Any]:
    return {s.app: (s.current, s.pending) for s in runner.status(kernel)}


def test_initialize_timber_migrates_the_embedded_database_to_every_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = timber_core.initialize_timber("canopy", database_url=url)
    assert status(kernel) == {app: (rev, []) for app, rev in HEADS.items()}
    assert table_names(url) == ALL_TABLES
    assert runner.check(kernel) == []
    assert doctor.run_doctor(kernel) == []
    kernel.close()
    # A second start finds nothing to do and keeps the data.
    kernel = timber_core.initialize_timber("grove", database_url=url)
    assert status(kernel) == {app: (rev, []) for app, rev in HEADS.items()}
    kernel.close()


def test_downgrade_each_app_to_base_and_back_in_batch_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = timber_core.initialize_timber("canopy", database_url=url)
    runner.downgrade(kernel, "canopy", "-1")
    assert "exchange" not in columns(url, "orders")
    assert "ix_orders_exchange" not in indexes(url, "orders")
    runner.downgrade(kernel, "canopy", "base")
    assert table_names(url) == [t for t in ALL_TABLES if t not in ("orders", "trading_sessions")]
    runner.downgrade(kernel, "grove", "base")
    assert table_names(url) == ["alembic_version", "events", "notifications", "sessions", "timber_gdpr_audit",
                                "timber_revisions", "timber_vector_outbox", "user_credentials", "users"]
    runner.upgrade(kernel, "grove")
    assert status(kernel)["grove"] == ("grove_0002", [])
    assert status(kernel)["canopy"] == (None, ["canopy_0001", "canopy_0002"])
    runner.upgrade(kernel)
    assert "exchange" in columns(url, "orders")
    assert indexes(url, "orders") == ["ix_orders_exchange", "ix_orders_symbol", "ix_orders_user_id", "ix_orders_user_id_status"]
    assert runner.check(kernel) == []
    kernel.close()


def test_rows_survive_a_batch_downgrade_and_upgrade_of_another_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = timber_core.initialize_timber("canopy", database_url=url)
    with kernel.db.connection() as conn:
        conn.execute(text("INSERT INTO users (id, email, username, created_at, updated_at) "
                          "VALUES ('u1', 'a@x', 'a', '2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO orders (id, user_id, symbol, order_type, quantity, status, exchange, "
                          "created_at, updated_at) VALUES ('o1', 'u1', 'ACME', 'buy', 3, 'pending', 'XNYS', "
                          "'2026-01-01', '2026-01-01')"))
    runner.downgrade(kernel, "canopy", "canopy_0001")
    runner.upgrade(kernel)
    with kernel.db.connection() as conn:
        assert conn.execute(text("SELECT id, symbol, quantity, exchange FROM orders")).all() == [("o1", "ACME", 3, None)]
    kernel.close()


def test_an_app_without_migrations_gets_its_tables_created_directly(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "notes.yaml").write_text(
        "version: '1'\ndepends: ['user_models.yaml']\nmodels:\n  - name: Note\n    table_name: notes\n    columns:\n"
        "      - name: id\n        type: String(36)\n        primary_key: true\n"
    )
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = timber_core.initialize_timber("jotter", model_config_dirs=[str(models)], database_url=url,
                                           session_types=["jotting"])
    assert "notes" in table_names(url)
    assert status(kernel)["jotter"] == (None, [])
    assert runner.check(kernel) == [
        "app 'jotter' has tables but no migrations: run `timber create-migration \"initial\" --app jotter`"
    ]
    kernel.close()


def test_a_database_made_before_migrations_is_left_to_create_all_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = timber_core.initialize_timber("canopy", database_url=url, create_tables=False)
    kernel.metadata.tables["users"].create(kernel.db.engine)
    kernel.close()
    with caplog.at_level(logging.WARNING, logger="timber.migrations"):
        kernel = timber_core.initialize_timber("canopy", database_url=url)
    # user_credentials and timber_gdpr_audit are no registry models: only timber_0004 and timber_0005 create
    # them (no web login, no GDPR erasure on such a database).
    assert table_names(url) == [t for t in ALL_TABLES if t not in (
        "alembic_version", "timber_gdpr_audit", "timber_revisions", "user_credentials")]
    assert [r.getMessage() for r in caplog.records] == [
        f"timber: sqlite:///{tmp_path}/timber.db has Timber tables but no alembic_version (created before "
        f"migrations); creating missing tables directly. Start from a new database to use the migrations."
    ]
    kernel.close()


def test_create_migration_with_nothing_changed_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = timber_core.initialize_timber("canopy", database_url=url)
    before = sorted(os.listdir(kernel.apps.get("canopy").migrations_dir))
    assert autogen.create_migration(kernel, "nothing", "canopy") is None
    assert sorted(os.listdir(kernel.apps.get("canopy").migrations_dir)) == before
    kernel.close()


def test_create_migration_needs_the_database_at_every_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = timber_core.initialize_timber("canopy", database_url=url)
    runner.downgrade(kernel, "grove", "-1")
    with pytest.raises(ConfigurationError, match=r"^the database is not at every head: not applied yet: grove "
                       r"\(grove_0002\)\. create-migration compares the models with a migrated database: run "
                       r"`timber migrate` first$"):
        autogen.create_migration(kernel, "x", "canopy")
    kernel.close()


def _cli() -> click.Group:
    group = click.Group("timber")
    commands.register(group)
    return group


def test_commands_on_the_embedded_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    env = {"DATABASE_URL": url, "TIMBER_APP": "canopy"}
    runner_ = CliRunner()
    result = runner_.invoke(_cli(), ["migrations", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"app": "timber", "current": None, "head": "timber_0005", "pending": ["timber_0001", "timber_0002", "timber_0003", "timber_0004", "timber_0005"],
         "version": "0.1.0", "installed": True, "problem": None},
        {"app": "canopy", "current": None, "head": "canopy_0002", "pending": ["canopy_0001", "canopy_0002"],
         "version": "1.0.0", "installed": True, "problem": None},
        {"app": "grove", "current": None, "head": "grove_0002", "pending": ["grove_0001", "grove_0002"],
         "version": "1.0.0", "installed": True, "problem": None},
    ]
    result = runner_.invoke(_cli(), ["migrations", "check"], env=env)
    assert result.exit_code == 1
    result = runner_.invoke(_cli(), ["migrate", "--app", "canopy"], env=env)
    assert (result.exit_code, result.output) == (0, f"migrated {url} to canopy@head\n")
    # canopy@head needs the kernel's first revision only; the outbox (timber_0002), the password
    # hashes (timber_0004) and the GDPR erasure records (timber_0005) come with `migrate`.
    assert table_names(url) == [t for t in ALL_TABLES if t not in (
        "research_reports", "research_sessions", "timber_gdpr_audit", "timber_vector_outbox", "user_credentials")]
    result = runner_.invoke(_cli(), ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    result = runner_.invoke(_cli(), ["migrations", "check"], env=env)
    assert (result.exit_code, result.output) == (0, "models, migrations and database agree\n")
    result = runner_.invoke(_cli(), ["migrations", "status"], env=env)
    assert result.output.splitlines() == [
        "app     version  current      head         pending",
        "------  -------  -----------  -----------  -------",
        "timber  0.1.0    timber_0005  timber_0005  none",
        "canopy  1.0.0    canopy_0002  canopy_0002  none",
        "grove   1.0.0    grove_0002   grove_0002   none",
    ]
    result = runner_.invoke(_cli(), ["downgrade", "--app", "grove", "nonsense"], env=env)
    assert result.exit_code == 1
    assert "downgrade --app grove: " in result.output
    result = runner_.invoke(_cli(), ["doctor"], env=env)
    assert (result.exit_code, result.output) == (0, "no problems found\n")


def test_the_migration_commands_module_does_not_import_sqlalchemy() -> None:
    code = ("import sys, click\nimport timber_core.migrations.commands as c\n"
            "g = click.Group('t'); c.register(g)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'psycopg')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
