"""The Redis backend on its own (the machine's Redis, a key prefix of the test's own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from timber_core.cache._redis import RedisBackend

from .conftest import REDIS_URL, _drop_prefix, require_redis


@pytest.fixture
def backend() -> Iterator[RedisBackend]:
    require_redis()
    prefix = f"timber_t_{uuid.uuid4().hex[:12]}"
    b = RedisBackend(REDIS_URL, prefix)
    yield b
    b.close()
    _drop_prefix(REDIS_URL, prefix)


def _key(backend: RedisBackend, user: str = "u1") -> str:
    return f"{backend.prefix}:u:{user}:canopy:total"


def test_a_fill_started_before_an_invalidation_is_not_stored(backend: RedisBackend) -> None:
    key = _key(backend)
    _data, token, may_load = backend.get(key, "", "canopy", 2)
    backend.delete([key])
    stored = backend.set(key, "", b"stale", 60, token, "canopy", f"{backend.prefix}:u:u1:!")
    assert (may_load, stored, backend.get(key, "", "canopy", 2)[0]) == (True, False, None)


def test_a_fill_after_the_user_was_forgotten_is_not_stored(backend: RedisBackend) -> None:
    key = _key(backend)
    _data, token, _may_load = backend.get(key, "", "canopy", 2)
    backend.delete_prefix(f"{backend.prefix}:u:u1:")
    assert backend.set(key, "", b"stale", 60, token, "canopy", f"{backend.prefix}:u:u1:!") is False


def test_forgetting_a_user_keeps_the_other_users_entries(backend: RedisBackend) -> None:
    for user in ("u1", "u2"):
        key = _key(backend, user)
        backend.set(key, "", user.encode(), 60, backend.get(key, "", "canopy", 2)[1], "canopy",
                    f"{backend.prefix}:u:{user}:!")
    backend.delete_prefix(f"{backend.prefix}:u:u1:")
    assert [backend.get(_key(backend, u), "", "canopy", 2)[0] for u in ("u1", "u2")] == [None, b"u2"]


def test_a_second_miss_waits_while_the_first_holds_the_load_lock(backend: RedisBackend) -> None:
    key = _key(backend)
    first, second = backend.get(key, "", "canopy", 2), backend.get(key, "", "canopy", 2)
    assert (first[2], second[2]) == (True, False)


def test_the_fill_gives_the_load_lock_back(backend: RedisBackend) -> None:
    key = _key(backend)
    _data, token, _may_load = backend.get(key, "", "canopy", 2)
    backend.set(key, "", b"v", 60, token, "canopy", f"{backend.prefix}:u:u1:!")
    backend.delete([key])
    assert backend.get(key, "", "canopy", 2)[2] is True


def test_health_says_the_cache_is_unavailable_and_stays_ok(own_redis: Any, monkeypatch: pytest.MonkeyPatch,
                                                           timber_kernel_factory: Any) -> None:
    from timber_core.config import TimberConfig
    from timber_core.web.health import health_report

    monkeypatch.setenv("REDIS_URL", own_redis.url)
    TimberConfig.clear_cache()
    kernel = timber_kernel_factory("canopy")
    own_redis.stop()
    status, body = health_report(kernel, "canopy")
    assert (status, body["status"], body["cache"]["backend"], body["cache"]["status"]) == (
        200, "ok", "redis", "unavailable: reads go to the database")
