"""A database left half-migrated (tables present, no revision recorded) is diagnosed, with a fix that works.

Before migrations were atomic on SQLite, a `timber migrate` killed halfway left its
tables behind with an empty ``alembic_version``. Each test makes that state with
raw SQL on a real SQLite file and runs the real commands on it.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from timber_core.migrations import commands

from .procs import tables, versions

ALL_TABLES = [
    "alembic_version", "events", "notifications", "orders", "research_reports", "research_sessions",
    "sessions", "timber_gdpr_audit", "timber_revisions", "timber_vector_outbox", "trading_sessions",
    "user_credentials", "users",
]
HEADS = ["canopy_0002", "grove_0002", "timber_0005"]


def _cli() -> click.Group:
    group = click.Group("timber")
    commands.register(group)
    return group


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(_cli(), list(args), env={"DATABASE_URL": url, "TIMBER_APP": "canopy"})


@pytest.fixture(params=["empty alembic_version", "no alembic_version"])
def half_applied(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite database holding two of Timber's tables (empty) and no recorded revision."""
    url = f"sqlite:///{tmp_path}/timber.db"
    engine = create_engine(url)
    with engine.begin() as conn:
        if request.param == "empty alembic_version":
            conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE users (id VARCHAR(36) PRIMARY KEY, email VARCHAR(255))")
        conn.exec_driver_sql("CREATE TABLE sessions (id VARCHAR(36) PRIMARY KEY, "
                             "user_id VARCHAR(36) REFERENCES users (id))")
    engine.dispose()
    return url


def diagnosis(url: str) -> str:
    return (f"{url} has tables but no revision recorded in alembic_version: sessions, users (left by an "
            f"interrupted migration). Fix: run `timber migrate --drop-unrecorded` (it drops those tables if "
            f"they hold no rows, then migrates)")


def test_migrate_names_the_unrecorded_tables_and_the_fix(half_applied: str) -> None:
    before = tables(half_applied)
    result = run(half_applied, "migrate")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, "", f"Error: ConfigurationError: {diagnosis(half_applied)}\n")
    assert tables(half_applied) == before


def test_migrations_check_names_the_unrecorded_tables_and_the_fix(half_applied: str) -> None:
    result = run(half_applied, "migrations", "check")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"{diagnosis(half_applied)}\n")


def test_doctor_names_the_unrecorded_tables_and_the_fix(half_applied: str) -> None:
    result = run(half_applied, "doctor")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", (
        f"Error: [migrations] {half_applied} has tables but no revision recorded in alembic_version: sessions, "
        f"users (left by an interrupted migration). Fix: run `timber migrate --drop-unrecorded` (it drops those "
        f"tables if they hold no rows, then migrates)\n"
    ))


def test_following_the_fix_migrates_the_database(half_applied: str) -> None:
    result = run(half_applied, "migrate", "--drop-unrecorded")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"migrated {half_applied} to every head\n", "")
    assert (tables(half_applied), versions(half_applied)) == (ALL_TABLES, HEADS)
    result = run(half_applied, "migrations", "check")
    assert (result.exit_code, result.stdout) == (0, "models, migrations and database agree\n")


def test_drop_unrecorded_refuses_tables_that_hold_rows(half_applied: str) -> None:
    engine = create_engine(half_applied)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO users (id, email) VALUES ('u1', 'a@example.com')")
    engine.dispose()
    before = tables(half_applied)
    result = run(half_applied, "migrate", "--drop-unrecorded")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", (
        f"Error: ConfigurationError: {half_applied}: not dropping tables that hold rows: users. They were not "
        f"left by an interrupted migration: back the database up, then move those rows out and drop the tables "
        f"yourself before `timber migrate`\n"
    ))
    assert tables(half_applied) == before


@pytest.fixture
def grove_unrecorded(tmp_path: Path) -> str:
    """A SQLite database at every head, except that Grove's revision is no longer recorded."""
    import timber_core

    url = f"sqlite:///{tmp_path}/timber.db"
    timber_core.initialize_timber("canopy", database_url=url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version WHERE version_num = 'grove_0002'")
    engine.dispose()
    return url


def test_a_start_names_one_apps_unrecorded_tables_and_the_fix(grove_unrecorded: str) -> None:
    import timber_core
    from timber_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as err:
        timber_core.initialize_timber("canopy", database_url=grove_unrecorded)
    assert str(err.value) == (
        f"{grove_unrecorded} has tables but no revision recorded in alembic_version: research_reports, "
        f"research_sessions (left by an interrupted migration). Fix: run `timber migrate --drop-unrecorded` (it "
        f"drops those tables if they hold no rows, then migrates)"
    )


def test_following_the_fix_migrates_one_apps_unrecorded_tables(grove_unrecorded: str) -> None:
    result = run(grove_unrecorded, "migrate", "--drop-unrecorded")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"migrated {grove_unrecorded} to every head\n", "")
    assert (tables(grove_unrecorded), versions(grove_unrecorded)) == (ALL_TABLES, HEADS)
