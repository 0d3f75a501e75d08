"""Both apps as web servers on one TIMBER_HOME, one login across them (``nox -s demo`` runs it).

Starts ``timber serve canopy`` and ``timber serve grove`` on free loopback ports, registers one
user on Canopy, logs in once, and uses that token on both servers: each app sees only its own
sessions, and Grove refuses a Canopy session type. Stops both servers at the end.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

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
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                print(f"{app} serves {url}")
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"timber serve {app} did not become healthy within 60 s")


def main() -> None:
    servers = [serve("canopy"), serve("grove")]
    (_, canopy), (_, grove) = servers
    try:
        httpx.post(f"{canopy}/auth/register", json={"email": "ada@example.com", "username": "ada",
                                                    "password": PASSWORD}).raise_for_status()
        token = httpx.post(f"{canopy}/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
        token.raise_for_status()
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        print("logged in once, on canopy")
        httpx.post(f"{canopy}/sessions", json={"session_type": "trading", "metadata": {}}, headers=auth).raise_for_status()
        httpx.post(f"{grove}/sessions", json={"session_type": "research", "metadata": {}}, headers=auth).raise_for_status()
        for name, url in (("canopy", canopy), ("grove", grove)):
            sessions = httpx.get(f"{url}/sessions", headers=auth).json()["sessions"]
            print(f"{name} sees sessions over HTTP: {[s['session_type'] for s in sessions]}")
        refused = httpx.post(f"{grove}/sessions", json={"session_type": "trading", "metadata": {}}, headers=auth)
        print(f"grove refuses a trading session: {refused.status_code} {refused.json()['error']['type']}")
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
