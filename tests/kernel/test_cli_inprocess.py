"""The ``timber`` group run in-process with click's CliRunner: complete at import, one table style, one error style.

Real SQLite files in tmp_path, and the real PostgreSQL (``scratch_postgres``) where a command differs there.
The subprocess tests (test_kernel_cli.py, test_cli_errors.py) keep what only a real process shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import timber_core

from timber_kernel_testing import GOOD_YAML

Invoke = Callable[..., Result]

pytestmark = pytest.mark.usefixtures("fresh_kernel")


@pytest.fixture
def timber(monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """Invoke the module's own ``cli`` group (as imported) with ARGS; discovery forgotten before and after."""
    from timber_core import cli as cli_module

    timber_core.shutdown()

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli_module.cli, list(args), input=input, catch_exceptions=False)

    yield invoke
    timber_core.shutdown()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'timber.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'timber.db'}" if request.param == "sqlite" else request.getfixturevalue(
        "scratch_postgres")
    monkeypatch.setenv("DATABASE_URL", url)
    return url


# -- complete at import --------------------------------------------------------------------------


def test_the_group_holds_the_kernel_and_app_commands_at_import() -> None:
    from timber_core.cli import cli

    assert {"apps", "models", "check", "migrate", "downgrade", "create-migration", "migrations", "doctor",
            "vectors", "new-app", "canopy-orders"} <= set(cli.list_commands(click.Context(cli)))


def test_an_app_command_from_a_fixture_plugin_runs_in_process(timber: Invoke, install_fixture: Callable) -> None:
    install_fixture("journal")
    result = timber("journal-hello")
    assert (result.exit_code, result.output) == (0, "hello from journal\n")


def test_shutdown_drops_the_commands_of_an_app_no_longer_installed(
    timber: Invoke, install_fixture: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fixture("journal")
    assert timber("journal-hello").exit_code == 0
    monkeypatch.setenv("TIMBER_DISABLE_APPS", "journal")
    timber_core.shutdown()
    result = timber("journal-hello")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, "Error: No such command 'journal-hello'.")


def test_an_app_whose_commands_fail_is_a_warning_on_every_run(timber: Invoke, install_fixture: Callable) -> None:
    install_fixture("bad_commands")
    result = timber("check")
    assert (result.exit_code, result.stdout) == (0, "timber check: ok (3 apps: badcmd, canopy, grove)\n")
    assert result.stderr == ("Warning: app 'badcmd' (timber-bad-commands) failed to register its commands: "
                             "RuntimeError: commands are unavailable on purpose\n")


def test_a_malformed_timber_apps_is_one_error_line(timber: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_APPS", ",")
    result = timber("apps", "list")
    assert (result.exit_code, result.output) == (1, (
        "Error: TIMBER_APPS=',' has an empty entry; give app names separated by commas, e.g. "
        "TIMBER_APPS=canopy,grove\n"))


# -- listings: one table style ------------------------------------------------------------------


def test_apps_list_prints_one_aligned_table(timber: Invoke) -> None:
    result = timber("apps", "list")
    assert (result.exit_code, result.stdout.splitlines()) == (0, [
        "app     version  distribution   models                                            session types"
        "           policies             services                                          status",
        "------  -------  -------------  ------------------------------------------------  ----------------------"
        "  -------------------  ------------------------------------------------  ------",
        "timber  0.1.0    timber-core    Event, Notification, Session, User, VectorOutbox  -                     "
        "  -                    notifications, sessions, tracker, users, vectors  ok",
        "canopy  1.0.0    timber-canopy  TradingSession, Order                             trading, paper_trading"
        "  canopy_own_sessions  orders                                            ok",
        "grove   1.0.0    timber-grove   ResearchSession, ResearchReport                   research, analysis    "
        "  grove_own_sessions   reports                                           ok",
    ])


def test_apps_list_json_exits_one_when_an_app_is_broken(timber: Invoke, install_fixture: Callable) -> None:
    install_fixture("broken")
    result = timber("apps", "list", "--json")
    assert result.exit_code == 1
    assert [(a["name"], a["status"]) for a in json.loads(result.stdout)["apps"]][-1] == ("brokenapp", "broken")


def test_apps_list_lists_an_app_with_a_missing_model_directory_as_broken(
    timber: Invoke, install_fixture: Callable, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_fixture("yaml_dir")
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(tmp_path / "absent"))
    result = timber("apps", "list", "--json")
    yamlfix = {a["name"]: a for a in json.loads(result.stdout)["apps"]}["yamlfix"]
    assert (result.exit_code, yamlfix["status"], yamlfix["error"]) == (1, "broken", (
        f"{tmp_path / 'absent'}:0: app 'yamlfix', field 'model_dirs': is not a directory; fix the app's "
        "timber_model_dirs() or model_config_dirs"))


def test_models_list_prints_one_aligned_table(timber: Invoke) -> None:
    result = timber("models", "list", "--app", "grove")
    assert (result.exit_code, result.stdout.splitlines()) == (0, [
        "model            table              app    access   columns  vector search",
        "---------------  -----------------  -----  -------  -------  -------------",
        "ResearchSession  research_sessions  grove  private  8        notes",
        "ResearchReport   research_reports   grove  private  10       content",
    ])


def test_models_list_json_and_a_model_problem_exit_one(
    timber: Invoke, install_fixture: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fixture("yaml_dir")
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(GOOD_YAML.parent / "bad" / "bad_type"))
    result = timber("models", "list", "--json")
    assert result.exit_code == 1
    assert "field 'Thing.columns.label.type': unknown type 'Strng(10)'" in result.stderr
    assert [m["name"] for m in json.loads(result.stdout)["models"]][-1] == "Thing"


def test_check_reports_a_broken_app_and_who_starts(timber: Invoke, install_fixture: Callable) -> None:
    install_fixture("broken")
    result = timber("check")
    assert (result.exit_code, result.stderr) == (1, (
        "Error: app 'brokenapp': plugin from timber-broken-app is broken and left out: RuntimeError: broken on "
        "purpose: the fixture's import fails\n"
        "timber check: 1 problem(s) found; left out: brokenapp (broken); the other apps start: canopy, grove\n"))


# -- the migration commands need no app ---------------------------------------------------------


def test_migrate_and_status_with_only_the_kernel_installed(
    timber: Invoke, any_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from timber_core.db import DatabaseManager

    monkeypatch.setenv("TIMBER_APPS", "")
    migrated = timber("migrate")
    display = DatabaseManager(any_url).display_url
    assert (migrated.exit_code, migrated.output) == (0, f"migrated {display} to every head\n")
    status = timber("migrations", "status")
    assert (status.exit_code, status.output.splitlines()) == (0, [
        "app     version  current      head         pending",
        "------  -------  -----------  -----------  -------",
        "timber  0.1.0    timber_0005  timber_0005  none",
    ])


def test_migrate_ignores_timber_app_and_runs_with_no_app(
    timber: Invoke, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_APP", "nosuchapp")
    result = timber("migrate")
    assert (result.exit_code, result.output) == (0, f"migrated {sqlite_url} to every head\n")


def test_migrations_check_and_doctor_on_a_migrated_database(timber: Invoke, any_url: str) -> None:
    assert timber("migrate").exit_code == 0
    check = timber("migrations", "check")
    assert (check.exit_code, check.output) == (0, "models, migrations and database agree\n")
    doctor = timber("doctor")
    assert doctor.exit_code == 0, doctor.output


def test_migrations_check_exits_one_on_an_empty_database(timber: Invoke, sqlite_url: str) -> None:
    result = timber("migrations", "check")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == ("app 'timber': 5 revision(s) not applied (timber_0001, timber_0002, "
                                               "timber_0003, timber_0004, timber_0005): run `timber migrate`")


def test_migrations_status_json_on_an_empty_database(timber: Invoke, sqlite_url: str) -> None:
    result = timber("migrations", "status", "--json")
    assert [(r["app"], r["current"], r["head"]) for r in json.loads(result.output)] == [
        ("timber", None, "timber_0005"), ("canopy", None, "canopy_0002"), ("grove", None, "grove_0002")]


def test_migrate_sql_prints_the_upgrade_and_changes_nothing(timber: Invoke, sqlite_url: str) -> None:
    result = timber("migrate", "--sql")
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE users" in result.output
    assert timber("migrations", "status", "--json").exit_code == 0


def test_migrate_refuses_drop_unrecorded_with_sql(timber: Invoke, sqlite_url: str) -> None:
    result = timber("migrate", "--sql", "--drop-unrecorded")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, "Error: --drop-unrecorded changes the database; it cannot go with --sql")


def test_downgrade_then_create_migration_with_nothing_changed(timber: Invoke, sqlite_url: str) -> None:
    assert timber("migrate").exit_code == 0
    down = timber("downgrade", "--app", "grove", "-1")
    assert (down.exit_code, down.output) == (0, "downgraded app 'grove' to -1\n")
    assert timber("migrate").exit_code == 0
    created = timber("create-migration", "nothing", "--app", "grove")
    assert (created.exit_code, created.output) == (0, "no changes for app 'grove': nothing written\n")


def test_downgrade_refuses_a_dash_word_as_an_unknown_option(timber: Invoke, sqlite_url: str) -> None:
    result = timber("downgrade", "--app", "grove", "-x")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, "Error: No such option: -x")


def test_a_failing_migration_command_is_one_error_line_naming_the_type(timber: Invoke, sqlite_url: str) -> None:
    result = timber("downgrade", "--app", "grove", "nonsense")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert "downgrade --app grove: " in result.stderr


def test_migrate_of_an_app_that_is_not_installed_is_one_error_line(timber: Invoke, sqlite_url: str) -> None:
    result = timber("migrate", "--app", "ledger")
    assert (result.exit_code, result.output) == (1, (
        "Error: no app named 'ledger' is installed (installed: canopy, grove); install its distribution, "
        "or check TIMBER_APPS / TIMBER_DISABLE_APPS\n"))


# -- apps remove --------------------------------------------------------------------------------


def test_apps_remove_refuses_the_kernel(timber: Invoke) -> None:
    result = timber("apps", "remove", "timber", "--yes")
    assert (result.exit_code, result.output) == (
        1, "Error: the kernel ('timber') cannot be removed; remove apps one at a time\n")


def test_apps_remove_refuses_an_app_not_installed(timber: Invoke) -> None:
    result = timber("apps", "remove", "ledger", "--yes")
    assert (result.exit_code, result.output) == (1, (
        "Error: no app named 'ledger' is installed (installed: canopy, grove); `timber apps remove` needs the app "
        "still installed: its migrations take its tables down\n"))


def test_apps_remove_json_needs_dry_run(timber: Invoke) -> None:
    result = timber("apps", "remove", "grove", "--json")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, "Error: --json prints the plan only: add --dry-run")


def test_apps_remove_without_a_terminal_asks_for_yes(timber: Invoke) -> None:
    result = timber("apps", "remove", "grove")
    assert (result.exit_code, result.output) == (1, (
        "Error: cannot ask for confirmation (stdin is not a terminal): run `timber apps remove grove --yes` "
        "to remove it, or add --dry-run to only see what would go\n"))


def test_apps_remove_dry_run_json_then_yes_removes_grove(timber: Invoke, sqlite_url: str) -> None:
    assert timber("migrate").exit_code == 0
    plan = timber("apps", "remove", "grove", "--dry-run", "--json")
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["app"] == "grove"
    dry = timber("apps", "remove", "grove", "--dry-run")
    assert (dry.exit_code, dry.output.splitlines()[-1]) == (0, "dry run: nothing changed")
    removed = timber("apps", "remove", "grove", "--yes")
    assert removed.exit_code == 0, removed.output
    assert f"removed app 'grove' from {sqlite_url}" in removed.output.splitlines()


# -- app_kernel ---------------------------------------------------------------------------------


def test_app_kernel_turns_an_error_in_its_block_into_one_error_line(sqlite_url: str) -> None:
    from timber_core.cli import app_kernel
    from timber_core.errors import NotFoundError

    @click.command()
    def missing() -> None:
        with app_kernel("grove"):
            raise NotFoundError("no report 'r1'")

    result = CliRunner().invoke(missing, [])
    assert (result.exit_code, result.output) == (1, "Error: no report 'r1'\n")


# -- main() and the one error style ---------------------------------------------------------------

REFUSED_LINE = (
    "Error: cannot connect to the database postgresql+psycopg://postgres@127.0.0.1:1/test: "
    "127.0.0.1:1 refused the connection; start PostgreSQL there or point DATABASE_URL at a running server\n"
)


def test_main_prints_the_traceback_then_the_error_line_with_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from timber_core.cli import main

    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(SystemExit) as exit_:
        main(["--traceback", "migrations", "status"])
    lines = capsys.readouterr().err.splitlines(keepends=True)
    assert (exit_.value.code, lines[0], lines[-1]) == (1, "Traceback (most recent call last):\n", REFUSED_LINE)


def test_main_without_traceback_prints_the_error_line_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from timber_core.cli import main

    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(SystemExit) as exit_:
        main(["migrations", "status"])
    assert (exit_.value.code, capsys.readouterr().err) == (1, REFUSED_LINE)


def test_main_exits_with_clicks_code_for_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from timber_core.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    assert (exit_.value.code, capsys.readouterr().err.splitlines()[-1]) == (2, "Error: No such command 'no-such-command'.")


def test_main_returns_after_version(capsys: pytest.CaptureFixture[str]) -> None:
    from timber_core.cli import main

    main(["--version"])
    assert capsys.readouterr() == ("timber, version 0.1.0\n", "")


def test_report_of_an_error_that_is_not_a_click_error_names_its_type(capsys: pytest.CaptureFixture[str]) -> None:
    from timber_core._cli_support import report
    from timber_core.errors import ConfigurationError

    assert (report(ValueError("bad value")), report(ConfigurationError("set X"))) == (1, 1)
    assert capsys.readouterr().err == "Error: ValueError: bad value\nError: set X\n"


def test_describe_a_file_error_under_timber_home_names_it_and_the_fix(tmp_path: Path) -> None:
    from timber_core._cli_support import describe

    home = Path(str(tmp_path / ".timber"))
    denied = PermissionError(13, "Permission denied", str(home / "timber.db"))
    vectors = PermissionError(13, "Permission denied", str(home / "vectors" / "index"))
    assert (describe(denied), describe(vectors)) == (
        f"TIMBER_HOME {home}: Permission denied: {home / 'timber.db'}: point TIMBER_HOME at a writable directory "
        "or set DATABASE_URL",
        f"TIMBER_HOME {home}: Permission denied: {home / 'vectors' / 'index'}: point TIMBER_HOME at a writable "
        "directory or set QDRANT_URL")


def test_describe_a_database_error_keeps_the_drivers_first_line() -> None:
    import sqlalchemy.exc

    from timber_core._cli_support import describe, logged

    failed = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("disk I/O error\nDETAIL: more"))
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"),
                                           connection_invalidated=True)
    assert (describe(failed), logged(failed)) == ("OperationalError: disk I/O error", False)
    assert (describe(lost), logged(lost)) == (
        "lost the connection to the database (server closed the connection); run the command again once it is back",
        True)


def test_apps_remove_twice_says_nothing_is_left(timber: Invoke, sqlite_url: str) -> None:
    assert timber("migrate").exit_code == 0
    assert timber("apps", "remove", "grove", "--yes").exit_code == 0
    again = timber("apps", "remove", "grove", "--yes")
    assert (again.exit_code, again.output.splitlines()[-2]) == (0, f"nothing of app 'grove' is left in {sqlite_url}")


def test_apps_remove_on_postgresql_prints_the_sql_to_drop_the_kept_role(
    timber: Invoke, scratch_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", scratch_postgres)
    assert timber("migrate").exit_code == 0
    result = timber("apps", "remove", "grove", "--yes")
    assert result.exit_code == 0, result.output
    assert any(line.startswith("its role timber_grove is kept: roles belong to the whole PostgreSQL server")
               for line in result.output.splitlines())


def test_check_with_a_model_clash_says_no_app_can_start(timber: Invoke, install_fixture: Callable) -> None:
    install_fixture("model_clash")
    result = timber("check")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("timber check: 2 problem(s) found; left out: canopy (conflict), "
                                                     "clash (conflict), grove (conflict)")


def test_apps_list_reads_flow_style_names_with_yaml_and_skips_a_malformed_file(
    timber: Invoke, install_fixture: Callable, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "a_flow.yaml").write_text("models: [{name: Alpha, table_name: alpha}]\n")
    (models / "b_broken.yaml").write_text("models: [\n")
    install_fixture("yaml_dir")
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(models))
    result = timber("apps", "list", "--json")
    yamlfix = {a["name"]: a for a in json.loads(result.stdout)["apps"]}["yamlfix"]
    assert (result.exit_code, yamlfix["status"], yamlfix["models"]) == (1, "broken", ["Alpha"])


@pytest.mark.parametrize("module", ["timber_core.migrations.commands", "timber_core.vectors.commands",
                                    "timber_core.gdpr.commands"])
def test_each_kernel_command_module_adds_exactly_the_commands_cli_loads_it_for(module: str) -> None:
    import importlib

    from timber_core.cli import KERNEL_COMMANDS

    group = click.Group()
    importlib.import_module(module).register(group)
    assert sorted(group.commands) == sorted(KERNEL_COMMANDS[module])


def test_serve_refuses_an_app_that_is_not_installed_in_process(timber: Invoke) -> None:
    result = timber("serve", "ghost")
    assert (result.exit_code, result.stderr) == (1, (
        "Error: no app named 'ghost' is installed and loaded (installed: canopy, grove; or 'platform' for the "
        "cross-app server); install its distribution, or see `timber apps list`\n"))


def test_serve_refuses_reload_with_several_workers(timber: Invoke) -> None:
    result = timber("serve", "canopy", "--reload", "--workers", "2")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, "Error: --reload runs one process: leave out --workers")
