"""Events: stamped with their app, read back per app, summarized across apps in the platform context."""

from __future__ import annotations

from typing import Any

import pytest

from timber_core import app_context, platform_context
from timber_core.errors import IsolationError
from timber_core.services.persistence import session_service, tracker_service


def test_each_app_reads_back_only_its_own_events(kernel: Any, alice: str) -> None:
    tracker_service.track_event(alice, "order_placed", {"symbol": "AAPL"})
    with app_context("grove"):
        tracker_service.track_event(alice, "note_saved")
        assert [e.event_type for e in tracker_service.get_user_events(alice)] == ["note_saved"]
    assert [(e.event_type, e.event_data) for e in tracker_service.get_user_events(alice)] == [
        ("order_placed", {"symbol": "AAPL"})
    ]


def test_track_events_bulk_records_every_event(kernel: Any, alice: str, bob: str) -> None:
    ids = tracker_service.track_events([{"user_id": alice, "event_type": "a"}, {"user_id": bob, "event_type": "b"},
                                        {"user_id": alice, "event_type": "c", "event_data": {"n": 1}}])
    assert len(ids) == 3
    assert sorted(e.event_type for e in tracker_service.get_user_events(alice)) == ["a", "c"]


def test_activity_summary_counts_every_app_in_the_platform_context(kernel: Any, alice: str) -> None:
    session_service.create_session(alice, "trading")
    session_service.create_session(alice, "trading")
    tracker_service.track_event(alice, "x")
    with app_context("grove"):
        session_service.create_session(alice, "analysis")
    with platform_context():
        summary = tracker_service.get_user_activity_summary(alice)
    assert summary == {
        "canopy": {"trading": 2, "paper_trading": 0, "events": 1},
        "grove": {"research": 0, "analysis": 1, "events": 0},
        "total": 3,
    }


def test_activity_summary_outside_the_platform_context_is_refused(kernel: Any, alice: str) -> None:
    with pytest.raises(IsolationError) as err:
        tracker_service.get_user_activity_summary(alice)
    assert str(err.value) == (
        "get_user_activity_summary: app 'canopy' may not read other apps' activity; call it inside "
        "timber_core.platform_context()"
    )
