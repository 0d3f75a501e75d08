"""Plugin discovery: entry points, ordering, selection, and plugins that are broken or conflict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from timber_core.apps import AppRegistry
from timber_core.errors import ConfigurationError
from timber_core.plugins import discover


def _discover(**environ: str) -> AppRegistry:
    registry, _pm = discover(environ=environ)
    return registry


def _statuses(registry: AppRegistry) -> dict[str, str]:
    return {a.name: a.status for a in registry}


def _problems(registry: AppRegistry) -> list[str]:
    return [str(p) for p in registry.problems]


def test_installed_apps_load_kernel_first_then_by_name() -> None:
    registry = _discover()
    assert [a.name for a in registry.loaded()] == ["timber", "canopy", "grove"]
    assert registry.problems == []


def test_canopy_and_grove_describe_themselves_through_their_hooks() -> None:
    registry = _discover()
    canopy, grove = registry.get("canopy"), registry.get("grove")
    assert (canopy.distribution, canopy.version, canopy.depends) == ("timber-canopy", "1.0.0", [])
    assert canopy.session_types == ["trading", "paper_trading"]
    assert [p["name"] for p in canopy.rls_policies] == ["canopy_own_sessions"]
    assert canopy.service_factories == {"orders": "canopy.services.order_service:OrderService"}
    assert canopy.migrations_dir is not None and canopy.migrations_dir.endswith("canopy/migrations/versions")
    assert grove.session_types == ["research", "analysis"]
    assert grove.service_factories == {"reports": "grove.services.report_service:ReportService"}


def test_dependency_is_loaded_before_the_app_that_declares_it(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("journal")
    install_fixture("dependent")
    registry = _discover()
    # Kernel first; then each app once its dependencies are in, by name among those ready.
    assert [a.name for a in registry.loaded()] == ["timber", "canopy", "grove", "journal", "addon"]


def test_third_party_app_is_discovered_from_its_distribution(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("journal")
    journal = _discover().get("journal")
    assert (journal.status, journal.distribution, journal.version) == ("ok", "timber-journal", "0.3.0")
    assert journal.session_types == ["journaling"]


def test_timber_apps_loads_only_the_named_apps() -> None:
    registry = _discover(TIMBER_APPS="canopy")
    assert [a.name for a in registry.loaded()] == ["timber", "canopy"]
    grove = registry.get("grove")
    assert (grove.status, grove.error) == ("disabled", "left out by TIMBER_APPS")


def test_timber_disable_apps_leaves_the_named_apps_out() -> None:
    registry = _discover(TIMBER_DISABLE_APPS="canopy")
    assert [a.name for a in registry.loaded()] == ["timber", "grove"]
    canopy = registry.get("canopy")
    assert (canopy.status, canopy.error) == ("disabled", "left out by TIMBER_DISABLE_APPS")


def test_timber_apps_with_an_empty_entry_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        _discover(TIMBER_APPS="canopy,,grove")
    assert str(info.value) == (
        "TIMBER_APPS='canopy,,grove' has an empty entry; give app names separated by commas, "
        "e.g. TIMBER_APPS=canopy,grove"
    )


def test_plugin_whose_import_raises_is_broken_with_its_distribution_and_error(
    install_fixture: Callable[[str], Path],
) -> None:
    install_fixture("broken")
    registry = _discover()
    broken = registry.get("brokenapp")
    assert (broken.status, broken.distribution) == ("broken", "timber-broken-app")
    assert broken.error == "RuntimeError: broken on purpose: the fixture's import fails"
    assert _problems(registry) == [
        "app 'brokenapp': plugin from timber-broken-app is broken and left out: "
        "RuntimeError: broken on purpose: the fixture's import fails"
    ]


def test_broken_plugin_leaves_the_other_apps_loaded(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("broken")
    registry = _discover()
    assert [a.name for a in registry.loaded()] == ["timber", "canopy", "grove"]
    registry.raise_for_problems()  # a broken plugin is reported, not fatal


def test_plugin_whose_hook_raises_is_broken_and_unregistered(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("hook_raises")
    registry, pm = discover(environ={})
    app = registry.get("hookraises")
    assert (app.status, app.distribution) == ("broken", "timber-hook-raises")
    assert app.error == "ValueError: session types are unavailable on purpose"
    assert pm.get_plugin("hookraises") is None
    assert [a.name for a in registry.loaded()] == ["timber", "canopy", "grove"]


def test_two_distributions_registering_one_app_name_is_a_conflict_naming_both(
    install_fixture: Callable[[str], Path],
) -> None:
    install_fixture("conflict")
    registry = _discover()
    assert _statuses(registry)["canopy"] == "conflict"
    message = (
        "app 'canopy': the app name 'canopy' is registered by 2 distributions: "
        "timber-canopy and timber-canopy-clone; uninstall one of them"
    )
    assert _problems(registry) == [message]


def test_an_app_name_registered_twice_leaves_only_that_app_out(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("conflict")
    registry = _discover()
    assert [a.name for a in registry.loaded()] == ["timber", "grove"]
    registry.raise_for_problems()  # contained: not fatal to the other apps


CLAIM = ("session type 'research' is claimed by app 'claimer' (timber-research-claimer) and by app 'grove' "
         "(timber-grove); each session type has one owner, so all of them are left out: rename it in all but one")


def test_claiming_another_apps_session_type_is_an_error_naming_both_apps(
    install_fixture: Callable[[str], Path],
) -> None:
    install_fixture("session_claim")
    registry = _discover()
    assert _problems(registry) == [f"app 'claimer': {CLAIM}", f"app 'grove': {CLAIM}"]


def test_a_session_type_claimed_twice_leaves_both_claimants_out_and_no_owner(
    install_fixture: Callable[[str], Path],
) -> None:
    install_fixture("session_claim")
    registry = _discover()
    assert [(a.name, a.status, a.error) for a in registry.failed()] == [
        ("claimer", "conflict", CLAIM), ("grove", "conflict", CLAIM)
    ]
    assert [a.name for a in registry.loaded()] == ["timber", "canopy"]
    assert registry.owner_of_session_type("research") is None
    registry.raise_for_problems()  # contained: canopy goes on


def test_dependency_cycle_is_an_error_naming_the_apps_in_order(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("cycle")
    registry = _discover()
    cycle = "dependency cycle: cyclea -> cycleb -> cyclea; break it in one app's depends"
    assert _problems(registry) == [f"app 'cyclea': {cycle}", f"app 'cycleb': {cycle}"]


def test_apps_in_a_dependency_cycle_are_left_out_and_the_others_load(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("cycle")
    registry = _discover()
    assert [(a.name, a.status) for a in registry.failed()] == [("cyclea", "broken"), ("cycleb", "broken")]
    assert [a.name for a in registry.loaded()] == ["timber", "canopy", "grove"]
    registry.raise_for_problems()  # contained


def test_missing_dependency_is_an_error_naming_both_apps(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("missing_dep")
    registry = _discover()
    assert _problems(registry) == [
        "app 'needy': depends on app 'ghost', which is not installed; install or enable 'ghost', "
        "or remove it from needy's timber_app_info() depends"
    ]
    assert registry.get("needy").status == "broken"
    assert [a.name for a in registry.loaded()] == ["timber", "canopy", "grove"]


def test_dependency_on_a_disabled_app_says_it_is_disabled(install_fixture: Callable[[str], Path]) -> None:
    install_fixture("journal")
    install_fixture("dependent")
    registry = _discover(TIMBER_DISABLE_APPS="journal")
    assert _problems(registry) == [
        "app 'addon': depends on app 'journal', which is disabled; install or enable 'journal', "
        "or remove it from addon's timber_app_info() depends"
    ]


def test_unknown_app_lookup_names_the_installed_apps() -> None:
    with pytest.raises(Exception) as info:
        _discover().get("ledger")
    assert type(info.value).__name__ == "NotFoundError"
    assert str(info.value) == (
        "no app named 'ledger' is installed (installed: canopy, grove); install its distribution, "
        "or check TIMBER_APPS / TIMBER_DISABLE_APPS"
    )


def test_direct_app_from_model_config_dirs_joins_the_registry(tmp_path: Path) -> None:
    from timber_core.plugins import DirectApp

    registry, _pm = discover(direct=DirectApp("library", [str(tmp_path)], ["reading"]), environ={})
    library = registry.get("library")
    assert (library.status, library.distribution) == ("ok", "<initialize_timber model_config_dirs>")
    assert library.model_dirs == [str(tmp_path)]
    assert registry.owner_of_session_type("reading") == "library"


def test_direct_app_named_platform_is_refused(tmp_path: Path) -> None:
    from timber_core.plugins import DirectApp

    registry, _pm = discover(direct=DirectApp("platform", [str(tmp_path)]), environ={})
    assert _problems(registry) == [
        "app 'platform': the app name 'platform' is reserved for the kernel; rename the entry point in "
        "initialize_timber(app_name=...)"
    ]


def test_core_headers_reads_name_and_version_before_the_description() -> None:
    from timber_core.plugins import _core_headers

    text = "Metadata-Version: 2.1\nName: timber-x\nSummary: a\n  folded summary\nVersion: 1.2\n\nName: not-this\n"
    assert _core_headers(text) == {"Name": "timber-x", "Version": "1.2"}


@pytest.mark.parametrize("text", [
    "Name: timber-x\n  continued\nVersion: 1.2\n",  # folded: the email parser's to read
    "Name: timber-x\nName: timber-y\nVersion: 1.2\n",  # twice
])
def test_core_headers_leaves_unusual_headers_to_the_email_parser(text: str) -> None:
    from timber_core.plugins import _core_headers

    assert _core_headers(text) == {}


def test_installed_apps_have_the_name_and_version_importlib_metadata_reads() -> None:
    from importlib.metadata import distribution

    registry = _discover()
    for name in ("canopy", "grove"):
        app = registry.get(name)
        meta = distribution(app.distribution).metadata
        assert (app.distribution, app.version) == (meta["Name"], meta["Version"])
