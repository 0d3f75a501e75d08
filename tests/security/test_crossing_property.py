"""Property: whatever mix of ORM and raw-SQL statements two apps run for two users, no row of
another app ever comes back, appears, changes or disappears (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text, update

from timber_core import app_context, platform_context, user_context
from timber_core.services.persistence import user_service

APPS = ("canopy", "grove")
TYPES = {"trading": "canopy", "paper_trading": "canopy", "research": "grove", "analysis": "grove"}
#: table -> (model, owning app or None for the shared typed table, the column an update changes)
TABLES = {
    "sessions": ("Session", None, "status"),
    "trading_sessions": ("TradingSession", "canopy", "strategy"),
    "research_reports": ("ResearchReport", "grove", "title"),
}
STAMP = "'2026-01-01 00:00:00'"

ops = st.lists(
    st.tuples(
        st.sampled_from(APPS),                       # acting app
        st.sampled_from((0, 1)),                     # acting user
        st.sampled_from(("insert", "select", "update", "delete")),
        st.sampled_from(tuple(TABLES)),
        st.sampled_from(("orm", "raw")),
        st.sampled_from(tuple(TYPES)),               # the type an insert or update writes into sessions
        st.integers(min_value=0, max_value=30),      # which existing row an update or delete aims at
    ),
    min_size=1,
    max_size=8,
)


def snapshot(kernel: Any) -> dict[tuple[str, str], tuple[str, str, Any]]:
    """Every row of the three tables, read in the platform context: (table, id) -> (owner, user, value)."""
    rows = {}
    with platform_context(), kernel.db.admin_connection() as conn:
        for table, (_, owner, column) in TABLES.items():
            extra = ", session_type" if table == "sessions" else ""
            for r in conn.execute(text(f"SELECT id, user_id, {column}{extra} FROM {table}")):
                rows[(table, r[0])] = (owner or TYPES[r[3]], r[1], r[2])
    return rows


def act(kernel: Any, users: list[str], step: tuple[Any, ...], ids: list[tuple[str, str]], n: int) -> list[Any]:
    """Run one operation in its app's and user's context; return the rows a select got (else [])."""
    app, who, op, table, via, stype, pick = step
    model_name, owner, column = TABLES[table]
    Model = kernel.models[model_name]
    user = users[who]
    target = ids[pick % len(ids)][1] if ids else "none"
    new_id = f"{app}-{op}-{n}"
    with app_context(app), user_context(user):
        if via == "orm":
            with kernel.db.session_scope() as s:
                if op == "insert":
                    values: dict[str, Any] = {"id": new_id, "user_id": user}
                    if table == "sessions":
                        values.update(session_type=stype, app_name=TYPES[stype])
                    elif table == "research_reports":
                        values["title"] = "t"
                    s.add(Model(**values))
                    s.flush()
                elif op == "select":
                    return [("orm", table, r.id) for r in s.scalars(select(Model)).all()]
                elif op == "update":
                    values = {"session_type": stype} if table == "sessions" and n % 2 else {
                        getattr(Model, column).key: f"changed-{n}"}
                    s.execute(update(Model).where(Model.id == target).values(**values))
                else:
                    s.execute(delete(Model).where(Model.id == target))
            return []
        with kernel.db.connection() as conn:
            if op == "insert":
                if table == "sessions":
                    sql = (f"INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                           f"VALUES (:i, :u, :t, 'x', 'active', {STAMP}, {STAMP})")
                elif table == "trading_sessions":
                    sql = (f"INSERT INTO trading_sessions (id, user_id, session_type, created_at, updated_at) "
                           f"VALUES (:i, :u, 'trading', {STAMP}, {STAMP})")
                else:
                    sql = (f"INSERT INTO research_reports (id, user_id, title, is_published, created_at, updated_at) "
                           f"VALUES (:i, :u, 't', false, {STAMP}, {STAMP})")
                conn.execute(text(sql), {"i": new_id, "u": user, "t": stype})
            elif op == "select":
                return [("raw", table, r[0]) for r in conn.execute(text(f"SELECT id FROM {table}"))]
            elif op == "update":
                assignment = "session_type = :v" if table == "sessions" and n % 2 else f"{column} = :v"
                value = stype if table == "sessions" and n % 2 else f"changed-{n}"
                conn.execute(text(f"UPDATE {table} SET {assignment} WHERE id = :i"), {"v": value, "i": target})
            else:
                conn.execute(text(f"DELETE FROM {table} WHERE id = :i"), {"i": target})
    return []


@pytest.fixture
def crossing_users(wall_kernel: Any) -> list[str]:
    return [user_service.create_user(f"u{i}@example.com", f"u{i}") for i in range(2)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
def test_no_operation_of_one_app_reaches_another_apps_rows(
    wall_kernel: Any, crossing_users: list[str], steps: list[tuple[Any, ...]]
) -> None:
    kernel, users = wall_kernel, crossing_users
    with platform_context(), kernel.db.admin_connection() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    for n, (app, stype) in enumerate([("canopy", "trading"), ("grove", "research")] * 2):
        act(kernel, users, (app, n // 2, "insert", "sessions", "raw", stype, 0), [], n + 100)
        act(kernel, users, (app, n // 2, "insert", "trading_sessions" if app == "canopy" else "research_reports",
                            "raw", stype, 0), [], n + 100)
    before = snapshot(kernel)
    assert len(before) == 8  # the seed went in: every app could write its own rows
    for n, step in enumerate(steps):
        app = step[0]
        try:
            seen = act(kernel, users, step, sorted(before), n)
        except Exception:  # a refusal: fine, as long as nothing crossed
            seen = []
        after = snapshot(kernel)
        for _, table, row_id in seen:
            assert before.get((table, row_id), after.get((table, row_id)))[0] == app, (step, row_id)
        for key, row in before.items():
            if row[0] != app:
                assert after.get(key) == row, (step, key)
        for key, row in after.items():
            if key not in before:
                assert row[0] == app, (step, key)
        before = after
