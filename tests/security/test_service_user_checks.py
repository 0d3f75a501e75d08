"""The user wall inside an app: no shared-service call acts for another user than the block's.

Inside ``user_context(alice)`` every service call that takes a ``user_id`` (or a filter on one)
for another user is refused with IsolationError before anything is read or written, on SQLite
and PostgreSQL alike. Without a user context the calls behave as before. Also here: carrying the
app and user context into threads and executors (``timber_core.context.bind_context``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.services.conftest import kernel, sqlite_kernel  # noqa: F401 - the fixtures, on both databases
from timber_core import app_context, platform_context, user_context
from timber_core.context import (
    ContextThreadPoolExecutor,
    bind_context,
    current_app,
    current_user,
    submit_in_context,
)
from timber_core.errors import IsolationError
from timber_core.services.persistence import (
    notification_service,
    session_service,
    tracker_service,
    user_service,
)
from timber_core.services.vector import vector_service


def refusal(call: str, acting: str, other: str, arg: str = "user_id") -> str:
    return (f"{call}: the block acts for user {acting!r} (user_context) but {arg} is {other!r}; pass "
            f"{arg}={acting!r}, or enter user_context({other!r}) around the call to act for that user")


class Bob:
    """Bob's rows, made before the test enters Alice's context."""

    def __init__(self, bob: str) -> None:
        self.id = bob
        self.session = session_service.create_session(bob, "trading", {"n": 1})
        self.notification = notification_service.create_notification(bob, "alert", "hello")


def _count(kernel: Any, model: str, user: str) -> int:  # noqa: F811 - kernel is the fixture's value
    table = kernel.models[model].__table__
    with platform_context(), user_context(user), kernel.db.connection() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(table.c.user_id == user)).scalar_one())


#: (name, call, the name the message gives, the argument named, in the platform context?)
CALLS: list[tuple[str, Callable[[Bob], Any], str, str, bool]] = [
    ("create_session", lambda b: session_service.create_session(b.id, "trading"), "create_session", "user_id", False),
    ("create_sessions", lambda b: session_service.create_sessions([{"user_id": b.id, "session_type": "trading"}]),
     "create_sessions (item 0)", "user_id", False),
    ("get_session", lambda b: session_service.get_session(b.session, user_id=b.id), "get_session", "user_id", False),
    ("get_user_sessions", lambda b: session_service.get_user_sessions(b.id), "get_user_sessions", "user_id", False),
    ("get_app_sessions", lambda b: session_service.get_app_sessions(b.id, "canopy"), "get_app_sessions", "user_id",
     False),
    ("update_session", lambda b: session_service.update_session(b.session, status="paused", user_id=b.id),
     "update_session", "user_id", False),
    ("end_session", lambda b: session_service.end_session(b.session, user_id=b.id), "end_session", "user_id", False),
    ("create_notification", lambda b: notification_service.create_notification(b.id, "alert", "hi"),
     "create_notification", "user_id", False),
    ("get_user_notifications", lambda b: notification_service.get_user_notifications(b.id),
     "get_user_notifications", "user_id", False),
    ("mark_read", lambda b: notification_service.mark_read(b.notification, b.id), "mark_read", "user_id", False),
    ("mark_all_read", lambda b: notification_service.mark_all_read(b.id), "mark_all_read", "user_id", False),
    ("unread_count", lambda b: notification_service.unread_count(b.id), "unread_count", "user_id", False),
    ("track_event", lambda b: tracker_service.track_event(b.id, "clicked"), "track_event", "user_id", False),
    ("track_events", lambda b: tracker_service.track_events([{"user_id": b.id, "event_type": "clicked"}]),
     "track_events (item 0)", "user_id", False),
    ("get_user_events", lambda b: tracker_service.get_user_events(b.id), "get_user_events", "user_id", False),
    ("get_user_activity_summary", lambda b: tracker_service.get_user_activity_summary(b.id),
     "get_user_activity_summary", "user_id", True),
    ("unified_search", lambda b: vector_service.unified_search(b.id, "apple earnings"), "unified_search", "user_id",
     True),
    ("platform search", lambda b: vector_service.search("apple earnings", "research_sessions", {"user_id": b.id}),
     "search", "filter_dict['user_id']", True),
]


@pytest.mark.parametrize(("name", "call", "shown", "arg", "platform"), CALLS, ids=[c[0] for c in CALLS])
def test_a_service_call_for_another_user_inside_a_user_context_is_refused(
        kernel: Any, alice: str, bob: str, name: str, call: Callable[[Bob], Any], shown: str, arg: str,  # noqa: F811
        platform: bool) -> None:
    b = Bob(bob)
    with user_context(alice), (platform_context() if platform else app_context("canopy")):
        with pytest.raises(IsolationError) as err:
            call(b)
    assert str(err.value) == refusal(shown, alice, bob, arg)


#: The apps' own services, which follow the same rule: (name, app, call).
APP_CALLS: list[tuple[str, str, Callable[[Any, str], Any]]] = [
    ("start_trading_session", "canopy", lambda k, u: k.services["orders"].start_trading_session(u, "momentum")),
    ("create_order", "canopy", lambda k, u: k.services["orders"].create_order(u, "AAPL", "limit", 1, 10.0)),
    ("fill_order", "canopy", lambda k, u: k.services["orders"].fill_order("o-1", u)),
    ("get_user_orders", "canopy", lambda k, u: k.services["orders"].get_user_orders(u)),
    ("start_research", "grove", lambda k, u: k.services["reports"].start_research(u, "AAPL")),
    ("create_report", "grove", lambda k, u: k.services["reports"].create_report(u, None, "t", "c")),
    ("publish_report", "grove", lambda k, u: k.services["reports"].publish_report("r-1", u)),
    ("get_user_reports", "grove", lambda k, u: k.services["reports"].get_user_reports(u)),
]


@pytest.mark.parametrize(("name", "app", "call"), APP_CALLS, ids=[c[0] for c in APP_CALLS])
def test_an_app_service_call_for_another_user_inside_a_user_context_is_refused(
        sqlite_kernel: Any, name: str, app: str, call: Callable[[Any, str], Any]) -> None:  # noqa: F811
    bob = user_service.create_user("bob@example.com", "bob")
    with app_context(app), user_context("alice"), pytest.raises(IsolationError) as err:
        call(sqlite_kernel, bob)
    assert str(err.value) == refusal(name, "alice", bob)


WRITES = ["create_session", "create_sessions", "update_session", "end_session", "create_notification",
          "mark_read", "mark_all_read", "track_event", "track_events"]


@pytest.mark.parametrize("name", WRITES)
def test_a_refused_write_for_another_user_changes_nothing(kernel: Any, alice: str, bob: str, name: str) -> None:  # noqa: F811
    b = Bob(bob)
    call = next(c[1] for c in CALLS if c[0] == name)
    with user_context(alice), pytest.raises(IsolationError):
        call(b)
    session = session_service.get_session(b.session, user_id=bob)
    assert (session.status, session.ended_at, session.metadata_["n"]) == ("active", None, 1)
    assert [_count(kernel, m, bob) for m in ("Session", "Notification", "Event")] == [1, 1, 0]
    assert notification_service.unread_count(bob) == 1


def test_a_service_call_for_the_blocks_own_user_is_allowed(kernel: Any, alice: str) -> None:  # noqa: F811
    with user_context(alice):
        sid = session_service.create_session(alice, "trading")
        assert [s.id for s in session_service.get_user_sessions(alice)] == [sid]
        assert session_service.update_session(sid, status="paused", user_id=alice) is True


def test_without_a_user_context_a_call_may_name_any_user(kernel: Any, alice: str, bob: str) -> None:  # noqa: F811
    b = Bob(bob)
    assert [s.id for s in session_service.get_user_sessions(bob)] == [b.session]
    assert session_service.update_session(b.session, status="paused", user_id=bob) is True
    assert notification_service.unread_count(bob) == 1


def test_an_explicit_nested_user_context_acts_for_that_user(kernel: Any, alice: str, bob: str) -> None:  # noqa: F811
    b = Bob(bob)
    with user_context(alice), user_context(bob):
        assert [s.id for s in session_service.get_user_sessions(bob)] == [b.session]


def test_get_session_without_user_id_does_not_find_another_users_session_inside_a_user_context(
        kernel: Any, alice: str, bob: str) -> None:  # noqa: F811
    b = Bob(bob)
    with user_context(alice):
        assert session_service.get_session(b.session) is None


def test_end_session_without_user_id_does_not_end_another_users_session_inside_a_user_context(
        kernel: Any, alice: str, bob: str) -> None:  # noqa: F811
    b = Bob(bob)
    with user_context(alice):
        assert session_service.end_session(b.session) is False
    assert session_service.get_session(b.session, user_id=bob).status == "active"


def test_the_user_directory_stays_open_inside_a_user_context(kernel: Any, alice: str, bob: str) -> None:  # noqa: F811
    with user_context(alice):
        assert user_service.get_user(bob).username == "bob"


def test_a_bulk_call_for_several_users_is_allowed_without_a_user_context(kernel: Any, alice: str, bob: str) -> None:  # noqa: F811
    ids = session_service.create_sessions([{"user_id": alice, "session_type": "trading"},
                                           {"user_id": bob, "session_type": "trading"}])
    assert [[s.id for s in session_service.get_user_sessions(u)] for u in (alice, bob)] == [[ids[0]], [ids[1]]]


# -- carrying the context into threads and executors ---------------------------------------------

def _seen() -> tuple[str, str | None]:
    return current_app(), current_user()


def test_a_thread_started_with_bind_context_sees_the_app_and_user(sqlite_kernel: Any) -> None:  # noqa: F811
    seen: list[tuple[str, str | None]] = []
    with app_context("grove"), user_context("alice"):
        thread = threading.Thread(target=bind_context(lambda: seen.append(_seen())))
    thread.start()
    thread.join()
    assert seen == [("grove", "alice")]


def test_a_plain_thread_runs_as_the_default_app_with_no_user(sqlite_kernel: Any) -> None:  # noqa: F811
    seen: list[tuple[str, str | None]] = []
    with app_context("grove"), user_context("alice"):
        thread = threading.Thread(target=lambda: seen.append(_seen()))
        thread.start()
        thread.join()
    assert seen == [("canopy", None)]


def test_submit_in_context_runs_the_call_in_the_submitters_context(sqlite_kernel: Any) -> None:  # noqa: F811
    with ThreadPoolExecutor(2) as pool:
        with app_context("grove"), user_context("alice"):
            future = submit_in_context(pool, _seen)
        plain = pool.submit(_seen)
        assert (future.result(), plain.result()) == (("grove", "alice"), ("canopy", None))


def test_the_context_thread_pool_runs_every_call_in_the_submitters_context(sqlite_kernel: Any) -> None:  # noqa: F811
    with ContextThreadPoolExecutor(4) as pool:
        with app_context("grove"), user_context("alice"):
            futures = [pool.submit(_seen) for _ in range(8)]
            mapped = list(pool.map(lambda _: _seen(), range(8)))
        with platform_context():
            platform = pool.submit(_seen).result()
    assert [f.result() for f in futures] + mapped == [("grove", "alice")] * 16
    assert platform == ("platform", None)


def test_a_thread_with_bind_context_reads_as_the_app_and_user(kernel: Any, alice: str) -> None:  # noqa: F811
    with app_context("grove"):
        sid = session_service.create_session(alice, "research")
    result: list[Any] = []
    with app_context("grove"), user_context(alice):
        thread = threading.Thread(target=bind_context(lambda: result.append(session_service.get_user_sessions(alice))))
    thread.start()
    thread.join()
    assert [[s.id for s in r] for r in result] == [[sid]]
