"""Canopy's and Grove's own routes (their plugins' ``timber_web_app()``) and the platform's, in-process.

Each handler runs in its app's context as the token's user, with no isolation code of its own:
these tests check that a user sees only their own rows through the apps' routes, that the
platform's endpoints see that user's rows of both apps, and the error shapes of bad input.
"""

from __future__ import annotations

from typing import Any

from .conftest import Apps, run


async def _call(apps: Apps, app: str, token: str | None, method: str, path: str, **kw: Any) -> Any:
    async with apps.client(app, token) as c:
        return await c.request(method, path, **kw)


def call(apps: Apps, app: str, token: str | None, method: str, path: str, **kw: Any) -> Any:
    return run(_call(apps, app, token, method, path, **kw))


def _order(apps: Apps, token: str, **extra: Any) -> Any:
    body = {"symbol": "AAPL", "order_type": "limit", "quantity": 10, "price": "189.50", **extra}
    return call(apps, "canopy", token, "POST", "/orders", json=body)


def test_canopy_orders_are_created_in_a_session_listed_and_filled_with_a_notification(apps: Apps) -> None:
    token = run(apps.token_for("ann@example.com", "ann"))
    session = call(apps, "canopy", token, "POST", "/trading-sessions", json={"strategy": "momentum"})
    assert session.status_code == 201, session.text
    order = _order(apps, token, session_id=session.json()["id"], notes="earnings beat, buy the dip")
    assert order.status_code == 201, order.text
    filled = call(apps, "canopy", token, "POST", f"/orders/{order.json()['id']}/fill")
    assert filled.json() == {"id": order.json()["id"], "status": "filled"}
    orders = call(apps, "canopy", token, "GET", "/orders").json()["orders"]
    assert [(o["symbol"], o["price"], o["status"], o["notes"], o["session_id"]) for o in orders] == [
        ("AAPL", "189.50", "filled", "earnings beat, buy the dip", session.json()["id"])]
    notes = call(apps, "canopy", token, "GET", "/notifications").json()["notifications"]
    assert [(n["app_name"], n["notification_type"]) for n in notes] == [("canopy", "order_filled")]


def test_canopy_lists_and_closes_only_the_users_own_trading_sessions(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    bob = run(apps.token_for("bob@example.com", "bob"))
    made = call(apps, "canopy", ann, "POST", "/trading-sessions", json={"strategy": "carry", "paper": True}).json()
    assert call(apps, "canopy", bob, "GET", "/trading-sessions").json() == {"trading_sessions": []}
    refused = call(apps, "canopy", bob, "POST", f"/trading-sessions/{made['id']}/close")
    assert (refused.status_code, refused.json()["error"]["type"]) == (404, "NotFoundError")
    closed = call(apps, "canopy", ann, "POST", f"/trading-sessions/{made['id']}/close")
    assert closed.json() == {"id": made["id"], "status": "ended"}
    listed = call(apps, "canopy", ann, "GET", "/trading-sessions").json()["trading_sessions"]
    assert [(s["session_type"], s["strategy"], s["status"]) for s in listed] == [("paper_trading", "carry", "ended")]


def test_another_users_order_cannot_be_filled_or_seen(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    bob = run(apps.token_for("bob@example.com", "bob"))
    order_id = _order(apps, ann).json()["id"]
    refused = call(apps, "canopy", bob, "POST", f"/orders/{order_id}/fill")
    assert refused.json() == {"error": {"type": "NotFoundError", "message": f"no pending order {order_id!r} of yours"}}
    assert call(apps, "canopy", bob, "GET", "/orders").json() == {"orders": []}


def test_an_order_in_another_users_trading_session_is_404(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    bob = run(apps.token_for("bob@example.com", "bob"))
    anns = call(apps, "canopy", ann, "POST", "/trading-sessions", json={"strategy": "carry"}).json()["id"]
    refused = _order(apps, bob, session_id=anns)
    assert (refused.status_code, refused.json()["error"]["type"]) == (404, "NotFoundError")


def test_a_malformed_order_is_422_naming_the_field(apps: Apps) -> None:
    token = run(apps.token_for("ann@example.com", "ann"))
    bad = _order(apps, token, quantity=0)
    assert bad.status_code == 422
    assert bad.json()["error"]["type"] == "ValidationError"
    assert bad.json()["error"]["message"].startswith("body.quantity: ")


def test_the_apps_routes_need_a_user(apps: Apps) -> None:
    answer = call(apps, "canopy", None, "GET", "/orders")
    assert (answer.status_code, answer.json()["error"]["type"]) == (401, "AuthenticationError")


def test_grove_searches_only_the_users_own_notes(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    bob = run(apps.token_for("bob@example.com", "bob"))
    mine = call(apps, "grove", ann, "POST", "/research", json={"symbol": "NVDA", "notes": "GPU demand from data centres"})
    assert mine.status_code == 201, mine.text
    call(apps, "grove", bob, "POST", "/research", json={"symbol": "NVDA", "notes": "GPU demand from data centres"})
    hits = call(apps, "grove", ann, "GET", "/research/search", params={"q": "graphics chips for AI"}).json()["hits"]
    assert [(h["id"], h["notes"]) for h in hits] == [(mine.json()["id"], "GPU demand from data centres")]


def test_grove_notes_can_be_replaced_and_are_searched_anew(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    made = call(apps, "grove", ann, "POST", "/research", json={"symbol": "XOM"}).json()
    changed = call(apps, "grove", ann, "PUT", f"/research/{made['id']}/notes", json={"notes": "oil prices rising"})
    assert changed.json() == {"id": made["id"], "notes": "oil prices rising"}
    hits = call(apps, "grove", ann, "GET", "/research/search", params={"q": "crude oil"}).json()["hits"]
    assert [h["notes"] for h in hits] == ["oil prices rising"]


def test_grove_reports_are_started_published_and_notified(apps: Apps) -> None:
    token = run(apps.token_for("ann@example.com", "ann"))
    research = call(apps, "grove", token, "POST", "/research", json={"symbol": "MSFT"}).json()["id"]
    report = call(apps, "grove", token, "POST", "/reports",
                  json={"title": "Cloud growth", "content": "Azure up", "session_id": research})
    assert report.status_code == 201, report.text
    published = call(apps, "grove", token, "POST", f"/reports/{report.json()['id']}/publish")
    assert published.json() == {"id": report.json()["id"], "is_published": True}
    reports = call(apps, "grove", token, "GET", "/reports", params={"published_only": "true"}).json()["reports"]
    assert [(r["title"], r["is_published"], r["session_id"]) for r in reports] == [("Cloud growth", True, research)]
    notes = call(apps, "grove", token, "GET", "/notifications").json()["notifications"]
    assert [(n["app_name"], n["notification_type"]) for n in notes] == [("grove", "research_complete")]


def test_a_notification_is_marked_read_by_its_user_only(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    bob = run(apps.token_for("bob@example.com", "bob"))
    order_id = _order(apps, ann).json()["id"]
    call(apps, "canopy", ann, "POST", f"/orders/{order_id}/fill")
    notification = call(apps, "canopy", ann, "GET", "/notifications").json()["notifications"][0]["id"]
    assert call(apps, "grove", bob, "POST", f"/notifications/{notification}/read").status_code == 404
    assert call(apps, "grove", ann, "POST", f"/notifications/{notification}/read").json() == {
        "id": notification, "is_read": True}
    assert call(apps, "canopy", ann, "GET", "/notifications", params={"unread_only": "true"}).json() == {
        "notifications": []}


def test_the_platform_searches_the_users_rows_of_both_apps_only(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    bob = run(apps.token_for("bob@example.com", "bob"))
    _order(apps, ann, notes="semiconductor supply shortage")
    call(apps, "grove", ann, "POST", "/research", json={"symbol": "TSM", "notes": "chip foundry capacity"})
    call(apps, "grove", bob, "POST", "/research", json={"symbol": "TSM", "notes": "chip foundry capacity"})
    hits = call(apps, "platform", ann, "GET", "/platform/search", params={"q": "chips"}).json()["hits"]
    assert sorted((h["app"], h["content"]) for h in hits) == [
        ("canopy", "semiconductor supply shortage"), ("grove", "chip foundry capacity")]


def test_the_platform_summarises_the_users_activity_across_apps(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    call(apps, "canopy", ann, "POST", "/trading-sessions", json={"strategy": "carry"})
    call(apps, "grove", ann, "POST", "/research", json={"symbol": "MSFT"})
    summary = call(apps, "platform", ann, "GET", "/platform/activity").json()["activity"]
    assert summary == {"canopy": {"trading": 1, "paper_trading": 0, "events": 1},
                       "grove": {"research": 1, "analysis": 0, "events": 1}, "total": 2}


def test_the_platform_server_has_no_app_sessions_endpoint(apps: Apps) -> None:
    token = run(apps.token_for("ann@example.com", "ann"))
    answer = call(apps, "platform", token, "GET", "/sessions")
    assert (answer.status_code, answer.json()["error"]["type"]) == (404, "NotFoundError")
