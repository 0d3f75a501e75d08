"""``session_scope()`` is one unit of work: nested scopes and the shared services join it (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import pytest
from sqlalchemy import event, text

from timber_core import app_context, user_context
from timber_core.errors import IsolationError, TimberError, ValidationError
from timber_core.services.persistence import notification_service, session_service, tracker_service, user_service

from ._failures import count_rows, counting_commits

SHARED = ("sessions", "notifications", "events")


def _write_one_of_each(user_id: str) -> str:
    sid = session_service.create_session(user_id, "trading", {"strategy": "momentum"})
    notification_service.create_notification(user_id, "session_started", "Session started")
    tracker_service.track_event(user_id, "session_started", {"session_id": sid})
    return sid


def test_a_nested_session_scope_yields_the_outer_session(kernel: Any) -> None:
    with kernel.db.session_scope() as outer, kernel.db.session_scope() as inner:
        assert inner is outer


def test_shared_service_calls_inside_a_scope_commit_with_it_in_one_commit(kernel: Any, alice: str) -> None:
    with counting_commits(kernel) as commits, user_context(alice), kernel.db.session_scope():
        _write_one_of_each(alice)
        assert commits == [0]
    assert commits == [1]
    assert [count_rows(kernel, t, alice) for t in SHARED] == [1, 1, 1]


def test_an_error_after_shared_service_calls_in_a_scope_leaves_none_of_their_rows(kernel: Any, alice: str) -> None:
    with pytest.raises(RuntimeError, match="^stop$"), user_context(alice), kernel.db.session_scope():
        _write_one_of_each(alice)
        raise RuntimeError("stop")
    assert [count_rows(kernel, t, alice) for t in SHARED] == [0, 0, 0]


def test_a_service_call_inside_a_scope_sees_the_scopes_uncommitted_rows(kernel: Any, alice: str) -> None:
    with user_context(alice), kernel.db.session_scope():
        sid = session_service.create_session(alice, "trading")
        assert [s.id for s in session_service.get_user_sessions(alice)] == [sid]
        assert count_rows(kernel, "sessions", alice) == 0  # not committed yet: another connection sees nothing


def test_a_service_call_inside_a_scope_sees_its_pending_orm_rows(kernel: Any) -> None:
    User = kernel.models["User"]
    with user_context("u-pending"), kernel.db.session_scope() as s:
        s.add(User(id="u-pending", email="pending@example.com", username="pending"))
        sid = session_service.create_session("u-pending", "trading")  # the sessions row refers to the user
        assert user_service.get_user("u-pending").email == "pending@example.com"
    assert session_service.get_session(sid, user_id="u-pending").user_id == "u-pending"


def test_a_nested_scope_under_another_app_is_refused_naming_both_contexts(kernel: Any, alice: str) -> None:
    with user_context(alice), kernel.db.session_scope():
        with pytest.raises(IsolationError) as err, app_context("grove"), kernel.db.session_scope():
            pass
    assert str(err.value) == (
        f"session_scope() as app 'grove' (user {alice!r}) cannot join the open transaction of app 'canopy' "
        f"(user {alice!r}): one transaction has one app and one user; enter app_context()/user_context() "
        f"before the outermost session_scope(), or run this after it ends"
    )


def test_a_service_call_for_another_user_inside_a_scope_is_refused(kernel: Any, alice: str, bob: str) -> None:
    with user_context(alice), kernel.db.session_scope():
        with pytest.raises(IsolationError) as err, user_context(bob):
            session_service.create_session(bob, "trading")
    assert str(err.value) == (
        f"session_scope() as app 'canopy' (user {bob!r}) cannot join the open transaction of app 'canopy' "
        f"(user {alice!r}): one transaction has one app and one user; enter app_context()/user_context() "
        f"before the outermost session_scope(), or run this after it ends"
    )


def test_an_inner_error_caught_inside_the_outer_scope_rolls_everything_back_and_says_so(
        kernel: Any, alice: str) -> None:
    with pytest.raises(TimberError) as err, user_context(alice), kernel.db.session_scope():
        session_service.create_session(alice, "trading")
        try:
            with kernel.db.session_scope():
                raise RuntimeError("inner")
        except RuntimeError:
            pass
    assert str(err.value) == (
        "session_scope(): nothing was committed: a nested scope failed (RuntimeError: inner) and its error was "
        "caught inside the outer scope; let the error propagate, or catch it outside the outermost session_scope()"
    )
    assert count_rows(kernel, "sessions", alice) == 0


def test_joining_a_scope_after_an_inner_failure_was_caught_is_refused(kernel: Any, alice: str) -> None:
    with pytest.raises(TimberError), user_context(alice), kernel.db.session_scope():
        try:
            with kernel.db.session_scope():
                raise RuntimeError("inner")
        except RuntimeError:
            pass
        with pytest.raises(TimberError) as err:
            session_service.create_session(alice, "trading")
    assert str(err.value) == (
        "session_scope(): cannot join a transaction that is being rolled back: a nested scope failed "
        "(RuntimeError: inner); let the error propagate, or catch it outside the outermost session_scope()"
    )


def test_a_taken_email_caught_inside_a_scope_leaves_the_scope_able_to_commit(kernel: Any, alice: str) -> None:
    with kernel.db.session_scope():
        with pytest.raises(ValidationError, match="email 'alice@example.com' is already taken"):
            user_service.create_user("alice@example.com", "alice2")
        carol = user_service.create_user("carol@example.com", "carol")
    assert user_service.get_user(carol).username == "carol"


def test_a_scope_in_a_thread_running_a_copied_context_is_refused(kernel: Any) -> None:
    caught: list[BaseException] = []

    def inner() -> None:
        try:
            with kernel.db.session_scope():
                pass
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            caught.append(exc)

    with kernel.db.session_scope():
        ctx = contextvars.copy_context()  # what asyncio.to_thread() does
        thread = threading.Thread(target=ctx.run, args=(inner,))
        thread.start()
        thread.join()
    assert [(type(e).__name__, str(e)) for e in caught] == [(
        "TimberError",
        "session_scope() cannot join a transaction opened in another thread (its context was copied, as "
        "asyncio.to_thread() does): a Session is not thread-safe; run it after the outer scope ends, or in a "
        "thread started without that context",
    )]


def test_a_scope_in_a_fresh_thread_opens_its_own_transaction(kernel: Any, bob: str) -> None:
    seen: list[Any] = []

    def inner() -> None:
        with kernel.db.session_scope() as s:
            seen.append(s)

    with kernel.db.session_scope() as outer:
        thread = threading.Thread(target=inner)
        thread.start()
        thread.join()
    assert len(seen) == 1 and seen[0] is not outer


def test_a_joined_scope_fires_after_commit_only_at_the_outer_commit(kernel: Any, alice: str) -> None:
    commits: list[Any] = []
    record = commits.append
    event.listen(kernel.db.session_factory, "after_commit", record)
    try:
        with user_context(alice), kernel.db.session_scope() as outer:
            with kernel.db.session_scope():
                session_service.create_session(alice, "trading")
            assert commits == []
    finally:
        event.remove(kernel.db.session_factory, "after_commit", record)
    assert commits == [outer]


def test_bulk_sessions_for_several_users_inside_a_scope_give_the_scope_its_user_back(
        kernel: Any, alice: str, bob: str) -> None:
    # Several users in one call: only without a user context (a user_context() acts for one user).
    with kernel.db.session_scope():
        ids = session_service.create_sessions([{"user_id": alice, "session_type": "trading"},
                                               {"user_id": bob, "session_type": "trading"}])
        with kernel.db.connection() as conn:
            user = conn.execute(text("SELECT current_setting('timber.user_id', true)")).scalar_one() \
                if conn.dialect.name == "postgresql" else ""
    assert user == ""
    assert [count_rows(kernel, "sessions", u) for u in (alice, bob)] == [1, 1]
    assert len(ids) == 2
