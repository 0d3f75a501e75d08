"""Canopy's and Grove's web apps (timber_core.web.create_app) on one kernel and one database.

Both apps are driven in-process through httpx's ASGITransport; the kernel is built once with
no default app (each request runs in its app's context, set by the middleware), on a SQLite
file and on a scratch PostgreSQL database. Tests are plain functions running their requests
with :func:`run` (asyncio.run), so no async pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

import timber_core
from timber_core.web import create_app

T = TypeVar("T")

KEY_A = "a" * 40
KEY_B = "b" * 40
PASSWORD = "correct horse battery"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Apps:
    """The two apps (and the platform's server) of one test, each reachable through ``client(app)``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.start()

    def start(self) -> None:
        """Build the kernel (reading the environment) and both apps, as a server process starting."""
        self.kernel = timber_core.initialize_timber(app_name=None, database_url=self.url, create_tables=True)
        self.asgi = {name: create_app(name, initialize=False) for name in ("canopy", "grove", "platform")}

    def restart(self) -> None:
        """Stop and start again on the same database, as after a configuration change."""
        timber_core.shutdown()
        self.start()

    def client(self, app: str, token: str | None = None, raise_errors: bool = True) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=self.asgi[app], raise_app_exceptions=raise_errors)
        return httpx.AsyncClient(transport=transport, base_url=f"http://{app}.test", headers=headers)

    async def register(self, email: str, username: str, app: str = "canopy") -> httpx.Response:
        async with self.client(app) as c:
            return await c.post("/auth/register", json={"email": email, "username": username, "password": PASSWORD})

    async def register_with_password(self, email: str, username: str, password: str) -> httpx.Response:
        async with self.client("canopy") as c:
            return await c.post("/auth/register", json={"email": email, "username": username, "password": password})

    async def login(self, email: str, app: str = "canopy", password: str = PASSWORD) -> httpx.Response:
        async with self.client(app) as c:
            return await c.post("/auth/token", data={"username": email, "password": password})

    async def token_for(self, email: str, username: str) -> str:
        assert (await self.register(email, username)).status_code == 201
        return str((await self.login(email)).json()["access_token"])


@pytest.fixture(params=["sqlite", "postgresql"])
def apps(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Apps]:
    """Canopy's and Grove's web apps on one database, SQLite then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/timber.db"
    else:
        request.getfixturevalue("monkeypatch").setenv("TIMBER_SECRET_KEYS", KEY_A)
        url = request.getfixturevalue("scratch_postgres")
    yield Apps(url)
    timber_core.shutdown()


@pytest.fixture
def sqlite_apps(tmp_path: Any) -> Iterator[Apps]:
    """The two apps on a SQLite file only (behaviour that does not depend on the database)."""
    yield Apps(f"sqlite:///{tmp_path}/timber.db")
    timber_core.shutdown()
