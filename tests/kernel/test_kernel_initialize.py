"""``initialize_timber`` on the embedded SQLite: tables, models, sessions, services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

import timber_core
from timber_core.errors import ConfigurationError, IsolationError, NotFoundError, NotInitializedError, PluginError
from timber_core.kernel import Kernel
from timber_kernel_testing import GOOD_YAML

pytestmark = pytest.mark.usefixtures("fresh_kernel")

ALL_TABLES = ["events", "notifications", "orders", "research_reports", "research_sessions", "sessions",
              "timber_gdpr_audit", "timber_vector_outbox", "trading_sessions", "user_credentials", "users"]


def _init(tmp_path: Path, app: str = "canopy", **kwargs: object) -> Kernel:
    return timber_core.initialize_timber(app, database_url=f"sqlite:///{tmp_path / 'timber.db'}", **kwargs)


def test_initialize_creates_every_table_on_sqlite(tmp_path: Path) -> None:
    kernel = _init(tmp_path)
    # Through the migrations: Alembic's version table is there too, and Timber's record of revisions.
    assert sorted(inspect(kernel.db.engine).get_table_names()) == sorted(["alembic_version", "timber_revisions",
                                                                          *ALL_TABLES])
    assert [c["name"] for c in inspect(kernel.db.engine).get_columns("sessions")] == [
        "id", "user_id", "session_type", "app_name", "status", "metadata", "ended_at", "created_at", "updated_at"
    ]


def test_initialize_is_safe_to_call_twice(tmp_path: Path) -> None:
    first = _init(tmp_path)
    second = _init(tmp_path, app="grove")
    assert timber_core.get_kernel() is second and first is not second
    assert second.app_name == "grove"


def test_initialize_without_database_url_uses_sqlite_under_timber_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from timber_core.config import TimberConfig

    monkeypatch.chdir(tmp_path)
    caplog.set_level("INFO", logger="timber")
    kernel = timber_core.initialize_timber("canopy", config=TimberConfig(environ={}))
    expected = f"sqlite:///{tmp_path / '.timber' / 'timber.db'}"
    assert kernel.db.display_url == expected
    assert (tmp_path / ".timber" / "timber.db").is_file()
    assert f"timber: no DATABASE_URL set; using the embedded SQLite database {expected}" in caplog.messages


def test_initialize_with_model_config_dirs_defines_a_direct_app(tmp_path: Path) -> None:
    kernel = _init(tmp_path, app="library", model_config_dirs=[str(GOOD_YAML / "library")])
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy", "grove", "library"]
    assert "book_tags" in inspect(kernel.db.engine).get_table_names()
    assert kernel.table_owner("books") == "library"


def test_a_direct_app_without_session_types_owns_the_one_named_after_it(tmp_path: Path) -> None:
    kernel = _init(tmp_path, app="library", model_config_dirs=[str(GOOD_YAML / "library")])
    assert kernel.apps.session_types_of("library") == frozenset({"library"})


def test_a_direct_app_declaring_session_types_owns_only_those(tmp_path: Path) -> None:
    kernel = _init(tmp_path, app="library", model_config_dirs=[str(GOOD_YAML / "library")], session_types=["loans"])
    assert kernel.apps.session_types_of("library") == frozenset({"loans"})


def test_a_direct_app_named_like_another_apps_type_gets_no_default_type(tmp_path: Path) -> None:
    kernel = _init(tmp_path, app="research", model_config_dirs=[str(GOOD_YAML / "library")])
    assert (kernel.apps.session_types_of("research"), kernel.apps.session_types_of("grove")) == (
        frozenset(), frozenset({"research", "analysis"}))


def test_initialize_refuses_unknown_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        _init(tmp_path, pool_sise=3)
    assert str(info.value).startswith("initialize_timber() got unknown settings ['pool_sise']; allowed: session_types")


def test_initialize_for_an_unknown_app_names_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        _init(tmp_path, app="ledger")
    assert "no app named 'ledger' is installed (installed: canopy, grove)" in str(info.value)


def test_initialize_goes_on_beside_a_conflicting_app_name(tmp_path: Path, install_fixture: Callable[[str], Path]) -> None:
    install_fixture("conflict")
    kernel = _init(tmp_path, app="grove")
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "grove"]
    assert "Order" not in kernel.models


def test_initialize_as_the_conflicting_app_names_both_distributions(
    tmp_path: Path, install_fixture: Callable[[str], Path]
) -> None:
    install_fixture("conflict")
    with pytest.raises(PluginError) as info:
        _init(tmp_path, app="canopy")
    assert str(info.value) == (
        "app 'canopy' (timber-canopy, timber-canopy-clone) is in conflict: the app name 'canopy' is registered by 2 "
        "distributions: timber-canopy and timber-canopy-clone; uninstall one of them; fix it, or initialize another app"
    )


def test_initialize_goes_on_beside_a_broken_plugin(tmp_path: Path, install_fixture: Callable[[str], Path]) -> None:
    install_fixture("broken")
    kernel = _init(tmp_path, app="grove")
    assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy", "grove"]
    assert kernel.apps.get("brokenapp").status == "broken"


def test_initialize_as_the_broken_app_says_why(tmp_path: Path, install_fixture: Callable[[str], Path]) -> None:
    install_fixture("broken")
    with pytest.raises(PluginError) as info:
        _init(tmp_path, app="brokenapp")
    assert str(info.value) == (
        "app 'brokenapp' (timber-broken-app) is broken: RuntimeError: broken on purpose: the fixture's import "
        "fails; fix it, or initialize another app"
    )


def test_get_model_returns_the_mapped_class(tmp_path: Path) -> None:
    kernel = _init(tmp_path)
    order = timber_core.get_model("Order")
    assert order is kernel.models["Order"] and order.__tablename__ == "orders"


def test_get_model_of_another_apps_private_model_names_the_owner(tmp_path: Path) -> None:
    _init(tmp_path)
    with pytest.raises(IsolationError) as info:
        timber_core.get_model("ResearchReport")
    assert str(info.value) == (
        "app 'canopy' may not use model 'ResearchReport' (table 'research_reports'): it is private to app "
        "'grove'. Reach app grove's data through its services, or run cross-app work in "
        "timber_core.platform_context()"
    )


def test_get_model_of_an_unknown_model_suggests_close_names(tmp_path: Path) -> None:
    _init(tmp_path)
    with pytest.raises(NotFoundError) as info:
        timber_core.get_model("Orders")
    assert str(info.value).startswith("no model named 'Orders' is declared by any loaded app. Did you mean Order?")


def test_get_model_before_initialize_says_to_initialize() -> None:
    with pytest.raises(NotInitializedError) as info:
        timber_core.get_model("User")
    assert str(info.value) == (
        "Timber is not initialized: call timber_core.initialize_timber(app_name=...) before using models or services"
    )


def test_session_scope_commits_on_success(tmp_path: Path) -> None:
    from timber_core.models.base import db_manager

    _init(tmp_path)
    user = timber_core.get_model("User")
    with db_manager.session_scope() as session:
        session.add(user(email="ada@example.com", username="ada"))
    with db_manager.session_scope() as session:
        assert session.scalars(select(user.username)).all() == ["ada"]


def test_session_scope_rolls_back_on_error(tmp_path: Path) -> None:
    from timber_core.models.base import db_manager

    _init(tmp_path)
    user = timber_core.get_model("User")
    with pytest.raises(RuntimeError, match="^stop$"):
        with db_manager.session_scope() as session:
            session.add(user(email="bob@example.com", username="bob"))
            session.flush()
            raise RuntimeError("stop")
    with db_manager.session_scope() as session:
        assert session.scalars(select(user)).all() == []


def test_rows_get_uuid_ids_and_timestamps(tmp_path: Path) -> None:
    from timber_core.models.base import db_manager

    _init(tmp_path)
    user = timber_core.get_model("User")
    with db_manager.session_scope() as session:
        row = user(email="cy@example.com", username="cy")
        session.add(row)
        session.flush()
        assert len(row.id) == 36 and row.created_at is not None and row.updated_at is not None


def test_services_are_reachable_by_name_and_built_on_first_use(
    tmp_path: Path, install_fixture: Callable[[str], Path]
) -> None:
    install_fixture("journal")
    kernel = _init(tmp_path, app="journal")
    assert sorted(kernel.services) == ["journal_entries", "notifications", "orders", "reports", "sessions", "tracker", "users", "vectors"]
    assert kernel.services["journal_entries"] == ("journal-service", kernel)
    assert kernel.services["journal_entries"] is kernel.services["journal_entries"]


def test_services_keep_the_mapping_protocol(tmp_path: Path) -> None:
    """``in``, ``get``, ``keys`` and ``items`` answer like any Mapping: no NotFoundError for a membership test."""
    kernel = _init(tmp_path)
    assert "orders" in kernel.services
    assert "ledger" not in kernel.services
    assert kernel.services.get("ledger") is None
    assert kernel.services.get("ledger", "default") == "default"
    assert kernel.services.get("orders") is kernel.services["orders"]
    assert dict(kernel.services.items())["orders"] is kernel.services["orders"]


def test_unknown_service_names_the_installed_services(tmp_path: Path) -> None:
    kernel = _init(tmp_path)
    with pytest.raises(NotFoundError) as info:
        kernel.services["ledger"]
    assert str(info.value) == "no service named 'ledger'; installed services: notifications, orders, reports, sessions, tracker, users, vectors"
