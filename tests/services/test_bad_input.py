"""Bad input to every public call: a clear error, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from timber_core import platform_context
from timber_core.errors import IsolationError, ValidationError
from timber_core.services.persistence import notification_service, session_service, tracker_service, user_service

SQL = "x'; DROP TABLE sessions; --"


def _nothing_written(alice: str) -> None:
    with platform_context():
        assert session_service.get_user_sessions(alice) == []
        assert tracker_service.get_user_events(alice) == []
    assert notification_service.get_user_notifications(alice) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"session_type": "nonexistent"}, "app 'canopy' cannot create a session of type 'nonexistent': no installed app owns that type"),
        ({"session_type": "research"}, "that type is owned by app 'grove'"),
        ({"session_type": SQL}, "create_session: session_type=\"x'; DROP TABLE sessions; --\" is not valid"),
        ({"session_type": 7}, "create_session: session_type must be a string, not int"),
        ({"metadata": ["not", "a", "dict"]}, "create_session: metadata must be a dict, not list"),
        ({"metadata": {"when": object()}}, "create_session: metadata must be JSON-serializable"),
        ({"metadata": {"app": "grove"}}, "create_session: metadata['app']='grove' but the session belongs to app 'canopy'"),
    ],
)
def test_create_session_rejects(kernel: Any, alice: str, kwargs: dict[str, Any], message: str) -> None:
    args = {"user_id": alice, "session_type": "trading", **kwargs}
    with pytest.raises((ValidationError, IsolationError)) as err:
        session_service.create_session(**args)
    assert message in str(err.value)
    _nothing_written(alice)


@pytest.mark.parametrize(
    ("user_id", "message"),
    [
        ("", "create_session: user_id='' is not a valid id"),
        ("u" * 37, "create_session: user_id='" + "u" * 37 + "' is not a valid id"),
        (SQL, "create_session: user_id=\"x'; DROP TABLE sessions; --\" is not a valid id"),
        (None, "create_session: user_id must be a string id, not NoneType"),
        (42, "create_session: user_id must be a string id, not int"),
    ],
)
def test_create_session_rejects_bad_user_ids(kernel: Any, alice: str, user_id: Any, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        session_service.create_session(user_id, "trading")
    assert str(err.value).startswith(message)
    _nothing_written(alice)


def test_unknown_user_violates_the_foreign_key_and_writes_nothing(kernel: Any, alice: str) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        session_service.create_session("no-such-user", "trading")
    _nothing_written(alice)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: session_service.get_user_sessions(a, limit=0), "get_user_sessions: limit must be a whole number from 1 to 10000, not 0"),
        (lambda a: session_service.get_user_sessions(a, limit="5"), "get_user_sessions: limit must be a whole number from 1 to 10000, not '5'"),
        (lambda a: session_service.get_user_sessions(a, session_type="analysis"), "app 'canopy' cannot use a session of type 'analysis'"),
        (lambda a: session_service.get_session(""), "get_session: session_id='' is not a valid id"),
        (lambda a: session_service.update_session("s-1"), "update_session: give metadata and/or status to change"),
        (lambda a: session_service.update_session("s-1", metadata={"app": "x"}), "update_session: metadata['app'] is stamped by Timber"),
        (lambda a: session_service.create_sessions("trading"), "create_sessions: sessions must be a list of dicts"),
        (lambda a: session_service.create_sessions([{"user_id": a, "session_type": "trading", "colour": "red"}]),
         "create_sessions: item 0 has unknown keys ['colour']"),
        (lambda a: notification_service.create_notification(a, "order_filled", ""), "create_notification: title must be non-empty text"),
        (lambda a: notification_service.create_notification(a, "order_filled", "t" * 256), "create_notification: title is 256 characters long; the limit is 255"),
        (lambda a: notification_service.create_notification(a, "Order Filled!", "t"), "create_notification: notification_type='Order Filled!' is not valid"),
        (lambda a: notification_service.create_notification(a, "x", "t", data={"app": "grove"}), "create_notification: data['app']='grove' but the caller is app 'canopy'"),
        (lambda a: notification_service.get_user_notifications(a, unread_only="yes"), "get_user_notifications: unread_only must be True or False, not 'yes'"),
        (lambda a: tracker_service.track_event(a, SQL), "track_event: event_type=\"x'; DROP TABLE sessions; --\" is not valid"),
        (lambda a: tracker_service.track_events([{"user_id": a}]), "track_event"),
        (lambda a: user_service.create_user("not-an-email", "zed"), "create_user: email='not-an-email' is not an email address"),
        (lambda a: user_service.create_user("alice@example.com", "alice2"), "create_user: email 'alice@example.com' is already taken"),
        (lambda a: user_service.create_user("z@example.com", "alice"), "create_user: username 'alice' is already taken"),
    ],
)
def test_bad_arguments_raise_a_clear_error_and_write_nothing(kernel: Any, alice: str, call: Any, message: str) -> None:
    with pytest.raises((ValidationError, IsolationError)) as err:
        call(alice)
    assert message in str(err.value)
    _nothing_written(alice)


def test_services_before_initialization_raise_a_clear_error() -> None:
    import timber_core
    from timber_core.errors import NotInitializedError

    timber_core.shutdown()  # as in a fresh process
    with pytest.raises(NotInitializedError) as err:
        session_service.get_user_sessions("u-1")
    assert str(err.value) == ("no app context: call timber_core.initialize_timber(app_name=...) first, "
                              "or run the code inside timber_core.app_context('<app>')")
