"""The design document's Python samples run through the ``timber.common`` names (docs/design-samples.md).

Each ``sample_NN_*.py`` is one block of the document, copied unchanged but for the lines marked
``# added:`` or ``# changed:``; each test runs one sample in an app's working directory (the
model directories it names exist there, empty: the apps' models come from their plugins) and
checks what it did. The document's illustrative blocks, and the samples that cannot pass as
written, are listed with the reason in docs/design-samples.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import timber_core
from timber.common import app_context, initialize_timber, platform_context

from .conftest import SAMPLES, add_user

Run = Callable[[str], dict[str, Any]]
BOTH = pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@BOTH
def test_application_context_starts_canopy_on_the_environments_database(run_sample: Run, database: str) -> None:
    run_sample("sample_01_application_context.py")
    kernel = timber_core.get_kernel()
    assert (kernel.app_name, kernel.db.dialect) == ("canopy", database.split(":")[0].split("+")[0])


@BOTH
def test_session_types_each_app_creates_its_own_type_and_canopy_reads_only_trading(canopy: str, run_sample: Run) -> None:
    found = run_sample("sample_02_session_types.py")
    assert [(s.session_type, s.metadata_) for s in found["canopy_sessions"]] == [
        ("trading", {"order_id": "order-456", "app": "canopy", "created_by_app": "canopy"})
    ]
    from timber.common.services.persistence import session_service

    with app_context("grove"):  # the Grove half wrote the research session, the last session_id
        assert [s.id for s in session_service.get_user_sessions("user-123")] == [found["session_id"]]


@BOTH
def test_canopy_app_creates_a_trading_session_and_tracks_it(run_sample: Run) -> None:
    app = run_sample("sample_03_canopy_app.py")
    user = add_user("user-123")
    session_id = app["create_trading_session"](user, "momentum")

    from timber.common.services.persistence import session_service, tracker_service

    session = session_service.get_session(session_id, user_id=user)
    assert (session.session_type, session.metadata_) == (
        "trading", {"strategy": "momentum", "app": "canopy", "created_by_app": "canopy"})
    assert [(e.event_type, e.event_data) for e in tracker_service.get_user_events(user)] == [
        ("trading_session_created", {"session_id": session_id})]


def test_grove_app_creates_a_research_session_and_tracks_it(run_sample: Run) -> None:
    app = run_sample("sample_04_grove_app.py")
    user = add_user("user-123")
    session_id = app["create_research_session"](user, "AAPL")

    from timber.common.services.persistence import session_service, tracker_service

    assert timber_core.get_kernel().app_name == "grove"
    assert session_service.get_session(session_id, user_id=user).session_type == "research"
    assert [(e.event_type, e.event_data) for e in tracker_service.get_user_events(user)] == [
        ("research_session_created", {"session_id": session_id, "symbol": "AAPL"})]


def test_order_service_creates_and_lists_the_users_orders(canopy: str, run_sample: Run) -> None:
    service = run_sample("sample_05_order_service.py")["order_service"]
    order_id = service.create_order(canopy, "AAPL", "buy", 10, 187.5)
    orders = service.get_user_orders(canopy, status="pending")
    assert [(o.id, o.symbol, o.quantity, o.price) for o in orders] == [(order_id, "AAPL", 10, Decimal("187.50"))]
    assert service.get_user_orders(canopy, status="filled") == []


def test_report_service_creates_and_publishes_a_report_in_grove(canopy: str, run_sample: Run) -> None:
    with app_context("grove"):
        service = run_sample("sample_06_report_service.py")["report_service"]
        report_id = service.create_report(canopy, None, "AAPL outlook", "Margins widen.")
        assert service.publish_report(report_id, canopy) is True
        assert service.publish_report("no-such-report", canopy) is False
        report = timber_core.get_model("ResearchReport")
        with timber_core.get_kernel().db.session_scope() as session:
            row = session.get(report, report_id)
            assert (row.title, row.is_published, row.published_at is not None) == ("AAPL outlook", True, True)


def test_session_type_filtering_service_returns_only_the_apps_types(canopy: str, run_sample: Run) -> None:
    from timber.common.services.persistence import session_service

    trading = session_service.create_session(canopy, "trading")
    with app_context("grove"):
        session_service.create_session(canopy, "research")
    service = run_sample("sample_07_session_type_filtering.py")["SessionService"]()
    assert [s.id for s in service.get_app_sessions(canopy, "canopy")] == [trading]


@BOTH
def test_shared_notifications_are_seen_by_the_user_from_every_app(
    canopy: str, run_sample: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    found = run_sample("sample_10_shared_notifications.py")
    assert sorted(capsys.readouterr().out.splitlines()) == [
        "[canopy] Order Filled: Your AAPL order has been filled",
        "[grove] Research Complete: Your AAPL analysis is ready",
    ]
    assert len(found["notifications"]) == 2


def test_cross_app_analytics_counts_each_apps_sessions_in_the_platform_context(canopy: str, run_sample: Run) -> None:
    from timber.common.services.persistence import session_service

    session_service.create_session(canopy, "trading")
    session_service.create_session(canopy, "paper_trading")
    with app_context("grove"):
        session_service.create_session(canopy, "analysis")
    summary = run_sample("sample_11_cross_app_analytics.py")["get_user_activity_summary"]
    with platform_context():  # "across all apps": the platform's view (docs/isolation.md)
        assert summary(canopy) == {"canopy": {"trading": 1, "paper_trading": 1},
                                   "grove": {"research": 0, "analysis": 1}, "total": 3}


def test_unified_search_finds_the_users_order_across_apps(canopy: str, run_sample: Run) -> None:
    order = timber_core.get_model("Order")
    with timber_core.get_kernel().db.session_scope() as session:
        session.add(order(user_id=canopy, symbol="AAPL", order_type="buy", quantity=1,
                          notes="bought apple shares before the earnings call"))
    search = run_sample("sample_12_unified_search.py")["unified_search"]
    with platform_context():
        results = search(canopy, "apple earnings")
    assert [(r["app"], r["collection"]) for r in results] == [("canopy", "orders")]


def test_app_configuration_classes_start_their_apps(run_sample: Run) -> None:
    found = run_sample("sample_13_app_configuration.py")
    kernel = initialize_timber(config=found["CanopyConfig"])
    assert (kernel.app_name, type(kernel.config).__name__, kernel.config.ORDER_CONFIRMATION_REQUIRED) == (
        "canopy", "CanopyConfig", True)
    kernel = initialize_timber(config=found["GroveConfig"])
    assert (kernel.app_name, kernel.config.MAX_REPORT_LENGTH) == ("grove", 50000)


def test_scaling_arithmetic_gives_75_connections(run_sample: Run) -> None:
    assert run_sample("sample_14_scaling.py")["total_max_connections"] == 75


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_integration_testing_module_passes_per_app_and_fails_mixing_apps_in_one_process(
    workdir: Path, database: str
) -> None:
    """The document's test module, run by pytest: its per-app tests pass; its isolation test cannot.

    ``test_data_isolation`` uses both module fixtures, so the process's app is the last
    initialized (Grove) when it creates a trading session: Timber refuses it. The version
    that is right is tests/services/test_multi_app.py (docs/design-samples.md).
    """
    timber_core.initialize_timber(app_name="canopy", database_url=database)
    add_user("test-user")
    timber_core.shutdown()
    shutil.copy(SAMPLES / "sample_15_integration_testing.py", workdir / "test_integration.py")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_integration.py"],
                          cwd=workdir, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DATABASE_URL": database})
    assert "1 failed, 2 passed" in done.stdout.splitlines()[-1], done.stdout[-3000:]
    assert ("FAILED test_integration.py::test_data_isolation - timber_core.errors.IsolationError: "
            "app 'grove' cannot create a session of type 'trading'") in done.stdout


def test_myapp_config_starts_myapp_through_its_class(run_sample: Run) -> None:
    config = run_sample("sample_16_myapp_config.py")["MyAppConfig"]
    kernel = initialize_timber(config=config, session_types=["myapp"])
    assert (kernel.app_name, kernel.config.MYAPP_FEATURE_ENABLED, config.DATABASE_URL) == (
        "myapp", True, os.environ["DATABASE_URL"])


def _flask() -> None:
    try:
        import flask  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Flask is not installed under CI: install timber-core[testing]")
        pytest.skip("the Flask samples need Flask: pip install 'timber-core[testing]'")


def _myapp_package(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lay out the document's ``myapp`` package: config.py (sample 16) and its model file (section 2)."""
    (workdir / "myapp" / "__init__.py").write_text("")
    shutil.copy(SAMPLES / "sample_16_myapp_config.py", workdir / "myapp" / "config.py")
    shutil.copy(SAMPLES / "myapp_models.yaml", workdir / "myapp" / "data" / "models" / "myapp_models.yaml")
    monkeypatch.syspath_prepend(str(workdir))
    for name in [m for m in sys.modules if m == "myapp" or m.startswith("myapp.")]:
        monkeypatch.delitem(sys.modules, name)


def test_myapp_flask_app_creates_a_session_through_its_endpoint(
    run_sample: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _flask()
    _myapp_package(workdir, monkeypatch)
    app = run_sample("sample_17_myapp_flask_app.py")["app"]
    app.config["PROPAGATE_EXCEPTIONS"] = True  # the test sees the error, not Flask's 500 page
    add_user("user-123")
    answer = app.test_client().post("/create-session", json={"user_id": "user-123"})
    assert answer.status_code == 200 and set(answer.get_json()) == {"session_id"}
    from timber.common.services.persistence import session_service

    stored = session_service.get_session(answer.get_json()["session_id"])
    assert (stored.user_id, stored.session_type, stored.metadata_["app"]) == ("user-123", "myapp", "myapp")


def test_myapp_service_reaches_its_own_model(run_sample: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _myapp_package(workdir, monkeypatch)
    initialize_timber(config=run_sample("sample_16_myapp_config.py")["MyAppConfig"])
    service = run_sample("sample_18_myapp_service.py")["MyAppService"]()
    assert service.do_myapp_thing("user-123") is None
    assert service._get_model("MyAppSession").__tablename__ == "myapp_sessions"


@pytest.fixture
def myapp(run_sample: Run) -> str:
    """MyApp's process, declaring the session types its best-practice samples use (the document never does)."""
    initialize_timber(app_name="myapp", model_config_dirs=["./myapp/data/models"],
                      session_types=["myapp", "myapp_feature"])
    return add_user("user-123")


def test_use_session_types_reads_back_only_myapp_feature(myapp: str, run_sample: Run) -> None:
    sessions = run_sample("sample_19_use_session_types.py")["sessions"]
    assert [(s.session_type, s.metadata_) for s in sessions] == [
        ("myapp_feature", {"app": "myapp", "created_by_app": "myapp"})]


def test_include_app_context_keeps_the_apps_metadata(myapp: str, run_sample: Run) -> None:
    run_sample("sample_20_include_app_context.py")
    from timber.common.services.persistence import session_service

    assert [s.metadata_ for s in session_service.get_user_sessions(myapp)] == [
        {"app": "myapp", "version": "1.0.0", "feature": "reporting", "created_by_app": "myapp"}]


def test_share_carefully_notification_is_stamped_with_myapp(myapp: str, run_sample: Run) -> None:
    run_sample("sample_21_share_carefully.py")
    from timber.common.services.persistence import notification_service

    assert [(n.app_name, n.title, n.data) for n in notification_service.get_user_notifications(myapp)] == [
        ("myapp", "MyApp Alert", {"app": "myapp", "alert_id": "alert-123"})]


def test_respect_boundaries_defines_a_service_whose_methods_do_nothing(run_sample: Run) -> None:
    service = run_sample("sample_22_respect_boundaries.py")["MyAppService"]()
    assert (service.get_canopy_orders("user-123"), hasattr(service, "get_myapp_data")) == (None, False)
