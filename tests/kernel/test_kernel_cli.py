"""The ``timber`` command, run as a user runs it: a fresh interpreter, plugins found on PYTHONPATH."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from timber_kernel_testing import BAD_YAML, CANOPY_MODELS, FIXTURES, GOOD_YAML, GROVE_MODELS, KERNEL_MODELS, run_timber


def _apps_json(*fixtures: str, code: int = 0) -> dict[str, dict[str, Any]]:
    """``timber apps list --json``'s apps by name; ``code`` is the exit code expected (1 when an app is left out)."""
    result = run_timber("apps", "list", "--json", fixtures=fixtures)
    assert result.returncode == code, result.stderr
    return {a["name"]: a for a in json.loads(result.stdout)["apps"]}


def test_apps_list_json_lists_canopy_and_grove_with_models_session_types_and_policies() -> None:
    apps = _apps_json()
    assert list(apps) == ["timber", "canopy", "grove"]
    assert apps["canopy"] == {
        "name": "canopy",
        "version": "1.0.0",
        "distribution": "timber-canopy",
        "description": "Trading platform: trading sessions and orders",
        "depends": [],
        "models": ["TradingSession", "Order"],
        "session_types": ["trading", "paper_trading"],
        "policies": ["canopy_own_sessions"],
        "services": ["orders"],
        "status": "ok",
        "error": None,
    }
    assert (apps["grove"]["models"], apps["grove"]["session_types"], apps["grove"]["policies"]) == (
        ["ResearchSession", "ResearchReport"], ["research", "analysis"], ["grove_own_sessions"]
    )
    assert apps["timber"]["models"] == ["Event", "Notification", "Session", "User", "VectorOutbox"]


def test_apps_list_shows_a_broken_plugin_as_broken_while_the_others_still_list() -> None:
    apps = _apps_json("broken", code=1)
    assert [(n, a["status"]) for n, a in apps.items()] == [
        ("timber", "ok"), ("canopy", "ok"), ("grove", "ok"), ("brokenapp", "broken")
    ]
    assert apps["brokenapp"]["distribution"] == "timber-broken-app"
    assert apps["brokenapp"]["error"] == "RuntimeError: broken on purpose: the fixture's import fails"


def test_apps_list_table_reports_the_broken_plugin_on_stderr() -> None:
    result = run_timber("apps", "list", fixtures=("broken",))
    assert result.returncode == 1
    header = result.stdout.splitlines()[0].split()
    assert header == ["app", "version", "distribution", "models", "session", "types", "policies", "services", "status"]
    assert result.stdout.splitlines()[-1].split()[-1] == "broken"
    assert result.stderr == "brokenapp: broken: RuntimeError: broken on purpose: the fixture's import fails\n"


def test_apps_list_marks_an_app_with_a_missing_dependency_as_broken() -> None:
    needy = _apps_json("missing_dep", code=1)["needy"]
    assert needy["status"] == "broken"
    assert needy["error"] == (
        "depends on app 'ghost', which is not installed; install or enable 'ghost', "
        "or remove it from needy's timber_app_info() depends"
    )


def test_apps_list_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, io, contextlib\n"
        "sys.argv = ['timber', 'apps', 'list']\n"
        "import timber_core.cli as c\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    c.main()\n"
        "assert 'canopy' in out.getvalue(), out.getvalue()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg', 'psycopg2', 'alembic'))\n"
        "print(heavy)\n"
    )
    result = run_timber(code=code, fixtures=("journal",))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_check_exits_zero_on_the_good_set() -> None:
    result = run_timber("check", fixtures=("journal", "yaml_dir"),
                        env={"TIMBER_FIXTURE_MODEL_DIR": str(GOOD_YAML / "library")})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "timber check: ok (4 apps: canopy, grove, journal, yamlfix)\n"


#: Each bad YAML fixture: (line, field, what the error says).
BAD_CASES: dict[str, tuple[int, str, str]] = {
    "unknown_key": (11, "Thing.columns.label.lenght", "unknown key; allowed: name, type, primary_key, nullable, unique, "
                    "index, default, foreign_key, ondelete, description, encrypted, blind_index"),
    "bad_type": (10, "Thing.columns.label.type", "unknown type 'Strng(10)'; allowed: String(n), Text, Integer, "
                 "BigInteger, Float, Numeric(p, s), Boolean, DateTime, Date, JSON, UUID"),
    "string_without_length": (10, "Thing.columns.label.type", "'String': String needs a length, e.g. String(255)"),
    "bad_table_name": (4, "Thing.table_name", "'thing-items' is not a valid table name: use letters, digits and "
                       "underscores, starting with a letter or underscore"),
    "duplicate_key": (12, "file", "key 'nullable' appears twice in the same mapping (first on line 11); keep one"),
    "malformed_yaml": (8, "file", "invalid YAML: did not find expected ',' or ']'"),
    "wrong_default": (11, "Thing.columns.count.default", "'ten' is not a valid Integer value"),
    "ondelete_without_fk": (11, "Thing.columns.owner_id.ondelete", "needs a foreign_key on the same column"),
    "unknown_relationship_type": (16, "Thing.relationships.user.type", "'many-to-few' is not a relationship type; "
                                  "use one of one-to-many, many-to-one, one-to-one, many-to-many"),
    "many_to_many_without_secondary": (16, "Label.relationships.things.secondary",
                                       "is required for many-to-many: name the association table"),
    "depends_missing_file": (2, "depends", "'inventory_models.yaml' is not a model file of any loaded app; known "
                             "files: event_models.yaml, notification_models.yaml, research_models.yaml, "
                             "session_models.yaml, things.yaml, trading_models.yaml, user_models.yaml, "
                             "vector_models.yaml"),
    "vector_field_missing": (7, "Thing.vector_search.content_field", "names no column of Thing; columns: id, title"),
    "vector_field_not_text": (7, "Thing.vector_search.content_field",
                              "column 'pages' is Integer; vector search needs a Text or String column"),
}


def _only_file(case: str) -> Path:
    (path,) = sorted((BAD_YAML / case).glob("*.yaml"))
    return path


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_check_exits_one_naming_file_line_and_field_of_each_bad_yaml(case: str) -> None:
    line, field, message = BAD_CASES[case]
    result = run_timber("check", fixtures=("yaml_dir",), env={"TIMBER_FIXTURE_MODEL_DIR": str(BAD_YAML / case)})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {_only_file(case)}:{line}: app 'yamlfix', field {field!r}: {message}\n"
        f"{_summary(1, 'yamlfix (broken)', 'canopy, grove')}\n"
    )


def test_check_reports_an_app_model_naming_another_apps_private_model() -> None:
    case = "shared_names_app_model"
    result = run_timber("check", fixtures=("yaml_dir",), env={"TIMBER_FIXTURE_MODEL_DIR": str(BAD_YAML / case)})
    path = _only_file(case)
    why = "Order is private to app 'canopy'; an app may only reference its own and shared models"
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {path}:11: app 'yamlfix', field 'UserBadge.columns.order_id.foreign_key': {why}\n"
        f"Error: {path}:15: app 'yamlfix', field 'UserBadge.relationships.order': {why}\n"
        f"{_summary(2, 'yamlfix (broken)', 'canopy, grove')}\n"
    )


CLAIM = ("session type 'research' is claimed by app 'claimer' (timber-research-claimer) and by app 'grove' "
         "(timber-grove); each session type has one owner, so all of them are left out: rename it in all but one")
CYCLE = "dependency cycle: cyclea -> cycleb -> cyclea; break it in one app's depends"


def _summary(count: int, left_out: str, starting: str) -> str:
    return f"timber check: {count} problem(s) found; left out: {left_out}; the other apps start: {starting}"


@pytest.mark.parametrize(
    ("fixture", "errors", "left_out", "starting"),
    [
        ("broken", ["Error: app 'brokenapp': plugin from timber-broken-app is broken and left out: "
                    "RuntimeError: broken on purpose: the fixture's import fails"], "brokenapp (broken)", "canopy, grove"),
        ("hook_raises", ["Error: app 'hookraises': plugin from timber-hook-raises is broken and left out: "
                         "ValueError: session types are unavailable on purpose"], "hookraises (broken)", "canopy, grove"),
        ("conflict", ["Error: app 'canopy': the app name 'canopy' is registered by 2 distributions: "
                      "timber-canopy and timber-canopy-clone; uninstall one of them"], "canopy (conflict)", "grove"),
        ("session_claim", [f"Error: app 'claimer': {CLAIM}", f"Error: app 'grove': {CLAIM}"],
         "claimer (conflict), grove (conflict)", "canopy"),
        ("cycle", [f"Error: app 'cyclea': {CYCLE}", f"Error: app 'cycleb': {CYCLE}"],
         "cyclea (broken), cycleb (broken)", "canopy, grove"),
        ("missing_dep", ["Error: app 'needy': depends on app 'ghost', which is not installed; install or enable "
                         "'ghost', or remove it from needy's timber_app_info() depends"], "needy (broken)",
         "canopy, grove"),
    ],
)
def test_check_exits_one_on_each_bad_plugin_naming_what_is_left_out(
    fixture: str, errors: list[str], left_out: str, starting: str
) -> None:
    result = run_timber("check", fixtures=(fixture,))
    assert result.returncode == 1
    assert result.stderr == "".join(f"{e}\n" for e in errors) + f"{_summary(len(errors), left_out, starting)}\n"


def test_check_names_both_files_of_a_model_and_a_table_clash() -> None:
    result = run_timber("check", fixtures=("model_clash",))
    clash = FIXTURES / "plugins" / "model_clash" / "timber_fixture_clash_models" / "clash_models.yaml"
    grove_file = GROVE_MODELS / "research_models.yaml"
    assert result.returncode == 1
    # Both sides of each clash are left out (neither is the right owner): clash, canopy and grove.
    assert result.stderr == (
        f"Error: {clash}:4: app 'clash', field 'name': model 'Order' is also declared at "
        f"{CANOPY_MODELS / 'trading_models.yaml'}:36 by app 'canopy'; rename one (prefix it with the app's name)\n"
        f"Error: {grove_file}:43: app 'grove', field 'table_name': table 'research_reports' is also declared at "
        f"{clash}:10 by app 'clash' (model ClashReport); rename one (prefix it with the app's name)\n"
        f"{_summary(2, 'canopy (conflict), clash (conflict), grove (conflict)', 'none')}\n"
    )


def test_models_list_json_lists_every_model_with_its_owner() -> None:
    result = run_timber("models", "list", "--json")
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert list(models) == ["User", "Event", "Notification", "Session", "VectorOutbox", "TradingSession", "Order",
                            "ResearchSession", "ResearchReport"]
    assert models["Session"]["access"] == "shared" and models["Session"]["typed_by"] == "session_type"
    assert models["Order"] == {
        "name": "Order", "table": "orders", "app": "canopy", "access": "private", "typed_by": None,
        "columns": ["id", "user_id", "session_id", "symbol", "order_type", "quantity", "price", "status", "notes",
                    "exchange", "created_at", "updated_at"],
        "vector_search": "notes",
        "file": f"{CANOPY_MODELS / 'trading_models.yaml'}:36",
    }


def test_models_list_app_shows_only_that_apps_models() -> None:
    result = run_timber("models", "list", "--app", "grove")
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:3] for line in result.stdout.splitlines()[2:]]
    assert rows == [["ResearchSession", "research_sessions", "grove"], ["ResearchReport", "research_reports", "grove"]]


def test_models_list_unknown_app_exits_one_naming_the_installed_apps() -> None:
    result = run_timber("models", "list", "--app", "ledger")
    assert result.returncode == 1
    assert result.stderr == (
        "Error: no app named 'ledger' is installed (installed: canopy, grove); install its distribution, "
        "or check TIMBER_APPS / TIMBER_DISABLE_APPS\n"
    )


def test_timber_apps_variable_reaches_the_cli() -> None:
    result = run_timber("apps", "list", "--json", env={"TIMBER_APPS": "grove"})
    statuses = {a["name"]: a["status"] for a in json.loads(result.stdout)["apps"]}
    assert statuses == {"timber": "ok", "canopy": "disabled", "grove": "ok"}


def _yaml_names(path: Path) -> list[str]:
    import yaml

    return [m["name"] for m in yaml.safe_load(path.read_text())["models"]]


@pytest.mark.parametrize(
    "path",
    [KERNEL_MODELS / "session_models.yaml", CANOPY_MODELS / "trading_models.yaml", GROVE_MODELS / "research_models.yaml",
     GOOD_YAML / "library" / "a_library.yaml", GOOD_YAML / "library" / "z_authors.yaml"],
    ids=lambda p: p.name,
)
def test_apps_list_line_scan_reads_the_same_model_names_as_yaml(path: Path) -> None:
    from timber_core.cli import _scan_model_names

    assert _scan_model_names(path.read_text()) == _yaml_names(path)


@pytest.mark.parametrize(
    "text",
    [
        "models: [{name: A, table_name: a}]\n",
        "models:\n  - {name: A, table_name: a}\n",
        "models:\n  - table_name: a\n    columns: []\n",
        "models:\n  - name: &anchor A\n",
        "models:\n\t- name: A\n",
        "description: no models key\n",
    ],
    ids=["flow-list", "flow-item", "item-without-name", "anchor", "tab", "no-models"],
)
def test_apps_list_line_scan_defers_to_yaml_when_unsure(text: str) -> None:
    from timber_core.cli import _scan_model_names

    assert _scan_model_names(text) is None


def test_apps_list_line_scan_reads_quoted_names_after_other_keys() -> None:
    from timber_core.cli import _scan_model_names

    text = "models:\n  - table_name: a  # first\n    name: 'Alpha'\n  - name: \"Beta\"\n    columns:\n      - name: id\n"
    assert _scan_model_names(text) == ["Alpha", "Beta"]


def test_apps_add_their_own_commands() -> None:
    result = run_timber("journal-hello", fixtures=("journal",))
    assert (result.returncode, result.stdout) == (0, "hello from journal\n")


def test_an_app_whose_commands_fail_is_reported_and_the_cli_still_works() -> None:
    result = run_timber("check", fixtures=("bad_commands",))
    assert result.returncode == 0
    assert result.stderr == (
        "Warning: app 'badcmd' (timber-bad-commands) failed to register its commands: "
        "RuntimeError: commands are unavailable on purpose\n"
    )
    assert result.stdout == "timber check: ok (3 apps: badcmd, canopy, grove)\n"


#: Run ``timber apps list`` in this interpreter; print which of the optional modules it imported.
_LIST_AND_REPORT = (
    "import sys, io, contextlib\n"
    "sys.argv = ['timber', 'apps', 'list']\n"
    "import timber_core.cli as c\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    c.main()\n"
    "print(sorted(m for m in ('yaml', 'timber_core.containment', 'timber_core.migrations.commands',\n"
    "                         'timber_core.vectors.commands', 'concurrent.futures') if m in sys.modules))\n"
)


def test_apps_list_validates_unchanged_model_files_once_per_timber_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"TIMBER_HOME": str(home)}
    first = run_timber(code=_LIST_AND_REPORT, env=env)
    second = run_timber(code=_LIST_AND_REPORT, env=env)
    assert (first.returncode, first.stdout) == (0, "['timber_core.containment', 'yaml']\n"), first.stderr
    assert (second.returncode, second.stdout) == (0, "[]\n"), second.stderr


#: ``timber apps list`` in this interpreter with every model-file read refused.
_LIST_READING_NO_MODEL_FILE = (
    "import sys\n"
    "sys.argv = ['timber', 'apps', 'list']\n"
    "import timber_core.cli as c\n"
    "def refuse(dirs):\n"
    "    raise AssertionError(f'model files read: {dirs}')\n"
    "c._model_names = refuse\n"
    "c.main()\n"
)


def test_apps_list_of_a_recorded_set_reads_no_model_file_and_lists_the_same(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"TIMBER_HOME": str(home)}
    first = run_timber("apps", "list", env=env)
    second = run_timber(code=_LIST_READING_NO_MODEL_FILE, env=env)
    assert (second.returncode, second.stderr) == (0, ""), second.stderr
    assert second.stdout == first.stdout


def test_apps_list_validates_again_after_a_model_file_changes(tmp_path: Path) -> None:
    home, models = tmp_path / "home", tmp_path / "models"
    home.mkdir()
    shutil.copytree(GOOD_YAML / "library", models)
    env = {"TIMBER_HOME": str(home), "TIMBER_FIXTURE_MODEL_DIR": str(models)}
    runs = [run_timber(code=_LIST_AND_REPORT, fixtures=("yaml_dir",), env=env) for _ in range(2)]
    assert [(r.returncode, r.stdout) for r in runs] == [(0, "['timber_core.containment', 'yaml']\n"), (0, "[]\n")]
    (models / "a_library.yaml").write_text((BAD_YAML / "bad_type" / "things.yaml").read_text())
    changed = run_timber("apps", "list", fixtures=("yaml_dir",), env=env)
    assert changed.returncode == 1
    assert changed.stdout.splitlines()[-1].split()[-1] == "broken"
    assert "unknown type 'Strng(10)'" in changed.stderr


def test_apps_list_never_remembers_a_failing_set(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"TIMBER_HOME": str(home), "TIMBER_FIXTURE_MODEL_DIR": str(BAD_YAML / "bad_type")}
    runs = [run_timber("apps", "list", fixtures=("yaml_dir",), env=env) for _ in range(2)]
    assert [r.returncode for r in runs] == [1, 1]
    assert runs[0].stderr == runs[1].stderr and "unknown type 'Strng(10)'" in runs[1].stderr


def test_apps_list_creates_no_timber_home(tmp_path: Path) -> None:
    home = tmp_path / "absent"
    assert run_timber("apps", "list", env={"TIMBER_HOME": str(home)}).returncode == 0
    assert not home.exists()
