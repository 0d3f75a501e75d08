"""Failure is contained: an app whose models, session types or dependencies fail is left out, never the others."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import timber_core
from timber_core import app_context
from timber_core.errors import PluginError, SchemaError
from timber_core.services.persistence import user_service
from timber_kernel_testing import BAD_YAML, CANOPY_MODELS, run_timber

pytestmark = pytest.mark.usefixtures("fresh_kernel")

BAD_FILE = BAD_YAML / "bad_type" / "things.yaml"
BAD_PROBLEM = (
    f"{BAD_FILE}:10: app 'yamlfix', field 'Thing.columns.label.type': unknown type 'Strng(10)'; allowed: "
    "String(n), Text, Integer, BigInteger, Float, Numeric(p, s), Boolean, DateTime, Date, JSON, UUID"
)
DEPENDENT_ERROR = ("depends on app 'yamlfix', which is broken (left out); fix 'yamlfix', or remove it from "
                   "yamladdon's timber_app_info() depends")
CLAIM_ERROR = ("session type 'research' is claimed by app 'claimer' (timber-research-claimer) and by app 'grove' "
               "(timber-grove); each session type has one owner, so all of them are left out: rename it in all but one")
BAD_ENV = {"TIMBER_FIXTURE_MODEL_DIR": str(BAD_YAML / "bad_type")}


@pytest.fixture
def bad_yaml_app(install_fixture: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """yamlfix, whose model file has a typo (line 10), and yamladdon, which depends on it."""
    install_fixture("yaml_dir")
    install_fixture("yaml_dependent")
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(BAD_YAML / "bad_type"))


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'timber.db'}"


def _canopy_and_grove_work(kernel: Any) -> None:
    """Create an order as Canopy and a research session as Grove, and read them back."""
    alice = user_service.create_user("alice@example.com", "alice")
    order_id = kernel.services["orders"].create_order(alice, "AAPL", "market", 1, 10.0)
    with app_context("grove"):
        research_id = kernel.services["reports"].start_research(alice, "AAPL", "Apple beat estimates")
    with kernel.db.session_scope() as s:
        assert s.get(kernel.get_model("Order"), order_id).symbol == "AAPL"
    with app_context("grove"), kernel.db.session_scope() as s:
        assert s.get(kernel.get_model("ResearchSession"), research_id) is not None


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_bad_yaml_of_one_app_leaves_canopy_and_grove_working(
    bad_yaml_app: None, tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    url = _sqlite(tmp_path) if database == "sqlite" else request.getfixturevalue("scratch_postgres")
    kernel = timber_core.initialize_timber("canopy", database_url=url, create_tables=True)
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy", "grove"]
    _canopy_and_grove_work(kernel)


def test_an_app_left_out_for_its_yaml_leaves_no_trace_in_the_registry(bad_yaml_app: None, tmp_path: Path) -> None:
    kernel = timber_core.initialize_timber("canopy", database_url=_sqlite(tmp_path))
    assert "Thing" not in kernel.models
    assert "things" not in kernel.metadata.tables
    assert all(m.class_.__timber_model__.app != "yamlfix" for m in kernel.base.registry.mappers)
    yamlfix = kernel.apps.get("yamlfix")
    assert (yamlfix.status, yamlfix.error) == ("broken", BAD_PROBLEM)


def test_an_app_left_out_is_logged_once_naming_app_file_line_field_and_fix(
    bad_yaml_app: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="timber"):
        timber_core.initialize_timber("canopy", database_url=_sqlite(tmp_path))
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert left_out == [
        "timber: app 'yamlfix' (timber-yaml-fixture) is broken and left out; the other apps start without it: "
        + BAD_PROBLEM,
        "timber: app 'yamladdon' (timber-yaml-dependent) is broken and left out; the other apps start without it: "
        + DEPENDENT_ERROR,
    ]


def test_an_app_depending_on_the_broken_one_is_left_out_naming_it(bad_yaml_app: None, tmp_path: Path) -> None:
    kernel = timber_core.initialize_timber("canopy", database_url=_sqlite(tmp_path))
    addon = kernel.apps.get("yamladdon")
    assert (addon.status, addon.error) == ("broken", DEPENDENT_ERROR)


def test_initialize_as_the_app_with_bad_yaml_raises_its_problem(bad_yaml_app: None, tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as info:
        timber_core.initialize_timber("yamlfix", database_url=_sqlite(tmp_path))
    assert str(info.value) == BAD_PROBLEM


def test_initialize_as_the_app_depending_on_it_raises_naming_the_dependency(bad_yaml_app: None, tmp_path: Path) -> None:
    with pytest.raises(PluginError) as info:
        timber_core.initialize_timber("yamladdon", database_url=_sqlite(tmp_path))
    assert str(info.value) == (
        f"app 'yamladdon' (timber-yaml-dependent) is broken: {DEPENDENT_ERROR}; fix it, or initialize another app"
    )


def test_a_session_type_claimed_twice_leaves_both_claimants_out_and_canopy_starts(
    install_fixture: Callable[[str], Path], tmp_path: Path
) -> None:
    install_fixture("session_claim")
    kernel = timber_core.initialize_timber("canopy", database_url=_sqlite(tmp_path))
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy"]
    assert [(a.name, a.status, a.error) for a in kernel.apps.failed()] == [
        ("claimer", "conflict", CLAIM_ERROR), ("grove", "conflict", CLAIM_ERROR)
    ]
    assert kernel.apps.owner_of_session_type("research") is None
    alice = user_service.create_user("alice@example.com", "alice")
    assert kernel.services["orders"].create_order(alice, "AAPL", "market", 1, 10.0)


def test_initialize_as_a_contested_app_raises_naming_the_conflict(
    install_fixture: Callable[[str], Path], tmp_path: Path
) -> None:
    install_fixture("session_claim")
    with pytest.raises(PluginError) as info:
        timber_core.initialize_timber("grove", database_url=_sqlite(tmp_path))
    assert str(info.value) == f"app 'grove' (timber-grove) is in conflict: {CLAIM_ERROR}; fix it, or initialize another app"


def test_a_model_name_clash_leaves_both_apps_out_and_the_uninvolved_one_starts(
    install_fixture: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # yamlfix declares Canopy's model name Order: canopy and yamlfix are out, grove (uninvolved) starts.
    models = tmp_path / "models"
    models.mkdir()
    (models / "orders.yaml").write_text(
        'version: "1.0.0"\nmodels:\n  - name: Order\n    table_name: yaml_orders\n    columns:\n'
        "      - name: id\n        type: Integer\n        primary_key: true\n"
    )
    install_fixture("yaml_dir")
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(models))
    kernel = timber_core.initialize_timber("grove", database_url=_sqlite(tmp_path))
    problem = (f"{models / 'orders.yaml'}:3: app 'yamlfix', field 'name': model 'Order' is also declared at "
               f"{CANOPY_MODELS / 'trading_models.yaml'}:36 by app 'canopy'; rename one (prefix it with the app's name)")
    assert [(a.name, a.status, a.error) for a in kernel.apps.failed()] == [
        ("canopy", "conflict", problem), ("yamlfix", "conflict", problem)
    ]
    assert sorted(kernel.models) == ["Event", "Notification", "ResearchReport", "ResearchSession", "Session", "User",
                                     "VectorOutbox"]


def test_an_app_declaring_a_kernel_table_is_left_out_alone(
    install_fixture: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "users.yaml").write_text(
        'version: "1.0.0"\nmodels:\n  - name: Member\n    table_name: users\n    columns:\n'
        "      - name: id\n        type: Integer\n        primary_key: true\n"
    )
    install_fixture("yaml_dir")
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(models))
    kernel = timber_core.initialize_timber("canopy", database_url=_sqlite(tmp_path))
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy", "grove"]
    assert [(a.name, a.status) for a in kernel.apps.failed()] == [("yamlfix", "conflict")]


def test_the_kernels_own_models_failing_stops_every_app(tmp_path: Path) -> None:
    # Model files added to the kernel itself (app "timber") are the one failure nothing starts without.
    with pytest.raises(SchemaError) as info:
        timber_core.initialize_timber("timber", model_config_dirs=[str(BAD_YAML / "bad_type")],
                                      database_url=_sqlite(tmp_path))
    assert str(info.value) == BAD_PROBLEM.replace("app 'yamlfix'", "app 'timber'")


def test_check_lists_the_bad_yaml_and_the_dependent_and_exits_one() -> None:
    result = run_timber("check", fixtures=("yaml_dir", "yaml_dependent"), env=BAD_ENV)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: {BAD_PROBLEM}\n"
        f"Error: app 'yamladdon': {DEPENDENT_ERROR}\n"
        "timber check: 2 problem(s) found; left out: yamlfix (broken), yamladdon (broken); "
        "the other apps start: canopy, grove\n"
    )


def test_apps_list_shows_the_bad_yaml_app_broken_with_its_error_and_exits_one() -> None:
    result = run_timber("apps", "list", "--json", fixtures=("yaml_dir", "yaml_dependent"), env=BAD_ENV)
    assert result.returncode == 1
    apps = {a["name"]: (a["status"], a["error"]) for a in json.loads(result.stdout)["apps"]}
    assert apps == {
        "timber": ("ok", None), "canopy": ("ok", None), "grove": ("ok", None),
        "yamlfix": ("broken", BAD_PROBLEM), "yamladdon": ("broken", DEPENDENT_ERROR),
    }


def test_apps_list_table_still_lists_every_app_when_one_is_broken() -> None:
    result = run_timber("apps", "list", fixtures=("yaml_dir",), env=BAD_ENV)
    assert result.returncode == 1
    assert [line.split()[0] for line in result.stdout.splitlines()[2:]] == ["timber", "canopy", "grove", "yamlfix"]
    assert result.stdout.splitlines()[-1].split()[-1] == "broken"
    assert result.stderr == f"yamlfix: broken: {BAD_PROBLEM}\n"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_app_left_out_after_its_tables_were_migrated_leaves_canopy_starting(
    install_fixture: Callable[[str], Path], tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    # Grove's tables, role and policies exist from a first start; then a claimer of its session type arrives.
    url = _sqlite(tmp_path) if database == "sqlite" else request.getfixturevalue("scratch_postgres")
    timber_core.initialize_timber("canopy", database_url=url, create_tables=True).close()
    install_fixture("session_claim")
    kernel = timber_core.initialize_timber("canopy", database_url=url, create_tables=True)
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy"]
    alice = user_service.create_user("alice@example.com", "alice")
    assert kernel.services["orders"].create_order(alice, "AAPL", "market", 1, 10.0)


def test_a_service_name_clash_leaves_both_apps_out_and_the_kernel_keeps_its_own(
    install_fixture: Callable[[str], Path], tmp_path: Path
) -> None:
    install_fixture("service_clash")
    kernel = timber_core.initialize_timber("grove", database_url=_sqlite(tmp_path))
    orders = ("service 'orders' is contributed by app 'canopy' (timber-canopy) and by app 'svcclash' "
              "(timber-service-clash); each service has one owner, so all of them are left out: rename it in all but one")
    users = ("service 'users' is contributed by app 'timber' (timber-core) and by app 'svcclash' (timber-service-clash); "
             "each service has one owner, so the kernel keeps it: rename it in 'svcclash'")
    assert [(a.name, a.status, a.error) for a in kernel.apps.failed()] == [
        ("canopy", "conflict", orders), ("svcclash", "conflict", f"{orders}; {users}")
    ]
    assert sorted(kernel.services) == ["notifications", "reports", "sessions", "tracker", "users", "vectors"]


def test_an_app_referencing_a_left_out_apps_model_is_left_out_in_turn(
    install_fixture: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # yamlfix declares a shared Gadget (valid) and a typo elsewhere; bapp's Widget references Gadget.
    fix, bapp = tmp_path / "fix", tmp_path / "bapp"
    fix.mkdir()
    bapp.mkdir()
    (fix / "gadgets.yaml").write_text(
        'version: "1.0.0"\nmodels:\n  - name: Gadget\n    table_name: gadgets\n    shared: true\n    columns:\n'
        "      - name: id\n        type: Integer\n        primary_key: true\n"
    )
    (fix / "things.yaml").write_text((BAD_YAML / "bad_type" / "things.yaml").read_text())
    (bapp / "widgets.yaml").write_text(
        'version: "1.0.0"\nmodels:\n  - name: Widget\n    table_name: widgets\n    columns:\n'
        "      - name: id\n        type: Integer\n        primary_key: true\n"
        "      - name: gadget_id\n        type: Integer\n        foreign_key: gadgets.id\n"
    )
    install_fixture("yaml_dir")
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(fix))
    with pytest.raises(SchemaError) as info:
        timber_core.initialize_timber("bapp", model_config_dirs=[str(bapp)], database_url=_sqlite(tmp_path))
    assert str(info.value) == (
        f"{bapp / 'widgets.yaml'}:9: app 'bapp', field 'Widget.columns.gadget_id.foreign_key': "
        "table 'gadgets' is not declared by any loaded model"
    )
    kernel = timber_core.initialize_timber("canopy", database_url=_sqlite(tmp_path))
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy", "grove"]


def test_a_command_without_app_runs_with_no_app_when_every_app_is_left_out(tmp_path: Path) -> None:
    result = run_timber("migrations", "status", fixtures=("yaml_dir",),
                        env={**BAD_ENV, "TIMBER_APPS": "yamlfix", "DATABASE_URL": _sqlite(tmp_path)})
    assert (result.returncode, result.stdout.splitlines()) == (0, [
        "app     version  current  head         pending",
        "------  -------  -------  -----------  ---------------------------------------------------------------",
        "timber  0.1.0    -        timber_0005  timber_0001, timber_0002, timber_0003, timber_0004, timber_0005",
    ])
