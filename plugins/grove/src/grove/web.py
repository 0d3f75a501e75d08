"""Grove's web routes (``timber_web_app()``): research sessions with notes, reports, search in own notes.

Mounted by ``timber_core.web.create_app("grove")`` beside the kernel's endpoints (login,
``/sessions``, ``/notifications``, ``/health``) and under its middleware: every handler runs in
Grove's context as the token's user, so the handlers carry no isolation code (the search is
filtered to Grove's and the user's own notes by the vector service, not here).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from timber_core.errors import NotFoundError
from timber_core.kernel import get_kernel
from timber_core.services.vector import vector_service
from timber_core.web import current_user_id

__all__ = ["make_router"]

#: Text without NUL characters (PostgreSQL cannot store them).
_TEXT = r"^[^\x00]*$"
#: A row id as the kernel takes them (1-36 letters, digits, ``-_.:@``); anything else is 422.
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,35}$"
RowId = Annotated[str, Path(pattern=_ID_PATTERN)]


class ResearchIn(BaseModel):
    symbol: str = Field(pattern=r"^[A-Za-z0-9]{1,10}$", examples=["AAPL"])
    notes: str | None = Field(default=None, max_length=100_000, pattern=_TEXT)


class NotesIn(BaseModel):
    notes: str = Field(max_length=100_000, pattern=_TEXT)


class ReportIn(BaseModel):
    title: str = Field(min_length=1, max_length=255, pattern=r"^[^\x00]*\S[^\x00]*$")
    content: str = Field(max_length=100_000, pattern=_TEXT)
    session_id: str | None = Field(default=None, pattern=_ID_PATTERN)


def _reports() -> Any:
    return get_kernel().services["reports"]


def _research(r: Any) -> dict[str, Any]:
    return {"id": r.id, "symbol": r.symbol, "notes": r.notes,
            "created_at": r.created_at.isoformat() if r.created_at else None}


def _report(r: Any) -> dict[str, Any]:
    return {"id": r.id, "title": r.title, "content": r.content, "session_id": r.session_id,
            "is_published": bool(r.is_published),
            "published_at": r.published_at.isoformat() if r.published_at else None}


def make_router() -> APIRouter:
    """Return Grove's routes (a new router per server)."""
    router = APIRouter(tags=["grove"])

    @router.post("/research", status_code=201)
    def start_research(body: ResearchIn, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        session_id = _reports().start_research(user_id, body.symbol, notes=body.notes)
        return {"id": session_id, "symbol": body.symbol, "notes": body.notes}

    @router.get("/research")
    def list_research(user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        return {"research": [_research(r) for r in _reports().get_user_research(user_id)]}

    @router.put("/research/{session_id}/notes")
    def set_notes(session_id: RowId, body: NotesIn, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        if not _reports().set_notes(session_id, user_id, body.notes):
            raise NotFoundError(f"no research session {session_id!r} of yours")
        return {"id": session_id, "notes": body.notes}

    @router.get("/research/search")
    def search_notes(q: str = Query(min_length=1, max_length=10_000, pattern=r"^[^\x00]*\S[^\x00]*$",
                                    description="what to look for, by meaning"),
                     limit: int = Query(10, ge=1, le=100),
                     user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        hits = vector_service.search(q, "research_sessions", limit=limit)
        return {"hits": [{"id": h["id"], "score": h["score"], "notes": h["payload"].get("content")} for h in hits]}

    @router.post("/reports", status_code=201)
    def create_report(body: ReportIn, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        report_id = _reports().create_report(user_id, body.session_id, body.title, body.content)
        return {"id": report_id, "title": body.title, "is_published": False}

    @router.get("/reports")
    def list_reports(published_only: bool = False, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        return {"reports": [_report(r) for r in _reports().get_user_reports(user_id, published_only=published_only)]}

    @router.post("/reports/{report_id}/publish")
    def publish_report(report_id: RowId, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        if not _reports().publish_report(report_id, user_id):
            raise NotFoundError(f"no report {report_id!r} of yours")
        return {"id": report_id, "is_published": True}

    return router
