"""The platform's server: a user's unified search and activity summary across apps.

Served by ``timber serve platform`` (``create_app("platform")``): every request runs in
``platform_context()`` and the token's ``user_context``, so the handlers read across apps but
only the requesting user's rows (the vector service and the tracker service check the user).
On PostgreSQL the process's login must be able to take the ``timber_platform`` role; the
server refuses to start otherwise (:func:`check_platform_grant`). The app servers never hold
that grant, which is why these endpoints live in a process of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query

from ..context import platform_context
from ..errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["platform_router", "check_platform_grant"]


def check_platform_grant(kernel: Kernel) -> None:
    """Raise ConfigurationError unless this process may run the platform context (PostgreSQL: ``timber_platform``)."""
    if kernel.db.engine.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    try:
        with platform_context(), kernel.db.connection() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the role switch at BEGIN is what fails without the grant
        login = kernel.db.engine.url.username or "the login"
        raise ConfigurationError(
            f"the platform server cannot act as the platform: {login!r} cannot take the role timber_platform "
            f"({type(exc).__name__}); run `GRANT timber_platform TO {login};` or serve the platform with a login "
            f"that has it") from exc


def platform_router() -> APIRouter:
    """Return the platform's endpoints; mount them only in a server built by ``create_app("platform")``."""
    from ..services.persistence import tracker_service
    from ..services.vector import vector_service
    from .routes import current_user_id

    router = APIRouter(prefix="/platform", tags=["platform"])

    @router.get("/search")
    def unified_search(q: str = Query(min_length=1, max_length=10_000, description="what to search for, by meaning"),
                       limit: int = Query(20, ge=1, le=100),
                       user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        """The user's rows closest in meaning to ``q``, from every app's searchable models, best first."""
        hits = vector_service.unified_search(user_id, q, limit=limit)
        return {"hits": [{"app": h["app"], "model": h["model"], "collection": h["collection"], "id": h["id"],
                          "score": h["score"], "content": h["payload"].get("content")} for h in hits]}

    @router.get("/activity")
    def activity(user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        """The user's sessions per app and type and events per app (``{"<app>": {...}, "total": n}``)."""
        return {"user_id": user_id, "activity": tracker_service.get_user_activity_summary(user_id)}

    return router
