"""The design document's "Testing Multi-App Setup", rewritten so that it is right."""

from __future__ import annotations

from typing import Any

import pytest

from timber_core import app_context, platform_context, user_context
from timber_core.errors import IsolationError
from timber_core.services.persistence import notification_service, session_service


def test_each_app_sees_exactly_its_own_sessions(kernel: Any, alice: str) -> None:
    canopy_session = session_service.create_session(alice, "trading")
    with app_context("grove"):
        grove_session = session_service.create_session(alice, "research")

    canopy_sessions = session_service.get_user_sessions(alice)
    with app_context("grove"):
        grove_sessions = session_service.get_user_sessions(alice)

    assert [s.id for s in canopy_sessions] == [canopy_session]
    assert [s.id for s in grove_sessions] == [grove_session]


def test_canopy_creating_a_research_session_fails_naming_grove(kernel: Any, alice: str) -> None:
    with pytest.raises(IsolationError) as err:
        session_service.create_session(alice, "research")
    assert str(err.value) == (
        "app 'canopy' cannot create a session of type 'research': that type is owned by app 'grove'. "
        "App 'canopy' owns: paper_trading, trading"
    )
    with platform_context():
        assert session_service.get_user_sessions(alice) == []


def test_platform_context_sees_every_apps_sessions(kernel: Any, alice: str) -> None:
    a = session_service.create_session(alice, "paper_trading")
    with app_context("grove"):
        b = session_service.create_session(alice, "analysis")
    with platform_context():
        assert sorted(s.id for s in session_service.get_user_sessions(alice)) == sorted([a, b])


def test_metadata_is_stamped_with_the_app(kernel: Any, alice: str) -> None:
    sid = session_service.create_session(alice, "trading", {"strategy": "momentum"})
    assert session_service.get_session(sid, user_id=alice).metadata_ == {
        "strategy": "momentum", "app": "canopy", "created_by_app": "canopy"
    }


def test_get_session_of_another_app_returns_none(kernel: Any, alice: str) -> None:
    with app_context("grove"):
        sid = session_service.create_session(alice, "research")
    assert session_service.get_session(sid, user_id=alice) is None


def test_get_app_sessions_of_another_app_is_refused(kernel: Any, alice: str) -> None:
    with pytest.raises(IsolationError, match="app 'canopy' may not read app 'grove''s sessions"):
        session_service.get_app_sessions(alice, "grove")


def test_update_and_end_session_only_reach_own_sessions(kernel: Any, alice: str) -> None:
    mine = session_service.create_session(alice, "trading", {"strategy": "a"})
    with app_context("grove"):
        theirs = session_service.create_session(alice, "research")
    assert session_service.update_session(mine, metadata={"strategy": "b"}, user_id=alice) is True
    assert session_service.update_session(theirs, status="paused", user_id=alice) is False
    assert session_service.end_session(theirs, user_id=alice) is False
    with user_context(alice):  # the request's user, as a web app sets it
        assert session_service.end_session(mine) is True
        row = session_service.get_session(mine)
    assert (row.status, row.metadata_["strategy"], row.ended_at is not None) == ("ended", "b", True)
    with app_context("grove"):
        assert session_service.get_session(theirs, user_id=alice).status == "active"


def test_create_sessions_bulk_inserts_all_rows_in_order(kernel: Any, alice: str, bob: str) -> None:
    items = [{"user_id": u, "session_type": t} for u, t in [(alice, "trading"), (bob, "paper_trading"), (alice, "paper_trading")]]
    ids = session_service.create_sessions(items)
    assert len(ids) == 3 and len(set(ids)) == 3
    assert sorted(s.id for s in session_service.get_user_sessions(alice)) == sorted([ids[0], ids[2]])
    assert [s.id for s in session_service.get_user_sessions(bob)] == [ids[1]]


def test_create_sessions_writes_nothing_when_one_item_is_bad(kernel: Any, alice: str) -> None:
    with pytest.raises(IsolationError, match="owned by app 'grove'"):
        session_service.create_sessions([{"user_id": alice, "session_type": "trading"},
                                         {"user_id": alice, "session_type": "research"}])
    assert session_service.get_user_sessions(alice) == []


def test_notifications_from_both_apps_reach_the_user_each_with_its_app(kernel: Any, alice: str) -> None:
    notification_service.create_notification(alice, "order_filled", "Order Filled", "AAPL filled", {"order_id": "o-1"})
    with app_context("grove"):
        notification_service.create_notification(alice, "research_complete", "Research Complete")
    got = notification_service.get_user_notifications(alice, unread_only=True)
    assert sorted((n.app_name, n.data["app"], n.title) for n in got) == [
        ("canopy", "canopy", "Order Filled"), ("grove", "grove", "Research Complete")
    ]
    assert notification_service.unread_count(alice) == 2
    assert notification_service.unread_count(alice, app_name="grove") == 1
    assert notification_service.mark_read(got[0].id, alice) is True
    assert notification_service.unread_count(alice) == 1
    assert notification_service.mark_all_read(alice) == 1
    assert notification_service.get_user_notifications(alice, unread_only=True) == []


def test_design_document_flows_end_to_end(kernel: Any, alice: str) -> None:
    orders = kernel.services["orders"]
    trading = orders.start_trading_session(alice, "momentum")
    order_id = orders.create_order(alice, "AAPL", "limit", 10, 187.5, session_id=trading)
    assert orders.fill_order(order_id, alice) is True
    with app_context("grove"):
        reports = kernel.services["reports"]
        research = reports.start_research(alice, "AAPL", "Apple beat estimates")
        report_id = reports.create_report(alice, research, "AAPL Q3", "Strong quarter")
        assert reports.publish_report(report_id, alice) is True
        assert reports.get_user_reports(alice)[0].published_at is not None
    titles = [(n.data["app"], n.title) for n in notification_service.get_user_notifications(alice)]
    assert sorted(titles) == [("canopy", "Order Filled"), ("grove", "Research Complete")]
    assert [o.status for o in orders.get_user_orders(alice)] == ["filled"]


def test_app_services_are_reachable_by_name_and_know_their_app(kernel: Any) -> None:
    assert [kernel.services.owner(n) for n in ("orders", "reports", "sessions")] == ["canopy", "grove", "timber"]
    assert type(kernel.services["orders"]).__name__ == "OrderService"
    assert kernel.services["orders"] is kernel.services["orders"]
