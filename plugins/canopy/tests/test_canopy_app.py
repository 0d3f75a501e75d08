"""Canopy as a Timber app: its plugin, its models, and OrderService (the design document's API)."""

from __future__ import annotations

import decimal
from collections.abc import Callable

import pytest

import timber_core
from timber_core.errors import IsolationError
from timber_core.kernel import Kernel
from timber_core.testing import assert_refused_across_apps

pytestmark = pytest.mark.timber_app("canopy")


@pytest.fixture
def kernel(timber_kernel: Kernel) -> Kernel:
    """The Canopy kernel of ``timber_core.testing``, on a fresh SQLite or PostgreSQL database."""
    return timber_kernel


def test_canopy_owns_trading_and_paper_trading(kernel: Kernel) -> None:
    assert kernel.apps.session_types_of("canopy") == frozenset({"trading", "paper_trading"})


def test_canopy_models_are_private_to_canopy(kernel: Kernel) -> None:
    assert [(m.name, m.table_name, m.shared) for m in kernel.models_of("canopy")] == [
        ("TradingSession", "trading_sessions", False), ("Order", "orders", False)
    ]


def test_canopy_links_users_to_its_sessions_from_its_own_side(kernel: Kernel) -> None:
    user = kernel.models["User"]
    assert user.canopy_sessions.property.mapper.class_ is kernel.models["TradingSession"]
    assert user.canopy_orders.property.mapper.class_ is kernel.models["Order"]
    assert kernel.models["User"].__timber_model__.relationships == []


def test_order_notes_are_declared_for_vector_search(kernel: Kernel) -> None:
    vs = kernel.spec("Order").vector_search
    assert vs is not None and (vs.enabled, vs.content_field) == (True, "notes")


def test_create_order_returns_the_new_orders_id(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    order_id = kernel.services["orders"].create_order(user_id, "AAPL", "market", 10, 150.25)
    assert isinstance(order_id, str) and len(order_id) == 36


def test_get_user_orders_returns_the_created_order_pending(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    orders = kernel.services["orders"]
    order_id = orders.create_order(user_id, "AAPL", "market", 10, 150.25, notes="earnings beat")
    (order,) = orders.get_user_orders(user_id)
    assert (order.id, order.symbol, order.order_type, order.quantity, order.status, order.notes) == (
        order_id, "AAPL", "market", 10, "pending", "earnings beat"
    )
    assert order.price == decimal.Decimal("150.25")


def test_get_user_orders_filters_by_status(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    orders = kernel.services["orders"]
    orders.create_order(user_id, "MSFT", "limit", 5, 300.0)
    assert orders.get_user_orders(user_id, status="filled") == []
    assert [o.symbol for o in orders.get_user_orders(user_id, status="pending")] == ["MSFT"]


def test_get_user_orders_returns_only_that_users_orders_newest_first(kernel: Kernel, make_user: Callable[..., str]) -> None:
    ada, bob = make_user("ada@example.com", "ada"), make_user("bob@example.com", "bob")
    orders = kernel.services["orders"]
    first = orders.create_order(ada, "AAPL", "market", 1, 1.0)
    second = orders.create_order(ada, "TSLA", "market", 2, 2.0)
    orders.create_order(bob, "NVDA", "market", 3, 3.0)
    assert [o.id for o in orders.get_user_orders(ada)] == [second, first]


def test_order_service_built_on_the_database_like_the_design_document(kernel: Kernel, make_user: Callable[..., str]) -> None:
    from canopy.services.order_service import OrderService

    user_id = make_user("ada@example.com", "ada")
    service = OrderService(kernel.db)
    order_id = service.create_order(user_id, "AAPL", "market", 1, 10.0)
    assert [o.id for o in service.get_user_orders(user_id)] == [order_id]


def test_grove_cannot_create_canopy_orders(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    with timber_core.app_context("grove"), pytest.raises(IsolationError) as info:
        kernel.services["orders"].create_order(user_id, "AAPL", "market", 1, 10.0)
    assert "app 'grove' may not use model 'Order' (table 'orders'): it is private to app 'canopy'" in str(info.value)


def test_no_other_app_may_read_canopy_orders(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user()
    kernel.services["orders"].create_order(user_id, "AAPL", "market", 1, 10.0)
    assert_refused_across_apps(kernel.services["orders"].get_user_orders, user_id, owner="canopy")
