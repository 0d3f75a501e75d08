"""Kernels for the GDPR tests: Canopy, Grove and the third-party fixture app ``portfolio``, on each database.

Alice and Bob each get rows in every app (Canopy's trading session and order, Grove's research
session and report, Portfolio's portfolio and holding), the kernel's sessions, events and
notifications, a password, and vector points (the offline embedding model, drained inline).
Every text of Alice's holds ``ALICE`` and every text of Bob's ``BOB``, so a scan for those
finds the user's data wherever it went.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

import timber_core
from timber_core import app_context, platform_context
from timber_core.config import TimberConfig
from tests.vectors.conftest import model_env, offline_model_dir  # noqa: F401  (fixtures)
from tests._databases import database_url

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"
PORTFOLIO = FIXTURES / "portfolio"


@dataclasses.dataclass
class Person:
    """A seeded user: id, and the texts that identify their data."""

    id: str
    email: str
    username: str
    marker: str
    order_id: str = ""

    @property
    def needles(self) -> tuple[str, ...]:
        return (self.id, self.email, self.username, self.marker)


@pytest.fixture
def gdpr_env(model_env: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """ENABLE_GDPR=true, the portfolio fixture app installed, embeddings from the offline model."""
    monkeypatch.setenv("ENABLE_GDPR", "true")
    monkeypatch.syspath_prepend(str(PORTFOLIO))
    importlib.invalidate_caches()
    TimberConfig.clear_cache()


def start(url: str) -> Any:
    """Initialize Timber with no default app on ``url``, every head migrated."""
    TimberConfig.clear_cache()
    return timber_core.initialize_timber(None, database_url=url, create_tables=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind (a scratch PostgreSQL database is dropped after the test)."""
    return database_url(request.param, request, tmp_path)


@pytest.fixture
def kernel(gdpr_env: None, database: str) -> Iterator[Any]:
    k = start(database)
    yield k
    timber_core.shutdown()


def seed(kernel: Any, name: str) -> Person:
    """Give user ``name`` rows in every app, the kernel's tables, a password and vector points."""
    from timber_core import auth
    from timber_core.services.persistence import notification_service, session_service, tracker_service, user_service

    marker = name.upper()
    with platform_context():
        uid = user_service.create_user(f"{name}@example.com", f"{name}_user")
        auth.set_password(kernel, uid, f"{marker} secret password")
    person = Person(uid, f"{name}@example.com", f"{name}_user", marker)
    with app_context("canopy"):
        orders = kernel.services["orders"]
        session = orders.start_trading_session(uid, f"{marker} momentum")
        person.order_id = orders.create_order(uid, "AAPL", "market", 10, 150, session_id=session,
                                              notes=f"{marker} buys apples before earnings")
        session_service.create_session(uid, "trading", {"note": f"{marker} desk"})
        notification_service.create_notification(uid, "welcome", f"Welcome {marker}", f"{marker} joined")
        tracker_service.track_event(uid, "login", {"who": marker})
    with app_context("grove"):
        kernel.services["reports"].start_research(uid, "MSFT", f"{marker} studies cloud margins")
    with app_context("portfolio"):
        portfolio, holding = kernel.models["Portfolio"], kernel.models["Holding"]
        with kernel.db.session_scope() as s:
            p = portfolio(user_id=uid, name=f"{marker} pension")
            s.add(p)
            s.flush()
            s.add(holding(portfolio_id=p.id, symbol=f"{marker}H"))
    kernel.vectors.flush()
    return person


@pytest.fixture
def alice_and_bob(kernel: Any) -> tuple[Person, Person]:
    return seed(kernel, "alice"), seed(kernel, "bob")


def all_rows(kernel: Any) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table in the database, each value as text, sorted: raw SQL, no app context."""
    with kernel.db.admin_connection() as conn:
        tables = sorted(inspect(conn).get_table_names())
        return {t: sorted(tuple("" if v is None else str(v) for v in row)
                          for row in conn.execute(text(f'SELECT * FROM "{t}"')))
                for t in tables}


def all_points(kernel: Any) -> dict[str, list[tuple[str, str]]]:
    """Every point of every vector collection as (id, payload as text), sorted."""
    store = kernel.vectors.store
    return {name: sorted((pid, repr(sorted(p.items()))) for pid, p in store.scan(name)) for name in store.collections()}


def found(kernel: Any, person: Person) -> list[str]:
    """Where any text of ``person`` is still held: ``table`` or ``vectors:collection``, with the needle."""
    hits = [f"{t}: {n}" for t, rows in all_rows(kernel).items() for row in rows for v in row for n in person.needles
            if n in v]
    hits += [f"vectors:{c}: {n}" for c, points in all_points(kernel).items() for pid, p in points
             for n in person.needles if n in p or n in pid]
    return sorted(set(hits))


def of(person: Person, rows: dict[str, list[tuple[str, ...]]]) -> dict[str, list[tuple[str, ...]]]:
    """The rows of ``rows`` naming any text of ``person``."""
    return {t: [r for r in rs if any(n in v for v in r for n in person.needles)] for t, rs in rows.items()}
