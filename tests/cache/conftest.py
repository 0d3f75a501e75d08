"""The cache's tests run on both backends: in-process, and the machine's Redis under a key prefix of their own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REDIS_URL = os.environ.get("TIMBER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_why(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer ({exc}); start it or set TIMBER_TEST_REDIS_URL"
    return None


def require_redis(url: str = REDIS_URL) -> None:
    """Skip (saying why), or under CI=true fail, when the test Redis does not answer."""
    why = _redis_or_why(url)
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def _drop_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The cache backend of the test's kernels: ``memory`` (no REDIS_URL), or ``redis`` under a fresh prefix."""
    from timber_core.config import TimberConfig

    if request.param == "redis":
        require_redis()
        prefix = f"timber_t_{uuid.uuid4().hex[:12]}"
        monkeypatch.setenv("REDIS_URL", REDIS_URL)
        monkeypatch.setenv("TIMBER_CACHE_PREFIX", prefix)
        TimberConfig.clear_cache()
        try:
            yield "redis"
        finally:
            _drop_prefix(REDIS_URL, prefix)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
        monkeypatch.setenv("TIMBER_CACHE", "true")  # on PostgreSQL too (off there by default without Redis)
        TimberConfig.clear_cache()
        yield "memory"


@pytest.fixture
def kernel(backend: str, timber_kernel_factory: Callable[..., Any]) -> Any:
    """A Canopy kernel (Grove installed too) whose cache is ``backend``."""
    return timber_kernel_factory("canopy")


@pytest.fixture
def alice(kernel: Any, make_user: Callable[..., str]) -> str:
    return make_user()


@pytest.fixture
def bob(kernel: Any, make_user: Callable[..., str]) -> str:
    return make_user()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of the test's own on a free loopback port: start, stop, start again."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of this test only (never the machine's), stopped at the end."""
    if shutil.which("redis-server") is None:
        why = "redis-server is not installed: the outage tests start their own"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
