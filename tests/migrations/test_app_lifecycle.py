"""An app's life seen from the migrations: upgraded, downgraded, uninstalled, disabled; the others go on.

Each test runs on SQLite and on PostgreSQL (``db``), with the fixture app ``portfolio``
(tests/fixtures/plugins/portfolio: 0.1 with ``portfolio_0001``, which depends on the
kernel's ``timber_0004``; portfolio_v2: 0.2 adding ``portfolio_0002``) installed,
upgraded, downgraded or uninstalled by changing what is on ``sys.path``, and the real
``timber`` commands run in-process.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect, text

import timber_core
from timber_core.errors import ConfigurationError
from timber_core.migrations import commands

from .procs import display, tables, versions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"
KERNEL_ROWS = ["timber_0001", "timber_0002", "timber_0003", "timber_0004", "timber_0005"]


def _cli() -> click.Group:
    group = click.Group("timber")
    commands.register(group)
    return group


class Installed:
    """Which version of ``portfolio`` is installed (on sys.path): none, 0.1 or 0.2."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.path: str | None = None

    def use(self, case: str | Path | None) -> None:
        if self.path is not None:
            sys.path.remove(self.path)
            self.path = None
        for name in [m for m in sys.modules if m == "portfolio_app" or m.startswith("portfolio_app.")]:
            del sys.modules[name]
        if case is not None:
            path = case if isinstance(case, Path) else FIXTURES / case
            self.path = str(path)
            self.monkeypatch.syspath_prepend(self.path)
        importlib.invalidate_caches()


@pytest.fixture
def portfolio(monkeypatch: pytest.MonkeyPatch) -> Iterator[Installed]:
    installed = Installed(monkeypatch)
    yield installed
    installed.use(None)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/timber.db"
    url: str = request.getfixturevalue("scratch_postgres")
    return url


def run(url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(_cli(), list(args), env={"DATABASE_URL": url, "TIMBER_APP": "canopy", **env})


def ok(url: str, *args: str) -> Result:
    result = run(url, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def columns(url: str, table: str) -> list[str]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return sorted(c["name"] for c in inspect(engine).get_columns(table))
    finally:
        engine.dispose()


#: What `migrations check` says of Canopy taken back to canopy_0001 (the fixtures below do).
CANOPY_BEHIND = (
    "app 'canopy': 1 revision(s) not applied (canopy_0002): run `timber migrate`\n"
    "app 'canopy': the database differs from the models: add_column orders.exchange: run "
    "`timber create-migration \"...\" --app canopy` then `timber migrate`\n"
    "app 'canopy': the database differs from the models: add_index orders: ix_orders_exchange: run "
    "`timber create-migration \"...\" --app canopy` then `timber migrate`\n"
)
MISSING_0001 = (
    "revision portfolio_0001 of app 'portfolio' is applied but the app is not installed (or is disabled or "
    "broken): its tables are left alone and the other apps go on. Fix: reinstall its distribution to use it "
    "again; to remove it, reinstall it and run `timber apps remove portfolio` before uninstalling it"
)
OLDER = (
    "app 'portfolio' (timber-portfolio 0.1) is older than the database: revision portfolio_0002 is applied but the "
    "installed version does not have it (its head is portfolio_0001), so app 'portfolio' is left out of migrations "
    "and cannot start. Fix: reinstall the newer version; or, to go back, run `timber downgrade --app portfolio "
    "portfolio_0001` with the newer version installed, then install the older one"
)


@pytest.fixture
def migrated_then_uninstalled(db: str, portfolio: Installed) -> str:
    """portfolio 0.1 migrated with the others, Canopy taken back one revision, then portfolio uninstalled."""
    portfolio.use("portfolio")
    ok(db, "migrate")
    ok(db, "downgrade", "--app", "canopy", "canopy_0001")
    portfolio.use(None)
    return db


# --- the kernel revision portfolio_0001 depends on (timber_0004) is collapsed out of alembic_version --------

def test_alembic_version_keeps_no_row_of_the_kernel_revision_portfolio_0001_implies(db: str, portfolio: Installed) -> None:
    portfolio.use("portfolio")
    ok(db, "migrate")
    assert versions(db) == ["canopy_0002", "grove_0002", "portfolio_0001", "timber_0005"]


# --- Bug 1: an app uninstalled or disabled with revisions applied -------------------------------------------

def test_migrate_without_the_app_upgrades_the_others_and_warns(migrated_then_uninstalled: str) -> None:
    db = migrated_then_uninstalled
    result = run(db, "migrate")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, f"migrated {display(db)} to every head\n", f"Warning: {MISSING_0001}\n")
    assert versions(db) == ["canopy_0002", "grove_0002", "portfolio_0001", "timber_0005"]
    assert "exchange" in columns(db, "orders")  # canopy_0002 ran


def test_migrate_without_the_app_does_not_run_the_kernel_revisions_again(migrated_then_uninstalled: str) -> None:
    db = migrated_then_uninstalled
    sql(db, "INSERT INTO users (id, email, username, created_at, updated_at) "
            "VALUES ('u1', 'a@example.com', 'a', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
    ok(db, "migrate")
    assert sql(db, "SELECT id FROM users") == [("u1",)]
    assert sorted(r[0] for r in sql(db, "SELECT revision FROM timber_revisions WHERE app = 'timber'")) == KERNEL_ROWS
    assert "portfolios" in tables(db) and "portfolio_holdings" in tables(db)


def test_the_app_reinstalled_finds_its_revision_and_the_kernel_where_they_were(migrated_then_uninstalled: str,
                                                                                  portfolio: Installed) -> None:
    db = migrated_then_uninstalled
    ok(db, "migrate")
    portfolio.use("portfolio")
    result = ok(db, "migrations", "status", "--json")
    assert [(r["app"], r["current"], r["pending"]) for r in json.loads(result.stdout)] == [
        ("timber", "timber_0005", []), ("canopy", "canopy_0002", []), ("grove", "grove_0002", []),
        ("portfolio", "portfolio_0001", [])]
    assert (run(db, "migrations", "check").stdout, versions(db)) == (
        "models, migrations and database agree\n", ["canopy_0002", "grove_0002", "portfolio_0001", "timber_0005"])


def test_disabling_the_app_is_the_same_as_uninstalling_it(db: str, portfolio: Installed) -> None:
    portfolio.use("portfolio")
    ok(db, "migrate")
    result = run(db, "migrations", "check", TIMBER_DISABLE_APPS="portfolio")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "models, migrations and database agree\n", f"Warning: {MISSING_0001}\n")


def test_status_lists_the_app_as_not_installed(migrated_then_uninstalled: str) -> None:
    result = ok(migrated_then_uninstalled, "migrations", "status")
    assert result.stdout.splitlines()[-2:] == [
        "portfolio  not installed  portfolio_0001  -            none",
        f"Warning: {MISSING_0001}",
    ]
    rows = json.loads(ok(migrated_then_uninstalled, "migrations", "status", "--json").stdout)
    assert rows[-1] == {"app": "portfolio", "current": "portfolio_0001", "head": None, "pending": [],
                        "version": None, "installed": False, "problem": MISSING_0001}
    assert rows[1] == {"app": "canopy", "current": "canopy_0001", "head": "canopy_0002", "pending": ["canopy_0002"],
                       "version": "1.0.0", "installed": True, "problem": None}


def test_check_warns_about_the_app_and_still_reports_the_others(migrated_then_uninstalled: str) -> None:
    result = run(migrated_then_uninstalled, "migrations", "check")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", (
        f"Warning: {MISSING_0001}\n" + CANOPY_BEHIND))


def test_doctor_warns_about_the_app(migrated_then_uninstalled: str) -> None:
    db = migrated_then_uninstalled
    ok(db, "migrate")
    result = run(db, "doctor")
    problem, fix = MISSING_0001.split(". Fix: ")
    assert f"Warning: [migrations] {problem}. Fix: {fix}\n" in result.stdout
    assert result.exit_code == 0, result.stderr


def test_another_app_starts_and_logs_the_warning(migrated_then_uninstalled: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    db = migrated_then_uninstalled
    with caplog.at_level(logging.WARNING):
        kernel = timber_core.initialize_timber("canopy", database_url=db, create_tables=True)
    kernel.close()
    assert any(MISSING_0001 in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert versions(db) == ["canopy_0002", "grove_0002", "portfolio_0001", "timber_0005"]


# --- Upgrading and downgrading an app distribution ----------------------------------------------------------

def test_an_upgraded_distribution_shows_its_pending_revision_and_migrate_applies_only_it(
        db: str, portfolio: Installed) -> None:
    portfolio.use("portfolio")
    ok(db, "migrate")
    portfolio.use("portfolio_v2")
    line = ok(db, "migrations", "status").stdout.splitlines()[-1]
    assert line.split() == ["portfolio", "0.2", "portfolio_0001", "portfolio_0002", "portfolio_0002"]
    before = sql(db, "SELECT version_num FROM alembic_version ORDER BY version_num")
    ok(db, "migrate")
    assert versions(db) == sorted([v for (v,) in before if v != "portfolio_0001"] + ["portfolio_0002"])
    assert columns(db, "portfolios") == ["created_at", "currency", "id", "name", "updated_at", "user_id"]
    assert ok(db, "migrations", "check").stdout == "models, migrations and database agree\n"


@pytest.fixture
def downgraded(db: str, portfolio: Installed) -> str:
    """portfolio 0.2 migrated, Canopy taken back one revision, then portfolio 0.1 installed over it."""
    portfolio.use("portfolio_v2")
    ok(db, "migrate")
    ok(db, "downgrade", "--app", "canopy", "canopy_0001")
    portfolio.use("portfolio")
    return db


def test_migrate_with_a_downgraded_distribution_upgrades_the_others_and_names_the_app(downgraded: str) -> None:
    result = run(downgraded, "migrate")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, f"migrated {display(downgraded)} to every head except the app(s) left out above\n", f"Error: {OLDER}\n")
    assert versions(downgraded) == ["canopy_0002", "grove_0002", "portfolio_0002", "timber_0005"]
    assert "currency" in columns(downgraded, "portfolios")


def test_migrate_app_with_a_downgraded_distribution_is_refused(downgraded: str) -> None:
    result = run(downgraded, "migrate", "--app", "portfolio")
    assert (result.exit_code, result.stderr) == (1, f"Error: ConfigurationError: {OLDER}\n")


def test_check_and_status_name_the_downgraded_app(downgraded: str) -> None:
    result = run(downgraded, "migrations", "check")
    head, rest = CANOPY_BEHIND.split("\n", 1)
    assert (result.exit_code, result.stderr) == (1, f"{head}\n{OLDER}\n{rest}")
    assert ok(downgraded, "migrations", "status").stdout.splitlines()[-1] == f"Error: {OLDER}"


def test_the_downgraded_app_cannot_start_and_the_others_can(downgraded: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        timber_core.initialize_timber("portfolio", database_url=downgraded, create_tables=True)
    assert str(raised.value) == OLDER
    kernel = timber_core.initialize_timber("canopy", database_url=downgraded, create_tables=True)
    kernel.close()
    assert versions(downgraded) == ["canopy_0002", "grove_0002", "portfolio_0002", "timber_0005"]


# --- Bug 5: a difference is attributed to the app owning the table ------------------------------------------

@pytest.fixture
def portfolio_copy(tmp_path: Path, portfolio: Installed) -> Path:
    """portfolio 0.1, copied into tmp_path so that a test can change its YAML."""
    root = tmp_path / "site"
    shutil.copytree(FIXTURES / "portfolio", root, ignore=shutil.ignore_patterns("__pycache__"))
    portfolio.use(root)
    return root


def test_check_names_the_app_owning_a_table_with_a_new_index(db: str, portfolio_copy: Path) -> None:
    ok(db, "migrate")
    yaml = portfolio_copy / "portfolio_app" / "models" / "portfolio_models.yaml"
    yaml.write_text(yaml.read_text().replace("        type: String(12)\n",
                                             "        type: String(12)\n        index: true\n"))
    result = run(db, "migrations", "check")
    assert (result.exit_code, result.stderr) == (1, (
        "app 'portfolio': the database differs from the models: add_index portfolio_holdings: "
        "ix_portfolio_holdings_symbol: run `timber create-migration \"...\" --app portfolio` then `timber migrate`\n"))


# --- Bug 4: check compares the real schema -----------------------------------------------------------------

def test_check_reports_a_table_and_a_column_dropped_behind_timbers_back(db: str, portfolio: Installed) -> None:
    portfolio.use("portfolio")
    ok(db, "migrate")
    sql(db, "DROP TABLE portfolio_holdings")
    sql(db, "ALTER TABLE portfolios DROP COLUMN name")
    result = run(db, "migrations", "check")
    assert result.exit_code == 1
    assert sorted(result.stderr.splitlines()) == [
        "app 'portfolio': the database differs from the models: add_column portfolios.name: run "
        "`timber create-migration \"...\" --app portfolio` then `timber migrate`",
        "app 'portfolio': the database differs from the models: add_table portfolio_holdings: run "
        "`timber create-migration \"...\" --app portfolio` then `timber migrate`",
    ]


# --- Bug 6: create-migration on a database behind its heads -------------------------------------------------

def test_create_migration_behind_the_heads_names_them_and_the_fix(db: str, portfolio_copy: Path) -> None:
    ok(db, "migrate")
    ok(db, "downgrade", "--app", "grove", "grove_0001")
    ok(db, "downgrade", "--app", "portfolio", "base")
    result = run(db, "create-migration", "more", "--app", "canopy")
    assert (result.exit_code, result.stderr) == (1, (
        "Error: ConfigurationError: the database is not at every head: not applied yet: grove (grove_0002), "
        "portfolio (portfolio_0001). create-migration compares the models with a migrated database: run "
        "`timber migrate` first\n"))


def test_a_downgrade_under_the_missing_apps_revision_is_refused(migrated_then_uninstalled: str) -> None:
    db = migrated_then_uninstalled
    before = (tables(db), versions(db))
    result = run(db, "downgrade", "--app", "timber", "--all", "timber_0002")
    assert (result.exit_code, result.stderr) == (1, (
        "Error: ConfigurationError: this downgrade would remove timber_0003, timber_0004, which portfolio_0001 (app 'portfolio') "
        "stand(s) on, and that app's code is not installed to take its revisions down first. Fix: reinstall it and "
        "take it down first (`timber downgrade --app portfolio base`, or `timber apps remove portfolio`)\n"))
    assert (tables(db), versions(db)) == before


def test_migrate_refuses_to_guess_under_a_missing_revision_applied_before_it_was_recorded(
        migrated_then_uninstalled: str) -> None:
    db = migrated_then_uninstalled
    sql(db, "DELETE FROM timber_revisions")  # as a database migrated before Timber recorded revisions
    before = (tables(db), versions(db))
    result = run(db, "migrate")
    assert (result.exit_code, result.stderr) == (1, (
        "Error: ConfigurationError: alembic_version records portfolio_0001 (app 'portfolio'), which the installed "
        "code does not have, and Timber cannot tell which revisions of the other apps it stands on (applied before "
        "Timber recorded revisions in timber_revisions), so migrating could run those again. Fix: install the "
        "version of the app that has it and run `timber migrate` once (that records them); then it can be "
        "uninstalled or downgraded\n"))
    assert (tables(db), versions(db)) == before


def test_every_login_may_read_the_record_of_revisions_and_no_app_may_write_it(scratch_postgres: str) -> None:
    ok(scratch_postgres, "migrate")
    assert sql(scratch_postgres, "SELECT has_table_privilege('timber_canopy', 'timber_revisions', 'SELECT'), "
                                 "has_table_privilege('timber_canopy', 'timber_revisions', 'INSERT'), "
                                 "has_table_privilege('timber_platform', 'timber_revisions', 'DELETE')") == [
        (True, False, False)]


def test_on_postgresql_the_startup_check_warns_about_the_app_and_the_others_start(
        scratch_postgres: str, portfolio: Installed, caplog: pytest.LogCaptureFixture) -> None:
    portfolio.use("portfolio")
    ok(scratch_postgres, "migrate")
    portfolio.use(None)
    with caplog.at_level(logging.WARNING, logger="timber.doctor"):
        kernel = timber_core.initialize_timber("canopy", database_url=scratch_postgres)  # no create_tables
    kernel.close()
    problem, fix = MISSING_0001.split(". Fix: ")
    assert f"timber doctor: Warning: [migrations] {problem}. Fix: {fix}" in [r.getMessage() for r in caplog.records]
