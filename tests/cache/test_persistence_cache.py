"""The shared services' cached reads: dropped after the commit, never before, never on rollback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from sqlalchemy import event

from timber_core import app_context, user_context
from timber_core.services.persistence import notification_service, session_service, user_service


class Selects:
    """Counts the SELECTs on ``table`` that reach the database."""

    def __init__(self, kernel: Any, table: str) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self.table = table
        event.listen(kernel.db.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {self.table}" in statement:
            with self._lock:
                self.count += 1


def test_a_second_unread_count_does_not_reach_the_database(kernel: Any, alice: str) -> None:
    selects = Selects(kernel, "notifications")
    assert [notification_service.unread_count(alice), notification_service.unread_count(alice)] == [0, 0]
    assert selects.count == 1


def test_a_new_notification_is_in_the_next_count_and_list(kernel: Any, alice: str) -> None:
    notification_service.unread_count(alice)
    notification_service.get_user_notifications(alice)
    notification_service.create_notification(alice, "fill", "Order filled")
    assert notification_service.unread_count(alice) == 1
    assert [n.title for n in notification_service.get_user_notifications(alice)] == ["Order filled"]


def test_mark_all_read_is_in_the_next_count(kernel: Any, alice: str) -> None:
    notification_service.create_notification(alice, "fill", "Order filled")
    assert notification_service.unread_count(alice) == 1
    notification_service.mark_all_read(alice)
    assert notification_service.unread_count(alice) == 0


def test_a_rollback_leaves_the_cached_entry_as_it_was(kernel: Any, alice: str) -> None:
    notification_service.unread_count(alice)
    selects = Selects(kernel, "notifications")
    with pytest.raises(RuntimeError), user_context(alice), kernel.db.session_scope():
        notification_service.create_notification(alice, "fill", "Order filled")
        raise RuntimeError("changed my mind")
    assert notification_service.unread_count(alice) == 0
    assert selects.count == 0


def test_the_entry_is_dropped_after_the_commit_not_before(kernel: Any, alice: str) -> None:
    notification_service.unread_count(alice)
    seen_during: list[int] = []
    with user_context(alice), kernel.db.session_scope():
        notification_service.create_notification(alice, "fill", "Order filled")
        reader = threading.Thread(target=lambda: seen_during.append(notification_service.unread_count(alice)))
        reader.start()
        reader.join()
        hits_during = kernel.cache.stats()["timber"]["hits"]
    assert (seen_during, hits_during, notification_service.unread_count(alice)) == ([0], 1, 1)


def test_a_read_inside_the_writing_transaction_sees_the_write(kernel: Any, alice: str) -> None:
    notification_service.unread_count(alice)
    with user_context(alice), kernel.db.session_scope():
        notification_service.create_notification(alice, "fill", "Order filled")
        assert notification_service.unread_count(alice) == 1


def test_an_orm_write_of_a_notification_is_in_the_next_count(kernel: Any, alice: str) -> None:
    notification_service.unread_count(alice)
    Notification = kernel.models["Notification"]
    with user_context(alice), kernel.db.session_scope() as session:
        session.add(Notification(id="n-orm-1", user_id=alice, app_name="canopy", notification_type="fill",
                                 title="Order filled", data={"app": "canopy"}, is_read=False))
    assert notification_service.unread_count(alice) == 1


def test_a_new_session_is_in_the_next_list_of_its_app_only(kernel: Any, alice: str) -> None:
    assert session_service.get_user_sessions(alice) == []
    with app_context("grove"):
        assert session_service.get_user_sessions(alice) == []
    session_id = session_service.create_session(alice, "trading")
    assert [s.id for s in session_service.get_user_sessions(alice)] == [session_id]
    with app_context("grove"):
        assert session_service.get_user_sessions(alice) == []


def test_an_ended_session_is_ended_in_the_next_list(kernel: Any, alice: str) -> None:
    session_id = session_service.create_session(alice, "trading")
    assert [s.status for s in session_service.get_app_sessions(alice, "canopy")] == ["active"]
    session_service.end_session(session_id, alice)
    assert [s.status for s in session_service.get_app_sessions(alice, "canopy")] == ["ended"]


def test_a_cached_user_is_the_same_row(kernel: Any, alice: str) -> None:
    first, second = user_service.get_user(alice), user_service.get_user(alice)
    assert (first, second.id, second.email, kernel.cache.stats()["timber"]["hits"]) == (second, alice, first.email, 1)


def test_a_hundred_concurrent_misses_do_one_database_read(kernel: Any, alice: str) -> None:
    selects = Selects(kernel, "notifications")
    start = threading.Barrier(100)
    counts: list[int] = []

    def read() -> None:
        start.wait(10)
        counts.append(notification_service.unread_count(alice))

    threads = [threading.Thread(target=read) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (selects.count, counts) == (1, [0] * 100)


_WRITER = """
import sys, timber_core
from timber_core.services.persistence import notification_service
timber_core.initialize_timber("canopy", database_url=sys.argv[1])
notification_service.create_notification(sys.argv[2], "fill", "From the other process")
timber_core.shutdown()
"""


def test_a_write_in_another_process_is_seen_by_the_next_read_here(kernel: Any, alice: str,
                                                                   timber_database_url: str) -> None:
    assert notification_service.unread_count(alice) == 0
    subprocess.run([sys.executable, "-c", _WRITER, timber_database_url, alice], check=True, env=dict(os.environ),
                   timeout=120)
    assert notification_service.unread_count(alice) == 1
