"""What Canopy checks before a GDPR erasure (its ``timber_gdpr_veto`` hook)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

__all__ = ["filled_orders"]


def filled_orders(kernel: Any, user_id: str) -> int:
    """Return how many filled orders ``user_id`` has (the hook runs in ``platform_context()``)."""
    orders = kernel.models["Order"].__table__
    with kernel.db.connection() as conn:
        query = select(func.count()).select_from(orders).where(orders.c.user_id == user_id,
                                                               orders.c.status == "filled")
        return int(conn.execute(query).scalar_one())
