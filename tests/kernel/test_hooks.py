"""Hooks are called through pluggy, one app at a time: wrappers, tryfirst/trylast and monitoring work,
a raising plugin is still contained and blamed; timber_services gets the kernel; timber_startup;
timber_app_info's defaults; the own-rows policy helper; dependency ordering."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest

import timber_core
from timber_core import hookimpl, hookspecs
from timber_core.errors import PluginError
from timber_core.kernel import Kernel
from timber_core.plugins import discover, new_manager, register_app_commands, web_routes
from timber_core.policies import own_rows
from timber_core.schema import load_schema
from timber_kernel_testing import PLUGIN_FIXTURES

pytestmark = pytest.mark.usefixtures("fresh_kernel")

HOOKS = sorted(n for n, f in vars(hookspecs).items() if n.startswith("timber_") and callable(f))
#: The calls of one hook of the `wrapped` fixture, outermost first.
CALL_ORDER = ["hookwrapper before", "wrapper before", "tryfirst", "plain", "trylast", "wrapper after",
              "hookwrapper after"]


def _init(tmp_path: Path, app: str = "canopy") -> Kernel:
    return timber_core.initialize_timber(app, database_url=f"sqlite:///{tmp_path / 'timber.db'}")


def _fixture_module(install_fixture: Callable[[str], Path], case: str, module: str) -> ModuleType:
    install_fixture(case)
    return importlib.import_module(module)


@pytest.fixture
def wrapped(install_fixture: Callable[[str], Path]) -> Iterator[ModuleType]:
    """The `wrapped` fixture app installed, its call log empty."""
    module = _fixture_module(install_fixture, "wrapped", "timber_fixture_wrapped")
    module.CALLS.clear()
    module.SEEN.clear()
    yield module


@pytest.fixture
def starter(install_fixture: Callable[[str], Path]) -> Iterator[ModuleType]:
    """The `starter` fixture app installed, its records empty."""
    module = _fixture_module(install_fixture, "starter", "timber_fixture_starter")
    module.SERVICE_KERNELS.clear()
    module.STARTED.clear()
    yield module


def _every_hook_called(tmp_path: Path) -> Kernel:
    """Initialize (every hook but the commands', GDPR's and the web routes' is called), register the apps'
    commands, ask GDPR's and the web routes."""
    kernel = _init(tmp_path)
    assert register_app_commands(kernel.apps, kernel.plugin_manager, click.Group("timber")) == []
    _gdpr_answers(kernel)
    web_routes(kernel.apps, kernel.plugin_manager, "wrapped")
    return kernel


def _gdpr_answers(kernel: Kernel) -> dict[str, Any]:
    """What the kernel gets from the GDPR hooks of every app, as export_user and erase_user ask them."""
    from timber_core.gdpr._guard import ask_apps

    return {"timber_gdpr_export": ask_apps(kernel, "timber_gdpr_export", user_id="u1"),
            "timber_gdpr_veto": ask_apps(kernel, "timber_gdpr_veto", user_id="u1", mode="delete")}


# --- wrappers, tryfirst/trylast, monitoring --------------------------------------------------------


def test_the_wrapped_fixture_implements_every_hook(wrapped: ModuleType) -> None:
    assert sorted(wrapped.HOOKS) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_runs_its_wrappers_around_tryfirst_then_plain_then_trylast(
    hook: str, wrapped: ModuleType, tmp_path: Path
) -> None:
    _every_hook_called(tmp_path)
    # timber_services is asked twice: at discovery (kernel=None), then with the built kernel.
    times = 2 if hook == "timber_services" else 1
    assert [label for h, label in wrapped.CALLS if h == hook] == CALL_ORDER * times


def _wrapped_answer(kernel: Kernel, hook: str) -> Any:
    app = kernel.apps.get("wrapped")
    return {
        "timber_app_info": lambda: app.description,
        "timber_model_dirs": lambda: app.model_dirs,
        "timber_session_types": lambda: (app.session_types, kernel.apps.owner_of_session_type("wrapped_by_wrapper")),
        "timber_rls_policies": lambda: app.rls_policies,
        "timber_services": lambda: (sorted(app.service_factories), kernel.services["wrapped_by_wrapper"]),
        "timber_migrations_dir": lambda: app.migrations_dir,
        "timber_gdpr_export": lambda: _gdpr_answers(kernel)[hook]["wrapped"],
        "timber_gdpr_veto": lambda: _gdpr_answers(kernel)[hook]["wrapped"],
        "timber_web_app": lambda: web_routes(kernel.apps, kernel.plugin_manager, "wrapped"),
    }[hook]()


def _expected_answer(kernel: Kernel, hook: str) -> Any:
    return {
        "timber_app_info": "plain, wrapped",
        "timber_model_dirs": [str(PLUGIN_FIXTURES / "wrapped" / "wrapped_models")],
        "timber_session_types": (["wrapped_plain", "wrapped_by_wrapper"], "wrapped"),
        "timber_rls_policies": [own_rows("wrapped_own_sessions")],
        "timber_services": (["wrapped_by_wrapper", "wrapped_plain"], ("wrapped-service", kernel)),
        "timber_migrations_dir": None,
        "timber_gdpr_export": {"user": "u1", "wrapped": True},
        "timber_gdpr_veto": "plain refuses delete, wrapped",
        "timber_web_app": ("wrapped", "plain-routes"),
    }[hook]


ANSWERING_HOOKS = [h for h in HOOKS if h not in ("timber_register_commands", "timber_startup")]


@pytest.mark.parametrize("hook", ANSWERING_HOOKS)
def test_a_new_style_wrapper_changes_what_the_kernel_gets(hook: str, wrapped: ModuleType, tmp_path: Path) -> None:
    kernel = _init(tmp_path)
    assert _wrapped_answer(kernel, hook) == _expected_answer(kernel, hook)


def test_every_hook_but_the_none_returning_ones_has_an_answer_to_check() -> None:
    assert sorted(set(HOOKS) - set(ANSWERING_HOOKS)) == ["timber_register_commands", "timber_startup"]
    assert all(inspect.signature(getattr(hookspecs, h)).return_annotation == "None"
               for h in ("timber_register_commands", "timber_startup"))


def test_an_old_style_hookwrapper_sees_the_answer_the_inner_wrapper_changed(wrapped: ModuleType) -> None:
    discover(environ={})
    assert wrapped.SEEN["timber_session_types"] == [["wrapped_plain", "wrapped_by_wrapper"]]


class _Override:
    """A plugin that is not an app: its tryfirst answer comes before every app's own."""

    @hookimpl(tryfirst=True)
    def timber_app_info(self) -> dict[str, str]:
        return {"description": "overridden"}


def test_a_tryfirst_answer_of_a_plugin_that_is_not_an_app_is_every_apps_answer() -> None:
    pm = new_manager()
    pm.register(_Override(), name="override")
    registry, _pm = discover(environ={}, manager=pm)
    assert {a.name: a.description for a in registry.loaded()} == {
        "timber": "overridden", "canopy": "overridden", "grove": "overridden"}


def test_hookcall_monitoring_sees_each_apps_call_with_only_its_own_implementations() -> None:
    pm = new_manager()
    calls: list[tuple[str, list[str]]] = []
    pm.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append((name, [i.plugin_name for i in impls])),
                               lambda outcome, name, impls, kwargs: None)
    discover(environ={}, manager=pm)
    assert [c for c in calls if c[0] == "timber_session_types"] == [
        ("timber_session_types", []), ("timber_session_types", ["canopy"]), ("timber_session_types", ["grove"])]


class _Watcher:
    """A plugin that is not an app, wrapping every app's timber_session_types call."""

    def __init__(self) -> None:
        self.raised: list[str | None] = []

    @hookimpl(hookwrapper=True)
    def timber_session_types(self) -> Iterator[None]:
        outcome = yield
        self.raised.append(type(outcome.exception).__name__ if outcome.exception else None)


def test_a_raising_plugin_is_left_out_and_blamed_while_a_wrapper_watches(
    install_fixture: Callable[[str], Path],
) -> None:
    install_fixture("hook_raises")
    pm, watcher = new_manager(), _Watcher()
    pm.register(watcher, name="watcher")
    registry, _pm = discover(environ={}, manager=pm)
    app = registry.get("hookraises")
    assert (app.status, app.error) == ("broken", "ValueError: session types are unavailable on purpose")
    assert [a.name for a in registry.loaded()] == ["timber", "canopy", "grove"]
    assert watcher.raised == [None, None, None, "ValueError"]  # timber, canopy, grove, hookraises


# --- timber_services(kernel) -------------------------------------------------------------------


def test_timber_services_gets_none_at_discovery_then_the_built_kernel(starter: ModuleType, tmp_path: Path) -> None:
    kernel = _init(tmp_path)
    assert starter.SERVICE_KERNELS == [None, kernel]


def test_services_named_otherwise_with_the_kernel_leave_the_app_out(
    starter: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_FIXTURE_STARTER", "rename")
    kernel = _init(tmp_path)
    app = kernel.apps.get("starter")
    assert (app.status, app.error) == (
        "broken",
        "timber_services(kernel) returned the services ['starter_timer'] but timber_services(None) returned "
        "['starter_clock']; return the same names with and without a kernel",
    )
    assert ("starter_clock" in kernel.services, "orders" in kernel.services) == (False, True)


# --- timber_startup ----------------------------------------------------------------------------


def test_timber_startup_is_called_once_in_its_app_context_after_tables_and_services(
    starter: ModuleType, tmp_path: Path
) -> None:
    kernel = _init(tmp_path)
    assert starter.STARTED == [(kernel, ("starter-clock", kernel), True, "starter")]


def test_an_app_whose_startup_raises_is_left_out_with_a_warning_and_the_others_start(
    starter: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIMBER_FIXTURE_STARTER", "raise")
    with caplog.at_level(logging.WARNING, logger="timber"):
        kernel = _init(tmp_path)
    error = "timber_startup(kernel) raised RuntimeError: starter cannot start on purpose"
    assert (kernel.apps.get("starter").status, kernel.apps.get("starter").error) == ("broken", error)
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy", "grove"]
    assert caplog.messages == [
        f"timber: app 'starter' (timber-starter) is broken and left out; the other apps start without it: {error}"]


def test_the_services_of_an_app_whose_startup_raises_leave_the_registry(
    starter: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_FIXTURE_STARTER", "raise")
    kernel = _init(tmp_path)
    assert ("starter_clock" in kernel.services, "orders" in kernel.services) == (False, True)


def test_initializing_as_the_app_whose_startup_raises_says_why(
    starter: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_FIXTURE_STARTER", "raise")
    with pytest.raises(PluginError) as info:
        _init(tmp_path, app="starter")
    assert str(info.value) == (
        "app 'starter' (timber-starter) is broken: timber_startup(kernel) raised RuntimeError: starter cannot "
        "start on purpose; fix it, or initialize another app"
    )


# --- timber_app_info defaults --------------------------------------------------------------------


def test_an_app_without_timber_app_info_takes_name_and_version_from_its_distribution(starter: ModuleType) -> None:
    registry, _pm = discover(environ={})
    app = registry.get("starter")
    assert (app.status, app.name, app.version, app.description, app.depends) == ("ok", "starter", "0.2", "", [])


@pytest.mark.parametrize("app", ["canopy", "grove"])
def test_canopy_and_grove_state_neither_name_nor_version_and_get_their_distributions(app: str) -> None:
    registry, _pm = discover(environ={})
    info = registry.get(app).plugin.timber_app_info()
    assert ("name" in info, "version" in info) == (False, False)
    assert registry.get(app).version == importlib.metadata.version(f"timber-{app}") == "1.0.0"


def test_a_declared_name_other_than_the_entry_point_is_an_error(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("misnamed")
    app = discover(environ={})[0].get("misnamed")
    assert (app.status, app.error) == (
        "broken",
        "ValueError: timber_app_info() names the app 'misnamed_app' but its entry point is 'misnamed'; "
        "make them the same",
    )


# --- the own-rows policy helper -----------------------------------------------------------------


def test_own_rows_is_the_grant_canopy_and_grove_spelled_out_before() -> None:
    assert own_rows("canopy_own_sessions") == {
        "name": "canopy_own_sessions",
        "table": "sessions",
        "command": "ALL",
        "using": "user_id = (SELECT NULLIF(current_setting('timber.user_id', true), ''))",
    }


def test_own_rows_refuses_a_command_postgresql_has_no_policy_for() -> None:
    with pytest.raises(ValueError) as info:
        own_rows("mine", command="TRUNCATE")
    assert str(info.value) == "own_rows('mine'): command='TRUNCATE'; use one of ALL, SELECT, INSERT, UPDATE, DELETE"


# --- ordering -------------------------------------------------------------------------------------


def _model_file(path: Path, depends: str, model: str) -> None:
    path.write_text(
        f'depends: ["{depends}"]\nmodels:\n  - name: {model}\n    table_name: {model.lower()}s\n    columns:\n'
        f"      - name: id\n        type: String(36)\n        primary_key: true\n",
        encoding="utf-8",
    )


def test_a_cycle_of_model_files_is_named_from_its_first_file_along_the_depends(tmp_path: Path) -> None:
    _model_file(tmp_path / "a.yaml", "b.yaml", "Alpha")
    _model_file(tmp_path / "b.yaml", "c.yaml", "Beta")
    _model_file(tmp_path / "c.yaml", "a.yaml", "Gamma")
    schema = load_schema([("cyc", str(tmp_path))])
    assert [str(p) for p in schema.problems] == [
        f"{tmp_path / 'a.yaml'}:1: app 'cyc', field 'depends': cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml"]


def test_model_files_come_after_the_files_they_depend_on(tmp_path: Path) -> None:
    _model_file(tmp_path / "a.yaml", "c.yaml", "Alpha")
    _model_file(tmp_path / "b.yaml", "c.yaml", "Beta")
    (tmp_path / "c.yaml").write_text(
        "models:\n  - name: Gamma\n    table_name: gammas\n    columns:\n"
        "      - name: id\n        type: String(36)\n        primary_key: true\n", encoding="utf-8")
    schema = load_schema([("cyc", str(tmp_path))])
    assert ([Path(f.path).name for f in schema.files], schema.problems) == (["c.yaml", "a.yaml", "b.yaml"], [])


def test_a_plugin_modules_hooks_are_its_marked_functions_only() -> None:
    module = ModuleType("timber_probe_plugin")
    module.timber_session_types = ["not", "a", "hook"]  # a list named like a hook: never called

    @hookimpl
    def timber_app_info() -> dict[str, str]:
        return {"name": "probe"}

    def timber_model_dirs() -> list[str]:  # not marked: not a hook implementation
        return ["/nowhere"]

    module.timber_app_info, module.timber_model_dirs, module.hookimpl = timber_app_info, timber_model_dirs, hookimpl
    pm = new_manager()
    pm.register(module, name="probe")
    assert sorted(c.name for c in pm.get_hookcallers(module) or []) == ["timber_app_info"]
    assert pm.hook.timber_app_info() == [{"name": "probe"}]
