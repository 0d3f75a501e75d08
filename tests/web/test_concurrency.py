"""200 concurrent requests from 20 users across both apps: each answer is its own user's rows only."""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import Apps, run

USERS = 20
REQUESTS = 200


def test_concurrent_requests_never_see_another_users_or_apps_rows(apps: Apps) -> None:
    async def scenario() -> list[tuple[int, str, str, Any]]:
        tokens = {}
        for i in range(USERS):
            tokens[f"u{i}"] = await apps.token_for(f"u{i}@example.com", f"u{i}")
        for i, (name, token) in enumerate(tokens.items()):  # one session per user and app, named for it
            for app, kind in (("canopy", "trading"), ("grove", "research")):
                async with apps.client(app, token) as c:
                    made = await c.post("/sessions", json={"session_type": kind, "metadata": {"owner": name}})
                    assert made.status_code == 201

        async def one(n: int) -> tuple[int, str, str, Any]:
            name = f"u{n % USERS}"
            app = ("canopy", "grove")[n % 2 if n % 4 < 2 else 1 - n % 2]
            async with apps.client(app, tokens[name]) as c:
                response = await c.get("/sessions")
            return response.status_code, name, app, response.json()

        return await asyncio.gather(*(one(n) for n in range(REQUESTS)))

    results = run(scenario())
    assert len(results) == REQUESTS
    assert {app for _, _, app, _ in results} == {"canopy", "grove"}
    for status, name, app, body in results:
        assert status == 200, (name, app, body)
        rows = [(s["app_name"], s["metadata"]["owner"]) for s in body["sessions"]]
        assert rows == [(app, name)], (name, app, rows)
