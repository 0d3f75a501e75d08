"""The endpoints every app has, and :func:`create_app`, the FastAPI app an app extends.

    from timber_core import initialize_timber
    from timber_core.web import create_app

    app = create_app("canopy")        # initializes the kernel as canopy at start-up (lifespan)

    @app.get("/orders")
    def orders(user_id: str = Depends(current_user_id)): ...

Endpoints (docs/web.md): ``POST /auth/register``, ``POST /auth/token``, ``GET /sessions``,
``POST /sessions``, ``GET /notifications``, ``GET /health``. Handlers are plain ``def``
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
from ..context import current_app, current_user
from ..errors import AuthenticationError
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


def current_user_id() -> str:
    """Dependency: the request's user (from its bearer token); 401 when the request has none."""
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


def timber_router() -> APIRouter:
    """Return the kernel's endpoints; mount it in an app wrapped by :class:`TimberMiddleware`."""
    from ..services.persistence import notification_service, session_service

    router = APIRouter()

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

    @router.get("/health", tags=["health"])
    def health() -> JSONResponse:
        status, report = health_report(get_kernel(), current_app())
        return JSONResponse(report, status_code=status)

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


def create_app(app_name: str, *, initialize: bool = True, **settings: Any) -> FastAPI:
    """Return a FastAPI app serving app ``app_name``: the middleware, the error shapes, :func:`timber_router`.

    With ``initialize`` (the default) its lifespan calls ``initialize_timber(app_name=app_name,
    **settings)`` at start-up and ``shutdown()`` at the end; pass ``initialize=False`` when the
    process builds the kernel itself (several apps in one process, tests).
    """
    lifespan = None
    if initialize:
        @contextlib.asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            from .. import initialize_timber, shutdown

            kernel = initialize_timber(app_name=app_name, **settings)
            try:
                auth.signing_keys(kernel)  # refuse to start without keys on PostgreSQL
                yield
            finally:
                shutdown()

    app = FastAPI(title=f"{app_name} (Timber)", lifespan=lifespan)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_middleware(TimberMiddleware, app_name=app_name)
    app.include_router(timber_router())
    return app
