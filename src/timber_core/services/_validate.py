"""Argument checks shared by the services: each failure is a ValidationError naming the argument."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..context import current_user
from ..errors import IsolationError, ValidationError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,35}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


def check_id(value: Any, arg: str, call: str) -> str:
    """Return ``value`` if it is a 1-36 character id of letters, digits and ``_.:@-``."""
    if not isinstance(value, str):
        raise ValidationError(f"{call}: {arg} must be a string id, not {type(value).__name__}")
    if not _ID.match(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValidationError(
            f"{call}: {arg}={shown!r} is not a valid id: use 1 to 36 letters, digits, '-', '_', '.', ':' "
            f"or '@', starting with a letter or digit"
        )
    return value


def check_name(value: Any, arg: str, call: str, max_len: int = 50) -> str:
    """Return ``value`` if it is a lowercase identifier (session types, event types, app names)."""
    if not isinstance(value, str):
        raise ValidationError(f"{call}: {arg} must be a string, not {type(value).__name__}")
    if not _NAME.match(value) or len(value) > max_len:
        raise ValidationError(
            f"{call}: {arg}={value[:60]!r} is not valid: use lowercase letters, digits and underscores, "
            f"starting with a letter, at most {max_len} characters"
        )
    return value


def check_text(value: Any, arg: str, call: str, max_len: int | None, *, required: bool = True) -> str | None:
    """Return ``value`` if it is text within ``max_len`` characters (None allowed when not required)."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(f"{call}: {arg} must be non-empty text, not {value!r:.60}")
    if max_len is not None and len(value) > max_len:
        raise ValidationError(f"{call}: {arg} is {len(value)} characters long; the limit is {max_len}")
    return value


def check_json(value: Any, arg: str, call: str) -> dict[str, Any]:
    """Return a copy of ``value`` if it is a JSON-serializable mapping (None gives ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{call}: {arg} must be a dict, not {type(value).__name__}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{call}: {arg} must be JSON-serializable: {exc}") from None
    return dict(value)


def check_limit(value: Any, arg: str, call: str, maximum: int = 10_000) -> int | None:
    """Return ``value`` if it is None or a whole number from 1 to ``maximum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(f"{call}: {arg} must be a whole number from 1 to {maximum}, not {value!r}")
    return value


def check_bool(value: Any, arg: str, call: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{call}: {arg} must be True or False, not {value!r}")
    return value


def check_acting_user(user_id: Any, call: str, arg: str = "user_id") -> None:
    """Refuse a call for ``user_id`` inside a ``user_context()`` of another user (IsolationError).

    With no user context set, any user may be named (background jobs, the platform).
    An explicit ``user_context(other)`` around the call is how code acts for another user.
    """
    acting = current_user()
    if acting is not None and user_id != acting:
        raise IsolationError(
            f"{call}: the block acts for user {acting!r} (user_context) but {arg} is {user_id!r:.60}; pass "
            f"{arg}={acting!r}, or enter user_context({user_id!r:.60}) around the call to act for that user"
        )
