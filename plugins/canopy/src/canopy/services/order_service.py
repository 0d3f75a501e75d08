"""Canopy's order management: trading sessions, orders, and telling the user."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from timber_core.errors import NotFoundError, ValidationError
from timber_core.services.base import BaseService
from timber_core.services.persistence import notification_service, session_service, tracker_service

__all__ = ["OrderService", "ORDER_TYPES"]

ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
STATUSES = ("pending", "filled", "cancelled")


class OrderService(BaseService):
    """Canopy-specific order management. Runs in Canopy's context (another app gets IsolationError)."""

    def start_trading_session(self, user_id: str, strategy: str, paper: bool = False) -> str:
        """Create a shared ``trading`` (or ``paper_trading``) session, Canopy's own record of it and an event.

        One transaction: all three are committed together, or none is.
        """
        session_type = "paper_trading" if paper else "trading"
        TradingSession = self.get_model("TradingSession")
        with self.acting_for(user_id, "start_trading_session"), self.db.session_scope() as session:
            session_id = session_service.create_session(user_id, session_type, {"strategy": strategy})
            session.add(TradingSession(id=session_id, user_id=user_id, session_type=session_type,
                                       strategy=strategy, metadata_={"app": "canopy"}))
            tracker_service.track_event(user_id, "trading_session_created", {"session_id": session_id})
        return session_id

    def create_order(self, user_id: str, symbol: str, order_type: str, quantity: int, price: float | Decimal | None,
                     session_id: str | None = None, notes: str | None = None) -> str:
        """Create a pending order and return its id.

        Raise ValidationError for a bad symbol, type, quantity or price, and NotFoundError for a
        ``session_id`` that is not one of the user's trading sessions.
        """
        if not isinstance(symbol, str) or not symbol.isalnum() or not 1 <= len(symbol) <= 10:
            raise ValidationError(f"create_order: symbol={symbol!r} must be 1-10 letters or digits, e.g. 'AAPL'")
        if order_type not in ORDER_TYPES:
            raise ValidationError(f"create_order: order_type={order_type!r}; use one of {', '.join(ORDER_TYPES)}")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise ValidationError(f"create_order: quantity must be a positive whole number, not {quantity!r}")
        if price is not None:
            try:
                price = Decimal(str(price)).quantize(Decimal("0.01"))
            except InvalidOperation:
                raise ValidationError(f"create_order: price={price!r} is not a number") from None
            if price <= 0:
                raise ValidationError(f"create_order: price must be positive, not {price}")
        Order = self.get_model("Order")
        self.check_user(user_id, "create_order")
        with self.db.session_scope() as session:
            if session_id is not None and session.query(self.get_model("TradingSession")).filter_by(
                    id=session_id, user_id=user_id).first() is None:
                raise NotFoundError(f"create_order: no trading session {session_id!r} of this user; start one with "
                                    f"start_trading_session() (POST /trading-sessions)")
            order = Order(user_id=user_id, session_id=session_id, symbol=symbol.upper(), order_type=order_type,
                          quantity=quantity, price=price, status="pending", notes=notes)
            session.add(order)
            session.flush()
            return str(order.id)

    def fill_order(self, order_id: str, user_id: str) -> bool:
        """Mark the user's order filled and notify them; return False if there is no such pending order.

        One transaction: the order is filled only if the notification is written too.
        """
        Order = self.get_model("Order")
        with self.acting_for(user_id, "fill_order"), self.db.session_scope() as session:
            order = session.query(Order).filter_by(id=order_id, user_id=user_id, status="pending").first()
            if order is None:
                return False
            order.status = "filled"
            notification_service.create_notification(
                user_id, "order_filled", "Order Filled", f"Your {order.symbol} order has been filled",
                {"order_id": order_id},
            )
        return True

    def get_user_orders(self, user_id: str, status: str | None = None) -> list[Any]:
        """Return the user's orders, newest first, optionally of one status."""
        if status is not None and status not in STATUSES:
            raise ValidationError(f"get_user_orders: status={status!r}; use one of {', '.join(STATUSES)}")
        Order = self.get_model("Order")
        self.check_user(user_id, "get_user_orders")
        with self.db.session_scope() as session:
            query = session.query(Order).filter_by(user_id=user_id)
            if status:
                query = query.filter_by(status=status)
            return query.order_by(Order.created_at.desc(), Order.id).all()
