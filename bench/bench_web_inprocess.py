#!/usr/bin/env python
"""CPU per request of Canopy's ``GET /sessions`` in-process (httpx.ASGITransport), Timber beside the baseline.

The same two apps as ``bench_web.py`` (``create_app("canopy")`` and ``_plain_sessions_app``) on
one SQLite file, driven in this process with no server and no sockets: 8 concurrent clients,
``--rounds`` interleaved rounds of ``--requests``, ``time.process_time()`` per request (the
handlers' worker threads included), median of the rounds. Steadier than wall time on a shared
machine; used to profile the middleware's overhead (docs/performance.md, "Web").

    python bench/bench_web_inprocess.py [--requests 800] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery"


async def _round(app: Any, headers: dict[str, str], requests: int, clients: int = 8) -> float:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                 headers=headers) as client:
        async def worker(n: int) -> None:
            for _ in range(n):
                answer = await client.get("/sessions")
                if answer.status_code != 200 or len(answer.json()["sessions"]) != 20:
                    raise SystemExit(f"unexpected answer {answer.status_code} {answer.text[:200]}")

        began = time.process_time()
        await asyncio.gather(*(worker(requests // clients) for _ in range(clients)))
        return (time.process_time() - began) / requests * 1000


async def _main(requests: int, rounds: int) -> None:
    import httpx

    import timber_core
    from timber_core.web import create_app

    url = os.environ["DATABASE_URL"]
    timber_core.initialize_timber(app_name=None, database_url=url, create_tables=True)
    timber = create_app("canopy", initialize=False)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _plain_sessions_app as plain  # reads DATABASE_URL and TIMBER_SECRET_KEYS

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=timber), base_url="http://bench") as c:
        await c.post("/auth/register", json={"email": "ada@example.com", "username": "ada", "password": PASSWORD})
        token = (await c.post("/auth/token", data={"username": "ada@example.com", "password": PASSWORD})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for _ in range(20):
            await c.post("/sessions", json={"session_type": "trading", "metadata": {}}, headers=headers)
    cpu: dict[str, list[float]] = {"timber": [], "plain": []}
    await _round(timber, headers, 200)  # warm both
    await _round(plain.app, headers, 200)
    for _ in range(rounds):
        cpu["timber"].append(await _round(timber, headers, requests))
        cpu["plain"].append(await _round(plain.app, headers, requests))
    t, p = statistics.median(cpu["timber"]), statistics.median(cpu["plain"])
    print(f"sqlite in-process, {rounds} rounds x {requests} requests, 8 clients")
    print(f"  CPU per request: timber {t:.3f} ms, plain {p:.3f} ms; plain / timber {p / t:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="timber-bench-web-inprocess-")
    os.environ.update(TIMBER_HOME=home, DATABASE_URL=f"sqlite:///{home}/timber.db",
                      TIMBER_SECRET_KEYS="bench-web-key-" + "k" * 32)
    asyncio.run(_main(args.requests, args.rounds))


if __name__ == "__main__":
    main()
