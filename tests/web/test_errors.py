"""Errors escaping a handler: one JSON shape, kernel messages kept, no traceback to the client."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from timber_core.errors import NotFoundError

from .conftest import Apps, run


def _get(apps: Apps, path: str, headers: dict[str, str] | None = None) -> Any:
    async def go() -> Any:
        async with apps.client("canopy", raise_errors=False) as c:
            return await c.get(path, headers=headers or {})
    return run(go())


def test_an_unexpected_error_is_500_with_a_generic_message_and_is_logged(
        sqlite_apps: Apps, caplog: pytest.LogCaptureFixture) -> None:
    @sqlite_apps.asgi["canopy"].get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail /srv/app/db.py line 12")

    with caplog.at_level(logging.ERROR, logger="timber.web"):
        response = _get(sqlite_apps, "/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"type": "InternalServerError",
                                         "message": "internal server error; the server's log has the details"}}
    assert "secret detail" not in response.text
    assert [r.exc_info[1].args[0] for r in caplog.records if r.exc_info] == ["secret detail /srv/app/db.py line 12"]


def test_a_kernel_not_found_error_is_404_with_its_message(sqlite_apps: Apps) -> None:
    @sqlite_apps.asgi["canopy"].get("/missing")
    def missing() -> None:
        raise NotFoundError("no order 'o1' for this user")

    response = _get(sqlite_apps, "/missing")
    assert response.status_code == 404
    assert response.json() == {"error": {"type": "NotFoundError", "message": "no order 'o1' for this user"}}


def test_an_authorization_header_of_another_scheme_is_401(sqlite_apps: Apps) -> None:
    response = _get(sqlite_apps, "/sessions", {"Authorization": "Basic YW5uOnB3"})
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "AuthenticationError",
                                         "message": "Authorization header must be 'Bearer <access token>'"}}
