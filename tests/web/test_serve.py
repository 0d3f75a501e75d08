"""``timber serve``: Canopy and Grove as real servers (uvicorn, loopback ports), driven over HTTP.

One login across apps on one database: a token Canopy issued is accepted by Grove, and each
app's server sees only its own sessions. On SQLite the two servers (two workers for Canopy)
share one TIMBER_HOME; on PostgreSQL one scratch database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import KEY_A, PASSWORD

SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One ``timber serve APP`` process on a loopback port."""

    def __init__(self, app: str, env: dict[str, str], log: Path, workers: int = 1) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()",
             "serve", app, "--port", str(self.port), "--workers", str(workers)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.log = log

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"timber serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"timber serve did not answer /health within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Server]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "TIMBER_HOME": str(tmp_path / "home")}
    if request.param == "postgresql":
        url = request.getfixturevalue("scratch_postgres")
        env.update(DATABASE_URL=url, TIMBER_SECRET_KEYS=KEY_A)
        migrate = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; "
                                  "from timber_core.cli import main; main()", "migrate"],
                                 env=env, capture_output=True, text=True, timeout=120, check=False)
        assert migrate.returncode == 0, migrate.stderr
    started = {"canopy": Server("canopy", env, tmp_path / "canopy.log", workers=2),
               "grove": Server("grove", env, tmp_path / "grove.log")}
    try:
        for server in started.values():
            server.wait_healthy()
        yield started
    finally:
        for server in started.values():
            server.stop()


def test_one_login_serves_both_apps_and_each_sees_only_its_own_sessions(servers: dict[str, Server]) -> None:
    canopy, grove = servers["canopy"].url, servers["grove"].url
    registered = httpx.post(f"{canopy}/auth/register",
                            json={"email": "ada@example.com", "username": "ada", "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    token = httpx.post(f"{canopy}/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
    assert token.status_code == 200, token.text
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    made = [httpx.post(f"{canopy}/sessions", json={"session_type": "trading", "metadata": {}}, headers=auth),
            httpx.post(f"{grove}/sessions", json={"session_type": "research", "metadata": {}}, headers=auth)]
    assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
    seen = {name: httpx.get(f"{url}/sessions", headers=auth) for name, url in (("canopy", canopy), ("grove", grove))}
    assert {name: sorted(s["session_type"] for s in r.json()["sessions"]) for name, r in seen.items()} == {
        "canopy": ["trading"], "grove": ["research"]}
    crossing = httpx.post(f"{grove}/sessions", json={"session_type": "trading", "metadata": {}}, headers=auth)
    assert (crossing.status_code, crossing.json()["error"]["type"]) == (403, "IsolationError")
    assert httpx.get(f"{grove}/sessions").status_code == 401


def test_serve_refuses_an_app_that_is_not_installed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TIMBER_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; "
                           "main()", "serve", "ghost"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("Error: no app named 'ghost' is installed and loaded (installed: canopy, grove; or "
                           "'platform' for the cross-app server); install its distribution, or see `timber apps list`\n")
