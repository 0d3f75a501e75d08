"""Canopy, Grove and the platform as real servers (``timber serve``, two workers per app), driven over HTTP.

One login across apps, each app's own routes (their plugins' ``timber_web_app()``), each app and
user seeing only their own rows, the platform's endpoints seeing the user's rows of both apps,
the error shapes, and 200 concurrent requests of 20 users across both apps. The servers start
once per database (module scope: starting five processes with an embedding model is the slow
part); every test makes its own users. On SQLite all servers share one TIMBER_HOME.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import postgres_url_or_skip
from timber_core.testing import scratch_database

from .conftest import KEY_A, PASSWORD
from .test_serve import SRC, Server

USERS = 20
REQUESTS = 200


class Cluster:
    """The three servers of one database; ``logs()`` is everything they printed."""

    def __init__(self, servers: dict[str, Server]) -> None:
        self.servers = servers
        self.url = {name: s.url for name, s in servers.items()}

    def logs(self) -> str:
        return "\n".join(s.log.read_text() for s in self.servers.values())

    def login(self, name: str) -> dict[str, str]:
        """Register ``name`` through Canopy, log in once through Grove; return the bearer header."""
        return asyncio.run(self.logins([name]))[name]

    async def logins(self, names: list[str]) -> dict[str, dict[str, str]]:
        """:meth:`login` for each of ``names``, concurrently (password hashing is the slow part)."""
        async with httpx.AsyncClient(timeout=60) as client:
            async def one(name: str) -> dict[str, str]:
                made = await client.post(f"{self.url['canopy']}/auth/register", json={
                    "email": f"{name}@example.com", "username": name, "password": PASSWORD})
                assert made.status_code == 201, made.text
                token = await client.post(f"{self.url['grove']}/auth/token",
                                          data={"username": f"{name}@example.com", "password": PASSWORD})
                assert token.status_code == 200, token.text
                return {"Authorization": f"Bearer {token.json()['access_token']}"}

            headers = await asyncio.gather(*(one(n) for n in names))
        return dict(zip(names, headers))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            _timber_offline_model: str | None) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "TIMBER_HOME": str(tmp / "home"), "HF_HUB_OFFLINE": "1"}
    for name in ("DATABASE_URL", "TIMBER_APPS", "TIMBER_DISABLE_APPS", "TIMBER_SECRET_KEYS"):
        env.pop(name, None)
    if _timber_offline_model is not None:
        env["TIMBER_EMBEDDING_MODEL_PATH"] = _timber_offline_model
    with _database(request.param, env):
        started = {"canopy": Server("canopy", env, tmp / "canopy.log", workers=2),
                   "grove": Server("grove", env, tmp / "grove.log", workers=2),
                   "platform": Server("platform", env, tmp / "platform.log")}
        try:
            for server in started.values():
                server.wait_healthy(timeout=120)
            yield Cluster(started)
        finally:
            for server in started.values():
                server.stop()


@contextlib.contextmanager
def _database(kind: str, env: dict[str, str]) -> Iterator[None]:
    """SQLite: nothing to do (the servers make it in TIMBER_HOME). PostgreSQL: a migrated scratch database."""
    if kind == "sqlite":
        yield
        return
    with scratch_database(postgres_url_or_skip()) as url:
        env.update(DATABASE_URL=url, TIMBER_SECRET_KEYS=KEY_A)
        migrate = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; "
                                  "from timber_core.cli import main; main()", "migrate"],
                                 env=env, capture_output=True, text=True, timeout=180, check=False)
        assert migrate.returncode == 0, migrate.stderr
        yield


def test_one_login_drives_both_apps_own_routes_and_the_platform_sees_both(cluster: Cluster) -> None:
    canopy, grove, platform = cluster.url["canopy"], cluster.url["grove"], cluster.url["platform"]
    ann, bob = cluster.login("ann"), cluster.login("bob")
    order = httpx.post(f"{canopy}/orders", headers=ann, timeout=30,
                       json={"symbol": "NVDA", "order_type": "market", "quantity": 5, "notes": "GPU demand surging"})
    assert order.status_code == 201, order.text
    research = httpx.post(f"{grove}/research", headers=ann, timeout=30,
                          json={"symbol": "AMD", "notes": "graphics chip market share"})
    assert research.status_code == 201, research.text
    httpx.post(f"{grove}/research", headers=bob, json={"symbol": "AMD", "notes": "graphics chips"}, timeout=30)
    assert [o["id"] for o in httpx.get(f"{canopy}/orders", headers=ann).json()["orders"]] == [order.json()["id"]]
    assert httpx.get(f"{canopy}/orders", headers=bob).json() == {"orders": []}
    assert [r["id"] for r in httpx.get(f"{grove}/research", headers=ann).json()["research"]] == [research.json()["id"]]
    hits = httpx.get(f"{platform}/platform/search", params={"q": "graphics processors"}, headers=ann, timeout=30)
    assert sorted((h["app"], h["id"]) for h in hits.json()["hits"]) == sorted(
        [("canopy", order.json()["id"]), ("grove", research.json()["id"])])


def test_the_servers_answer_401_403_404_422_in_the_one_json_shape(cluster: Cluster) -> None:
    canopy, grove = cluster.url["canopy"], cluster.url["grove"]
    ann = cluster.login("cat")
    answers = {
        401: httpx.get(f"{grove}/research"),
        403: httpx.post(f"{grove}/sessions", json={"session_type": "trading", "metadata": {}}, headers=ann),
        404: httpx.post(f"{canopy}/orders/no-such-order/fill", headers=ann),
        422: httpx.post(f"{canopy}/orders", json={"symbol": "NVDA", "order_type": "swap", "quantity": 1}, headers=ann),
    }
    assert {status: (r.status_code, r.json()["error"]["type"]) for status, r in answers.items()} == {
        401: (401, "AuthenticationError"), 403: (403, "IsolationError"), 404: (404, "NotFoundError"),
        422: (422, "ValidationError")}
    assert all(sorted(r.json()) == ["error"] and sorted(r.json()["error"]) == ["message", "type"]
               for r in answers.values())


def test_200_concurrent_requests_of_20_users_see_only_their_own_rows_with_no_5xx(cluster: Cluster) -> None:
    canopy, grove = cluster.url["canopy"], cluster.url["grove"]
    users = asyncio.run(cluster.logins([f"c{i}" for i in range(USERS)]))

    async def one(client: httpx.AsyncClient, n: int) -> tuple[str, str, int, Any]:
        name = f"c{n % USERS}"
        auth = users[name]
        if n % 4 == 0:
            r = await client.post(f"{canopy}/orders", headers=auth, json={
                "symbol": "AAPL", "order_type": "market", "quantity": 1, "notes": name})
            return name, "canopy-write", r.status_code, r.json()
        if n % 4 == 1:
            r = await client.post(f"{grove}/research", headers=auth, json={"symbol": "AAPL", "notes": name})
            return name, "grove-write", r.status_code, r.json()
        if n % 4 == 2:
            r = await client.get(f"{canopy}/orders", headers=auth)
            return name, "canopy", r.status_code, r.json()
        r = await client.get(f"{grove}/research", headers=auth)
        return name, "grove", r.status_code, r.json()

    async def scenario() -> list[tuple[str, str, int, Any]]:
        limits = httpx.Limits(max_connections=REQUESTS)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            return await asyncio.gather(*(one(client, n) for n in range(REQUESTS)))

    results = asyncio.run(scenario())
    assert [r for r in results if r[2] >= 500] == []
    assert sorted({(kind, status) for _, kind, status, _ in results}) == [
        ("canopy", 200), ("canopy-write", 201), ("grove", 200), ("grove-write", 201)]
    for name, kind, _, body in results:
        rows = body.get("orders", body.get("research")) if kind in ("canopy", "grove") else []
        assert {row["notes"] for row in rows} <= {name}, (name, kind, rows)  # only the user's own rows
    logs = cluster.logs()
    assert "database is locked" not in logs
    assert " 500 " not in logs and "Traceback" not in logs
