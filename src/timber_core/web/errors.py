"""Errors to HTTP, in one place: a status and the JSON ``{"error": {"type": ..., "message": ...}}``.

Kernel errors keep their message (written for the user: what, where, the fix); anything
else becomes 500 with a generic message, its traceback logged on the ``timber.web`` logger
and never sent to the client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..errors import (AuthenticationError, ConflictError, IsolationError, NotFoundError, TimberError,
                      ValidationError)

__all__ = ["status_for", "error_body", "error_for", "GENERIC_MESSAGE"]

log = logging.getLogger("timber.web")

#: Most specific first: ConflictError is a ValidationError.
_STATUSES: tuple[tuple[type[BaseException], int], ...] = (
    (AuthenticationError, 401),
    (ConflictError, 409),
    (ValidationError, 422),
    (IsolationError, 403),
    (NotFoundError, 404),
)
GENERIC_MESSAGE = "internal server error; the server's log has the details"


def status_for(exc: BaseException) -> int:
    """Return the HTTP status for ``exc`` (500 for anything not listed)."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Return the JSON body of an error response."""
    return {"error": {"type": kind, "message": message}}


def error_for(exc: BaseException) -> tuple[int, bytes]:
    """Return the status and the encoded JSON body answering ``exc``; log a 500's traceback."""
    status = status_for(exc)
    if status == 500:
        log.error("unhandled error answering a request", exc_info=exc)
        body = error_body("InternalServerError", GENERIC_MESSAGE)
    else:
        assert isinstance(exc, TimberError)
        body = error_body(type(exc).__name__, str(exc))
    return status, json.dumps(body).encode()
