"""Both apps and the platform as web servers on one TIMBER_HOME, one login across them (``nox -s demo``).

Starts ``timber serve canopy``, ``timber serve grove`` and ``timber serve platform`` on free
loopback ports, registers one user on Canopy and logs in once. With that one token it drives
the apps' own routes (their plugins' ``timber_web_app()``): a trading session and an order with
notes in Canopy, filled (a notification); a research session with notes in Grove, and a search
by meaning in those notes; then the platform's unified search and activity summary see both.
Grove refuses a Canopy session type. Stops the servers at the end.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
from demo import offline_model  # examples/demo.py: the offline embedding model, for the notes' search

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "timber_core.cli", "serve", app, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                print(f"{app} serves {url}")
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"timber serve {app} did not become healthy within 90 s")


def ok(response: httpx.Response) -> dict:
    response.raise_for_status()
    return response.json()


def main() -> None:
    offline_model()  # set in this process's environment, which the servers inherit
    servers = [serve("canopy"), serve("grove"), serve("platform")]
    (_, canopy), (_, grove), (_, platform) = servers
    try:
        ok(httpx.post(f"{canopy}/auth/register", json={"email": "ada@example.com", "username": "ada",
                                                       "password": PASSWORD}))
        token = ok(httpx.post(f"{canopy}/auth/token", data={"username": "ada@example.com", "password": PASSWORD}))
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        print("logged in once, on canopy")

        session = ok(httpx.post(f"{canopy}/trading-sessions", json={"strategy": "momentum"}, headers=auth, timeout=30))
        order = ok(httpx.post(f"{canopy}/orders", headers=auth, timeout=30, json={
            "symbol": "NVDA", "order_type": "limit", "quantity": 10, "price": "120.50",
            "session_id": session["id"], "notes": "data-centre GPU demand keeps growing"}))
        ok(httpx.post(f"{canopy}/orders/{order['id']}/fill", headers=auth, timeout=30))
        orders = ok(httpx.get(f"{canopy}/orders", headers=auth))["orders"]
        print(f"canopy: orders {[(o['symbol'], o['status']) for o in orders]}")
        notes = ok(httpx.get(f"{canopy}/notifications", headers=auth))["notifications"]
        print(f"canopy: notifications {[n['title'] for n in notes]}")

        ok(httpx.post(f"{grove}/research", headers=auth, timeout=30,
                      json={"symbol": "AMD", "notes": "graphics chip market share is rising"}))
        hits = ok(httpx.get(f"{grove}/research/search", params={"q": "GPU makers"}, headers=auth, timeout=30))["hits"]
        print(f"grove: search in my notes -> {[h['notes'] for h in hits]}")

        found = ok(httpx.get(f"{platform}/platform/search", params={"q": "GPU makers"}, headers=auth,
                             timeout=30))["hits"]
        print(f"platform: unified search -> {[(h['app'], h['content']) for h in found]}")
        activity = ok(httpx.get(f"{platform}/platform/activity", headers=auth))["activity"]
        print(f"platform: activity -> {activity}")

        refused = httpx.post(f"{grove}/sessions", json={"session_type": "trading", "metadata": {}}, headers=auth)
        print(f"grove refuses a trading session: {refused.status_code} {refused.json()['error']['type']}")
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
