#!/usr/bin/env python
"""Web benchmark (issue 12): an authenticated ``GET /sessions`` through Canopy's server beside the baseline.

Two uvicorn servers on loopback ports, one worker each, on the same database:

* ``timber serve canopy``: Timber's middleware (app and user context from the bearer token), the
  kernel's router, ``session_service.get_user_sessions`` (isolation, the ORM);
* ``bench/_plain_sessions_app.py``: the same token check (PyJWT) and one plain SQLAlchemy Core query.

One user with 20 Canopy sessions; ``--concurrency`` clients issue ``--requests`` requests to one
server, then to the other, for ``--rounds`` interleaved rounds. Prints requests/s (median of the
rounds) and p50/p99 latency of each, the server process's CPU time per request (user + system,
from /proc: steadier than wall time on a shared machine), and the ratios (target: Timber >= 0.8x
the baseline's throughput).

    python bench/bench_web.py [--requests 1000] [--rounds 3] [--concurrency 8] [--database-url URL]

Without ``--database-url`` it runs on a fresh embedded SQLite database in a temporary TIMBER_HOME;
with a PostgreSQL URL it creates a scratch database on that server and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from timber_core.testing import scratch_database

HERE = Path(__file__).resolve().parent
KEY = "bench-web-key-" + "k" * 32
PASSWORD = "correct horse battery"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(cmd: list[str], env: dict[str, str], url: str, health: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + health, timeout=2).status_code < 500:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{' '.join(cmd)} did not start")


async def _round(url: str, token: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    todo = iter(range(requests))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        async def worker() -> None:
            for _ in todo:
                start = time.perf_counter()
                response = await client.get("/sessions")
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200 or len(response.json()["sessions"]) != 20:
                    raise SystemExit(f"{url}: unexpected answer {response.status_code} {response.text[:200]}")
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - began), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="timber-bench-web-")
    with contextlib.ExitStack() as stack:
        url = (stack.enter_context(scratch_database(args.database_url)) if args.database_url
               else f"sqlite:///{home}/timber.db")
        results, cpu = _measure(url, home, args)
    _report(url, args, results, cpu)


def _measure(url: str, home: str, args: argparse.Namespace) -> tuple[dict[str, tuple[list[float], list[float]]],
                                                                      dict[str, list[float]]]:
    """Start both servers on ``url``, run the interleaved rounds; return requests/s and latencies, and CPU per request."""
    env = {**os.environ, "TIMBER_HOME": home, "DATABASE_URL": url, "TIMBER_SECRET_KEYS": KEY}
    timber = [sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"]
    subprocess.run([*timber, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    t_port, p_port = _port(), _port()
    t_url, p_url = f"http://127.0.0.1:{t_port}", f"http://127.0.0.1:{p_port}"
    procs = [_start([*timber, "serve", "canopy", "--port", str(t_port)], env, t_url, "/health")]
    try:
        assert httpx.post(f"{t_url}/auth/register",
                          json={"email": "ada@example.com", "username": "ada", "password": PASSWORD}).status_code == 201
        token = httpx.post(f"{t_url}/auth/token", data={"username": "ada@example.com", "password": PASSWORD}).json()[
            "access_token"]
        for _ in range(20):
            httpx.post(f"{t_url}/sessions", json={"session_type": "trading", "metadata": {}},
                       headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        procs.append(_start([sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "--port", str(p_port),
                             "--log-level", "warning", "_plain_sessions_app:app"], env, p_url, "/sessions"))
        results: dict[str, tuple[list[float], list[float]]] = {"timber": ([], []), "plain": ([], [])}
        cpu: dict[str, list[float]] = {"timber": [], "plain": []}
        pids = {"timber": procs[0].pid, "plain": procs[1].pid}
        asyncio.run(_round(t_url, token, 100, args.concurrency))  # warm both
        asyncio.run(_round(p_url, token, 100, args.concurrency))
        for _ in range(args.rounds):
            for name, target in (("timber", t_url), ("plain", p_url)):  # interleaved: drift hits both
                before = _cpu_seconds(pids[name])
                rps, lat = asyncio.run(_round(target, token, args.requests, args.concurrency))
                cpu[name].append((_cpu_seconds(pids[name]) - before) / args.requests)
                results[name][0].append(rps)
                results[name][1].extend(lat)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
    return results, cpu


def _report(url: str, args: argparse.Namespace, results: dict[str, tuple[list[float], list[float]]],
            cpu: dict[str, list[float]]) -> None:
    print(f"database: {url.split('://')[0]}; {args.rounds} rounds x {args.requests} requests, "
          f"concurrency {args.concurrency}, one worker each")
    summary = {}
    for name, (rps, lat) in results.items():
        lat.sort()
        p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
        summary[name] = statistics.median(rps)
        per_request = statistics.median(cpu[name]) * 1000
        print(f"  {name:7s} {summary[name]:8.1f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
              f"server CPU {per_request:5.2f} ms/request")
    ratio = summary["timber"] / summary["plain"]
    print(f"  timber / plain throughput: {ratio:.2f}x (target >= 0.8x: {'met' if ratio >= 0.8 else 'MISSED'})")
    cpu_ratio = statistics.median(cpu["plain"]) / statistics.median(cpu["timber"])
    print(f"  plain / timber server CPU per request: {cpu_ratio:.2f}x (the throughput ratio if CPU-bound)")


if __name__ == "__main__":
    main()
