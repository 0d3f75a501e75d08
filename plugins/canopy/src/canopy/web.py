"""Canopy's web routes (``timber_web_app()``): trading sessions and orders, over FastAPI.

Mounted by ``timber_core.web.create_app("canopy")`` beside the kernel's endpoints (login,
``/sessions``, ``/notifications``, ``/health``) and under its middleware: every handler runs in
Canopy's context as the token's user, so the handlers carry no isolation code. Errors raised
by the services are answered by the kernel's one mapping (422, 403, 404, ...).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from timber_core.errors import NotFoundError
from timber_core.kernel import get_kernel
from timber_core.services.persistence import session_service
from timber_core.web import current_user_id

__all__ = ["make_router"]

#: Text without NUL characters (PostgreSQL cannot store them).
_TEXT = r"^[^\x00]*$"
#: A row id as the kernel takes them (1-36 letters, digits, ``-_.:@``); anything else is 422.
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,35}$"
RowId = Annotated[str, Path(pattern=_ID_PATTERN)]


class TradingSessionIn(BaseModel):
    strategy: str = Field(min_length=1, max_length=100, pattern=_TEXT)
    paper: bool = False


class OrderIn(BaseModel):
    symbol: str = Field(pattern=r"^[A-Za-z0-9]{1,10}$", examples=["AAPL"])
    order_type: Literal["market", "limit", "stop", "stop_limit"]
    quantity: int = Field(gt=0, le=1_000_000_000)
    price: Decimal | None = Field(default=None, gt=0, max_digits=10, decimal_places=2)
    session_id: str | None = Field(default=None, pattern=_ID_PATTERN)
    notes: str | None = Field(default=None, max_length=10_000, pattern=_TEXT)


def _orders() -> Any:
    return get_kernel().services["orders"]


def _order(o: Any) -> dict[str, Any]:
    return {"id": o.id, "symbol": o.symbol, "order_type": o.order_type, "quantity": o.quantity,
            "price": None if o.price is None else str(o.price), "status": o.status, "session_id": o.session_id,
            "notes": o.notes, "created_at": o.created_at.isoformat() if o.created_at else None}


def _session(row: Any) -> dict[str, Any]:
    meta = row._mapping["metadata"] or {}
    return {"id": row.id, "session_type": row.session_type, "strategy": meta.get("strategy"), "status": row.status,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "ended_at": row.ended_at.isoformat() if row.ended_at else None}


def make_router() -> APIRouter:
    """Return Canopy's routes (a new router per server)."""
    router = APIRouter(tags=["canopy"])

    @router.post("/trading-sessions", status_code=201)
    def start_trading_session(body: TradingSessionIn, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        session_id = _orders().start_trading_session(user_id, body.strategy, paper=body.paper)
        return {"id": session_id, "session_type": "paper_trading" if body.paper else "trading",
                "strategy": body.strategy, "status": "active"}

    @router.get("/trading-sessions")
    def list_trading_sessions(user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        return {"trading_sessions": [_session(r) for r in session_service.get_user_sessions(user_id)]}

    @router.post("/trading-sessions/{session_id}/close")
    def close_trading_session(session_id: RowId, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        if not session_service.end_session(session_id, user_id):
            raise NotFoundError(f"no trading session {session_id!r} of yours")
        return {"id": session_id, "status": "ended"}

    @router.post("/orders", status_code=201)
    def create_order(body: OrderIn, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        order_id = _orders().create_order(user_id, body.symbol, body.order_type, body.quantity, body.price,
                                          session_id=body.session_id, notes=body.notes)
        return {"id": order_id, "symbol": body.symbol.upper(), "status": "pending"}

    @router.get("/orders")
    def list_orders(status: Literal["pending", "filled", "cancelled"] | None = Query(None),
                    user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        return {"orders": [_order(o) for o in _orders().get_user_orders(user_id, status=status)]}

    @router.post("/orders/{order_id}/fill")
    def fill_order(order_id: RowId, user_id: str = Depends(current_user_id)) -> dict[str, Any]:
        if not _orders().fill_order(order_id, user_id):
            raise NotFoundError(f"no pending order {order_id!r} of yours")
        return {"id": order_id, "status": "filled"}

    return router
