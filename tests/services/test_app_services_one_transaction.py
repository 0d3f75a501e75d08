"""App services do one logical operation in one transaction (SQLite and PostgreSQL).

The last step of each operation is made to fail for real (a trigger raising on INSERT), then
raw SQL checks that nothing of the operation remains; a successful call sends one COMMIT.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from timber_core import app_context

from ._failures import count_rows, counting_commits, database_error, fail_inserts_into

#: What a failing trigger looks like from SQLAlchemy, per database.
TRIGGER_ERROR = {"sqlite": ("IntegrityError", "boom"), "postgresql": ("ProgrammingError", "boom")}


def _column(kernel: Any, sql: str, row_id: str) -> Any:
    with kernel.db.admin_connection() as conn:
        return conn.execute(text(sql), {"id": row_id}).scalar_one()


def test_start_research_failing_on_its_event_leaves_no_session_research_or_event(kernel: Any, alice: str) -> None:
    fail_inserts_into(kernel, "events")
    with app_context("grove"), pytest.raises(Exception) as err:
        kernel.services["reports"].start_research(alice, "AAPL", "Apple beat estimates")
    assert database_error(err.value) == TRIGGER_ERROR[kernel.db.dialect]
    assert [count_rows(kernel, t, alice) for t in ("sessions", "research_sessions", "events")] == [0, 0, 0]


def test_start_research_commits_its_session_research_and_event_in_one_commit(kernel: Any, alice: str) -> None:
    with app_context("grove"), counting_commits(kernel) as commits:
        kernel.services["reports"].start_research(alice, "AAPL")
    assert commits == [1]
    assert [count_rows(kernel, t, alice) for t in ("sessions", "research_sessions", "events")] == [1, 1, 1]


def test_start_trading_session_failing_on_its_event_leaves_no_session_trading_row_or_event(
        kernel: Any, alice: str) -> None:
    fail_inserts_into(kernel, "events")
    with pytest.raises(Exception) as err:
        kernel.services["orders"].start_trading_session(alice, "momentum")
    assert database_error(err.value) == TRIGGER_ERROR[kernel.db.dialect]
    assert [count_rows(kernel, t, alice) for t in ("sessions", "trading_sessions", "events")] == [0, 0, 0]


def test_start_trading_session_commits_its_session_trading_row_and_event_in_one_commit(
        kernel: Any, alice: str) -> None:
    with counting_commits(kernel) as commits:
        kernel.services["orders"].start_trading_session(alice, "momentum", paper=True)
    assert commits == [1]
    assert [count_rows(kernel, t, alice) for t in ("sessions", "trading_sessions", "events")] == [1, 1, 1]


def test_publish_report_failing_on_its_notification_leaves_the_report_unpublished(kernel: Any, alice: str) -> None:
    with app_context("grove"):
        report_id = kernel.services["reports"].create_report(alice, None, "Q3", "Strong quarter")
    fail_inserts_into(kernel, "notifications")
    with app_context("grove"), pytest.raises(Exception) as err:
        kernel.services["reports"].publish_report(report_id, alice)
    assert database_error(err.value) == TRIGGER_ERROR[kernel.db.dialect]
    assert _column(kernel, "SELECT is_published FROM research_reports WHERE id = :id", report_id) in (False, 0)
    assert count_rows(kernel, "notifications", alice) == 0


def test_publish_report_commits_the_report_and_its_notification_in_one_commit(kernel: Any, alice: str) -> None:
    with app_context("grove"):
        report_id = kernel.services["reports"].create_report(alice, None, "Q3", "Strong quarter")
        with counting_commits(kernel) as commits:
            assert kernel.services["reports"].publish_report(report_id, alice) is True
    assert commits == [1]
    assert _column(kernel, "SELECT is_published FROM research_reports WHERE id = :id", report_id) in (True, 1)
    assert count_rows(kernel, "notifications", alice) == 1


def test_fill_order_failing_on_its_notification_leaves_the_order_pending(kernel: Any, alice: str) -> None:
    order_id = kernel.services["orders"].create_order(alice, "AAPL", "market", 1, 10.0)
    fail_inserts_into(kernel, "notifications")
    with pytest.raises(Exception) as err:
        kernel.services["orders"].fill_order(order_id, alice)
    assert database_error(err.value) == TRIGGER_ERROR[kernel.db.dialect]
    assert _column(kernel, "SELECT status FROM orders WHERE id = :id", order_id) == "pending"
    assert count_rows(kernel, "notifications", alice) == 0


def test_fill_order_commits_the_order_and_its_notification_in_one_commit(kernel: Any, alice: str) -> None:
    order_id = kernel.services["orders"].create_order(alice, "AAPL", "market", 1, 10.0)
    with counting_commits(kernel) as commits:
        assert kernel.services["orders"].fill_order(order_id, alice) is True
    assert commits == [1]
    assert _column(kernel, "SELECT status FROM orders WHERE id = :id", order_id) == "filled"
    assert count_rows(kernel, "notifications", alice) == 1
