"""Each app sees only its own sessions through the kernel's endpoints; another app's type is 403."""

from __future__ import annotations

from typing import Any

from .conftest import Apps, run


async def _create(apps: Apps, app: str, token: str, session_type: str, metadata: Any = None) -> Any:
    async with apps.client(app, token) as c:
        return await c.post("/sessions", json={"session_type": session_type, "metadata": metadata or {}})


async def _list(apps: Apps, app: str, token: str) -> Any:
    async with apps.client(app, token) as c:
        return await c.get("/sessions")


def test_each_app_lists_only_its_own_sessions(apps: Apps) -> None:
    token = run(apps.token_for("ann@example.com", "ann"))
    made = run(_create(apps, "canopy", token, "trading", {"symbol": "AAPL"}))
    assert made.status_code == 201 and made.json()["app_name"] == "canopy"
    assert run(_create(apps, "grove", token, "research")).status_code == 201
    canopy = run(_list(apps, "canopy", token)).json()["sessions"]
    grove = run(_list(apps, "grove", token)).json()["sessions"]
    # The session service stamps the creating app into the metadata.
    assert [(s["app_name"], s["session_type"], s["metadata"]) for s in canopy] == [("canopy", "trading", {"symbol": "AAPL", "app": "canopy", "created_by_app": "canopy"})]
    assert [(s["app_name"], s["session_type"]) for s in grove] == [("grove", "research")]


def test_a_user_sees_none_of_another_users_sessions(apps: Apps) -> None:
    ann = run(apps.token_for("ann@example.com", "ann"))
    bob = run(apps.token_for("bob@example.com", "bob"))
    run(_create(apps, "canopy", ann, "trading"))
    assert run(_list(apps, "canopy", bob)).json() == {"sessions": []}


def test_creating_another_apps_session_type_is_403(apps: Apps) -> None:
    token = run(apps.token_for("ann@example.com", "ann"))
    response = run(_create(apps, "canopy", token, "research"))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "IsolationError"
    assert "'research'" in error["message"] and "grove" in error["message"]


def test_notifications_list_the_users_own(apps: Apps) -> None:
    from timber_core import app_context
    from timber_core.services.persistence import notification_service, user_service

    token = run(apps.token_for("ann@example.com", "ann"))

    async def me() -> Any:
        async with apps.client("grove", token) as c:
            return await c.get("/notifications")
    assert run(me()).json() == {"notifications": []}
    with app_context("grove"):
        uid = user_service.get_user_by_email("ann@example.com").id
        notification_service.create_notification(uid, "report_ready", "Your report is ready")
    rows = run(me()).json()["notifications"]
    assert [(n["app_name"], n["notification_type"], n["title"], n["is_read"]) for n in rows] == [
        ("grove", "report_ready", "Your report is ready", False)]


def test_an_unknown_path_is_404_in_the_error_shape(apps: Apps) -> None:
    async def go() -> Any:
        async with apps.client("canopy") as c:
            return await c.get("/no-such-thing")
    response = run(go())
    assert response.status_code == 404
    assert response.json() == {"error": {"type": "NotFoundError", "message": "Not Found"}}


def test_health_is_200_on_a_migrated_database(apps: Apps) -> None:
    async def go() -> Any:
        async with apps.client("grove") as c:
            return await c.get("/health")
    response = run(go())
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "app", "checks")} == {
        "status": "ok", "app": "grove", "checks": {"database": "ok", "vectors": "ok"}}
    # In-process cache: on with SQLite, off on PostgreSQL without REDIS_URL (docs/services.md).
    assert (body["cache"]["backend"], body["cache"]["status"]) == (
        ("memory", "ok") if apps.kernel.db.dialect == "sqlite" else ("memory", "off"))


def test_health_is_503_naming_the_pending_migrations(tmp_path: Any) -> None:
    import timber_core
    from timber_core.web import create_app
    import httpx

    timber_core.initialize_timber(app_name=None, database_url=f"sqlite:///{tmp_path}/empty.db", create_tables=False)
    try:
        async def go() -> Any:
            transport = httpx.ASGITransport(app=create_app("canopy", initialize=False))
            async with httpx.AsyncClient(transport=transport, base_url="http://canopy.test") as c:
                return await c.get("/health")
        response = run(go())
    finally:
        timber_core.shutdown()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["vectors"] == "ok"
    assert body["checks"]["database"] == (
        "not migrated: timber (pending timber_0001, timber_0002, timber_0003, timber_0004, timber_0005); "
        "canopy (pending canopy_0001, canopy_0002); run `timber migrate`")
