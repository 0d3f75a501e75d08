"""The ASGI middleware (Starlette, FastAPI, any ASGI app): each request in its app's and user's context.

    app = TimberMiddleware(app, "canopy")      # or app.add_middleware(TimberMiddleware, app_name="canopy")

``app_name="platform"`` runs each request in ``platform_context()`` instead (the platform's server).

For each HTTP request the downstream app runs inside ``app_context(app_name)`` and, when the
request carries ``Authorization: Bearer <token>`` with a valid token, inside
``user_context(<the token's user>)``, so every query, service call and search in the handler is
isolated with no code in it. An invalid, expired or unknown-keyed token is answered 401 before
the app runs. Errors escaping the app are answered through :mod:`timber_core.web.errors`.

The contexts are contextvars set in the request's own task and reset when it ends: a request
never sees another's user (sync handlers run in a thread with a copy of that context).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, MutableMapping

from ..auth import KernelKeys, verify_token
from ..context import PLATFORM, app_context, platform_context, user_context
from ..errors import AuthenticationError
from .errors import error_for

__all__ = ["TimberMiddleware", "bearer_token"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def bearer_token(scope: Scope) -> str | None:
    """Return the bearer token of the request's ``Authorization`` header (None: no such header).

    Raise AuthenticationError for an ``Authorization`` header of another scheme or with no token.
    """
    for name, value in scope.get("headers") or ():
        if name.lower() == b"authorization":
            return token_of_header(value.decode("latin-1"))
    return None


def token_of_header(value: str) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header's value (ASGI and WSGI alike).

    Raise AuthenticationError for another scheme or no token.
    """
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization header must be 'Bearer <access token>'")
    return token.strip()


class TimberMiddleware:
    """Run each HTTP request of ``app`` as app ``app_name`` and, with a valid token, as its user."""

    def __init__(self, app: ASGIApp, app_name: str) -> None:
        self.app = app
        self.app_name = app_name
        self.keys = KernelKeys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            token = bearer_token(scope)
            user = verify_token(self.keys(), token) if token is not None else None
            scope_cm = platform_context() if self.app_name == PLATFORM else app_context(self.app_name)
            with scope_cm, user_context(user):
                await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 -- every error is answered in one shape, none re-raised
            if started:  # the response is under way: nothing can be answered any more
                raise
            status, body = error_for(exc)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
