"""The WSGI middleware (Flask, any WSGI app): each request in its app's and user's context.

    app = Flask(__name__)
    init_flask(app, "canopy")        # wraps app.wsgi_app, answers errors in the JSON shape

    @app.get("/me")
    def me():
        return {"user": require_user()}          # 401 without a valid bearer token

Like :class:`timber_core.web.asgi.TimberMiddleware`: ``app_context(app_name)`` and, with a valid
``Authorization: Bearer`` token, ``user_context(<its user>)``; an invalid token is 401 before
the app runs. Each request runs in its own copy of the context (``contextvars.copy_context()``, set with
:func:`timber_core.context.set_context`), entered for the app call and for every step of the
response body, so a server thread reused for the next request never carries this one's user.
"""

from __future__ import annotations

import contextvars
from http import HTTPStatus
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..auth import KernelKeys, verify_token
from ..context import current_user, set_context
from ..errors import AuthenticationError, TimberError
from .asgi import token_of_header
from .errors import error_body, error_for

__all__ = ["TimberWSGIMiddleware", "init_flask", "require_user"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def require_user() -> str:
    """Return the request's user; raise AuthenticationError (401) when it has none."""
    user = current_user()
    if user is None:
        raise AuthenticationError("this endpoint needs a user: send 'Authorization: Bearer <access token>' "
                                  "(POST /auth/token)")
    return user


def _bearer(environ: dict[str, Any]) -> str | None:
    value = environ.get("HTTP_AUTHORIZATION")
    return None if value is None else token_of_header(value)


class _Body:
    """The response body, each step run in the request's own context."""

    def __init__(self, ctx: contextvars.Context, body: Iterable[bytes]) -> None:
        self.ctx, self.body = ctx, body
        self.it: Iterator[bytes] = ctx.run(iter, body)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self.ctx.run(next, self.it)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            self.ctx.run(close)


class TimberWSGIMiddleware:
    """Run each request of the WSGI ``app`` as app ``app_name`` and, with a valid token, as its user."""

    def __init__(self, app: WSGIApp, app_name: str) -> None:
        self.app = app
        self.app_name = app_name
        self.keys = KernelKeys()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # The request's own context, set for good and dropped with the request: nothing to restore,
        # so a body closed late (or never) leaves no other context changed.
        ctx = contextvars.copy_context()
        try:
            token = _bearer(environ)
            user = verify_token(self.keys(), token) if token is not None else None
            ctx.run(set_context, self.app_name, user)
            body = ctx.run(self.app, environ, start_response)
        except Exception as exc:  # noqa: BLE001 -- answered in the one JSON shape
            status, payload = error_for(exc)
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
            if status == 401:
                headers.append(("WWW-Authenticate", "Bearer"))
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [payload]
        return _Body(ctx, body)



def init_flask(app: Any, app_name: str) -> Any:
    """Wrap Flask ``app``'s WSGI app in :class:`TimberWSGIMiddleware` and answer its errors as JSON; return ``app``."""
    app.wsgi_app = TimberWSGIMiddleware(app.wsgi_app, app_name)

    def answer(exc: Exception) -> Any:
        code = getattr(exc, "code", None)
        if not isinstance(exc, TimberError) and isinstance(code, int) and hasattr(exc, "description"):
            kind = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(code, "HTTPError")  # werkzeug's HTTPException
            return error_body(kind, str(exc.description)), code
        status, payload = error_for(exc)
        headers = {"Content-Type": "application/json"}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return payload, status, headers

    app.register_error_handler(Exception, answer)
    return app
