"""Redis down: reads go to the database, one warning per outage, no error to the caller, recovery by itself.

Each test starts its own redis-server on a free loopback port (never the machine's Redis).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from timber_core.cache import cache
from timber_core.config import TimberConfig
from timber_core.services.persistence import notification_service


@pytest.fixture
def kernel_on_own_redis(own_redis: Any, monkeypatch: pytest.MonkeyPatch, timber_kernel_factory: Any) -> Any:
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    TimberConfig.clear_cache()
    kernel = timber_kernel_factory("canopy")
    kernel.cache.backend.retry_after = 0.05  # try Redis again soon after a failure: the test waits for it
    return kernel


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "timber.cache" and r.levelno == logging.WARNING and "is unavailable" in r.getMessage()]


def test_with_redis_down_reads_come_from_the_database(kernel_on_own_redis: Any, own_redis: Any,
                                                      make_user: Any) -> None:
    alice = make_user()
    notification_service.unread_count(alice)
    own_redis.stop()
    notification_service.create_notification(alice, "fill", "Order filled")
    assert [notification_service.unread_count(alice) for _ in range(3)] == [1, 1, 1]


def test_an_outage_is_one_warning(kernel_on_own_redis: Any, own_redis: Any, make_user: Any,
                                  caplog: pytest.LogCaptureFixture) -> None:
    alice = make_user()
    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="timber.cache")
    for _ in range(5):
        notification_service.unread_count(alice)
        time.sleep(0.06)  # past retry_after: each read tries Redis again
    assert _outage_warnings(caplog) == [
        f"Warning: the cache's Redis at 127.0.0.1:{own_redis.port}/0 is unavailable (ConnectionError: Error 111 "
        f"connecting to 127.0.0.1:{own_redis.port}. Connection refused.); reads and writes go to the database "
        f"until it answers again"]


def test_an_outage_counts_errors_not_hits(kernel_on_own_redis: Any, own_redis: Any, make_user: Any) -> None:
    alice = make_user()
    own_redis.stop()
    notification_service.unread_count(alice)
    assert kernel_on_own_redis.cache.stats()["timber"]["hits"] == 0
    assert kernel_on_own_redis.cache.stats()["timber"]["errors"] >= 1


def test_the_cache_serves_hits_again_once_redis_is_back(kernel_on_own_redis: Any, own_redis: Any,
                                                        make_user: Any) -> None:
    alice = make_user()
    own_redis.stop()
    notification_service.unread_count(alice)
    own_redis.start()

    def hit_again() -> bool:
        before = kernel_on_own_redis.cache.stats()["timber"]["hits"]
        notification_service.unread_count(alice)
        notification_service.unread_count(alice)
        return kernel_on_own_redis.cache.stats()["timber"]["hits"] > before

    assert _until(hit_again)


def test_an_invalidation_lost_in_an_outage_is_sent_on_recovery(kernel_on_own_redis: Any, own_redis: Any,
                                                               make_user: Any) -> None:
    import redis

    alice = make_user()
    assert notification_service.unread_count(alice) == 0
    admin = redis.Redis.from_url(own_redis.url)
    admin.client_pause(3000, all=True)  # Redis keeps its entries but answers nothing: timeouts
    notification_service.create_notification(alice, "fill", "Order filled")
    admin_unpaused = _until(lambda: kernel_on_own_redis.cache.backend.available())
    assert (admin_unpaused, notification_service.unread_count(alice)) == (True, 1)


def test_forget_user_in_an_outage_is_sent_on_recovery(kernel_on_own_redis: Any, own_redis: Any,
                                                      make_user: Any) -> None:
    import redis

    alice = make_user()
    cache.get_or_set("total", lambda: "before", user_id=alice)
    redis.Redis.from_url(own_redis.url).client_pause(3000, all=True)
    cache.forget_user(alice)
    assert _until(lambda: kernel_on_own_redis.cache.backend.available())
    assert cache.get_or_set("total", lambda: "after", user_id=alice) == "after"
