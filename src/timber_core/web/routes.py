"""The endpoints every app has, and :func:`create_app`, the FastAPI app an app extends.

    from timber_core import initialize_timber
    from timber_core.web import create_app

    app = create_app("canopy")        # initializes the kernel as canopy at start-up (lifespan)

    @app.get("/orders")
    def orders(user_id: str = Depends(current_user_id)): ...

Endpoints (docs/web.md): ``POST /auth/register``, ``POST /auth/token``, ``GET /sessions``,
``POST /sessions``, ``GET /notifications``, ``POST /notifications/{id}/read``, ``GET /health``,
and the app's own routes from its plugin's ``timber_web_app()`` hook. ``create_app("platform")``
is the platform's server (:mod:`.platform`): the login, ``/health`` and the cross-app endpoints. Handlers are plain ``def``
(FastAPI runs them in a thread with a copy of the request's context): the kernel's services
are synchronous, and the middleware's app and user contexts hold in them unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import auth
from ..context import PLATFORM, current_app, current_user
from ..errors import AuthenticationError, NotFoundError, NotInitializedError
from ..kernel import get_kernel
from .asgi import TimberMiddleware
from .errors import error_body
from .health import health_report

__all__ = ["create_app", "timber_router", "current_user_id"]


class RegisterIn(BaseModel):
    email: str = Field(max_length=255)
    username: str = Field(max_length=100)
    password: str = Field(min_length=8, max_length=1024)


class SessionIn(BaseModel):
    session_type: str = Field(max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict)


async def current_user_id() -> str:
    """Dependency: the request's user (from its bearer token); 401 when the request has none.

    ``async`` on purpose: it only reads the context the middleware set in the request's task,
    and FastAPI would run a plain ``def`` dependency in a worker thread, a second thread hop
    per request beside the handler's (docs/performance.md, "Web").
    """
    user = current_user()
    if user is None:
        raise AuthenticationError("this endpoint needs a user: send 'Authorization: Bearer <access token>' "
                                  "(POST /auth/token)")
    return user


def _session(row: Any) -> dict[str, Any]:
    return {"id": row.id, "session_type": row.session_type, "app_name": row.app_name, "status": row.status,
            "metadata": row._mapping["metadata"],
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "ended_at": row.ended_at.isoformat() if row.ended_at else None}


def _notification(row: Any) -> dict[str, Any]:
    return {"id": row.id, "app_name": row.app_name, "notification_type": row.notification_type,
            "title": row.title, "message": row.message, "data": row.data, "is_read": bool(row.is_read),
            "created_at": row.created_at.isoformat() if row.created_at else None}


def timber_router(*, platform: bool = False) -> APIRouter:
    """Return the kernel's endpoints; mount it in an app wrapped by :class:`TimberMiddleware`.

    ``platform=True``: the login and ``/health`` only (the platform has no sessions of its own).
    """
    from ..services.persistence import notification_service, session_service

    router = APIRouter()

    @router.get("/health", tags=["health"])
    def health() -> JSONResponse:
        kernel = get_kernel()
        status, report = health_report(kernel, current_app())
        return JSONResponse(report, status_code=status)

    @router.post("/auth/register", status_code=201, tags=["auth"])
    def register(body: RegisterIn) -> dict[str, str]:
        user_id = auth.register(get_kernel(), body.email, body.username, body.password)
        return {"id": user_id, "email": body.email, "username": body.username}

    @router.post("/auth/token", tags=["auth"])
    def token(form: OAuth2PasswordRequestForm = Depends()) -> dict[str, str]:
        kernel = get_kernel()
        user_id = auth.authenticate(kernel, form.username, form.password)
        access = auth.issue_token(auth.signing_keys(kernel), user_id, kernel.config.TOKEN_LIFETIME)
        return {"access_token": access, "token_type": "bearer"}

    if platform:
        return router

    @router.get("/sessions", tags=["sessions"])
    def list_sessions(user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        return {"sessions": [_session(r) for r in session_service.get_user_sessions(user_id)]}

    @router.post("/sessions", status_code=201, tags=["sessions"])
    def create_session(body: SessionIn, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        session_id = session_service.create_session(user_id, body.session_type, body.metadata)
        return {"id": session_id, "session_type": body.session_type, "app_name": current_app()}

    @router.get("/notifications", tags=["notifications"])
    def list_notifications(unread_only: bool = False, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        rows = notification_service.get_user_notifications(user_id, unread_only=unread_only)
        return {"notifications": [_notification(r) for r in rows]}

    @router.post("/notifications/{notification_id}/read", tags=["notifications"])
    def mark_read(notification_id: str, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        if not notification_service.mark_read(notification_id, user_id):
            raise NotFoundError(f"no notification {notification_id!r} of yours")
        return {"id": notification_id, "is_read": True}

    return router


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = {401: "AuthenticationError", 404: "NotFoundError", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
    return JSONResponse(error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse(error_body("ValidationError", "; ".join(parts) or "invalid request"), status_code=422)


def _own_routes(app_name: str) -> Any:
    """Return app ``app_name``'s answer to ``timber_web_app()``: from the kernel's registry if one is built."""
    from ..plugins import discover, web_routes

    try:
        kernel = get_kernel()
        registry, pm = kernel.apps, kernel.plugin_manager
    except NotInitializedError:  # the usual case: the lifespan builds the kernel later
        registry, pm = discover()
    return web_routes(registry, pm, app_name)


def _add_own_routes(app: FastAPI, app_name: str, routes: Any) -> None:
    if routes is None:
        return
    if isinstance(routes, APIRouter):
        app.include_router(routes)
    elif callable(routes):
        app.mount("/", routes)  # after the kernel's routes, so those answer first
    else:
        from ..errors import PluginError

        raise PluginError(f"app {app_name!r}: timber_web_app() returned {type(routes).__name__}; return a "
                          f"fastapi.APIRouter, an ASGI app or None")


def create_app(app_name: str, *, initialize: bool = True, **settings: Any) -> FastAPI:
    """Return a FastAPI app serving app ``app_name``: middleware, error shapes, kernel and app routes.

    The routes are :func:`timber_router`'s and the app's own, from its plugin's
    ``timber_web_app()`` hook (docs/plugins.md). ``app_name="platform"`` builds the platform's
    server instead (:mod:`timber_core.web.platform`): each request in ``platform_context()``.

    With ``initialize`` (the default) its lifespan calls ``initialize_timber(app_name=app_name,
    **settings)`` at start-up (``app_name=None`` for the platform, which then checks that the
    login may act as the platform) and ``shutdown()`` at the end; pass ``initialize=False`` when the
    process builds the kernel itself (several apps in one process, tests).
    """
    is_platform = app_name == PLATFORM
    lifespan = None
    if initialize:
        @contextlib.asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            from .. import initialize_timber, shutdown

            kernel = initialize_timber(app_name=None if is_platform else app_name, **settings)
            try:
                auth.signing_keys(kernel)  # refuse to start without keys on PostgreSQL
                if is_platform:
                    from .platform import check_platform_grant

                    check_platform_grant(kernel)
                yield
            finally:
                shutdown()

    app = FastAPI(title=f"{app_name} (Timber)", lifespan=lifespan)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_middleware(TimberMiddleware, app_name=app_name)
    app.include_router(timber_router(platform=is_platform))
    if is_platform:
        from .platform import platform_router

        app.include_router(platform_router())
    else:
        _add_own_routes(app, app_name, _own_routes(app_name))
    return app
