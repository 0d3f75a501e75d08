"""``timber_web_app()``: what ``create_app`` does with each shape of answer (docs/plugins.md).

The answers come from a plugin registered on the kernel's plugin manager beside the apps (pluggy
lets such a plugin take part in every app's call; ``tryfirst`` makes its answer Canopy's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from timber_core import app_context, hookimpl
from timber_core.context import current_app, current_user
from timber_core.errors import PluginError
from timber_core.services.persistence import user_service
from timber_core.web import create_app

from .conftest import Apps, run


async def whoami(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app answering the context it runs in."""
    body = json.dumps({"path": scope["path"], "app": current_app(), "user": current_user()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class Answer:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl(tryfirst=True)
    def timber_web_app(self) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def answering(sqlite_apps: Apps) -> Iterator[Any]:
    """Register an :class:`Answer` plugin on the kernel's plugin manager; unregister it afterwards."""
    pm = sqlite_apps.kernel.plugin_manager
    registered: list[Answer] = []

    def register(answer: Any) -> None:
        plugin = Answer(answer)
        pm.register(plugin)
        registered.append(plugin)

    yield register
    for plugin in registered:
        pm.unregister(plugin)


def test_an_asgi_app_is_mounted_behind_the_kernels_endpoints_in_the_apps_and_users_context(
        sqlite_apps: Apps, answering: Any) -> None:
    token = run(sqlite_apps.token_for("ann@example.com", "ann"))
    answering(whoami)
    sqlite_apps.asgi["canopy"] = create_app("canopy", initialize=False)

    async def calls() -> tuple[Any, Any]:
        async with sqlite_apps.client("canopy", token) as c:
            return (await c.get("/whoami")).json(), (await c.get("/sessions")).json()

    mine, sessions = run(calls())
    with app_context("canopy"):
        user = user_service.get_user_by_email("ann@example.com").id
    assert mine == {"path": "/whoami", "app": "canopy", "user": user}
    assert sessions == {"sessions": []}  # the kernel's endpoint, not the mounted app


def test_an_answer_that_is_no_router_and_no_asgi_app_is_refused(answering: Any) -> None:
    answering(42)
    with pytest.raises(PluginError) as refused:
        create_app("canopy", initialize=False)
    assert str(refused.value) == ("app 'canopy': timber_web_app() returned int; return a fastapi.APIRouter, an ASGI "
                                  "app or None")


def test_a_hook_that_raises_stops_the_server_from_being_built(answering: Any) -> None:
    answering(RuntimeError("no routes today"))
    with pytest.raises(PluginError) as refused:
        create_app("canopy", initialize=False)
    assert str(refused.value) == ("app 'canopy' (timber-canopy): timber_web_app() raised RuntimeError: no routes "
                                  "today; fix the plugin's web routes")
