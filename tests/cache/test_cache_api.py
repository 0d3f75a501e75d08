"""``kernel.cache``'s API on both backends: get_or_set, invalidate, forget_user, isolation, counters."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from timber_core import app_context
from timber_core.cache import cache, cached
from timber_core.errors import ValidationError
from timber_core.services.base import BaseService


class Loads:
    """A loader returning ``value`` that counts its calls."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        return self.value


def test_a_second_get_or_set_is_a_hit_without_a_load(kernel: Any, alice: str) -> None:
    load = Loads({"total": 3})
    assert cache.get_or_set("total", load, user_id=alice) == {"total": 3}
    assert cache.get_or_set("total", load, user_id=alice) == {"total": 3}
    assert load.calls == 1
    assert kernel.cache.stats()["canopy"] == {"hits": 1, "misses": 1, "errors": 0}


def test_an_app_never_reads_another_apps_entry(kernel: Any, alice: str) -> None:
    cache.get_or_set("total", lambda: "canopy's", user_id=alice)
    with app_context("grove"):
        assert cache.get_or_set("total", lambda: "grove's", user_id=alice) == "grove's"
    assert cache.get_or_set("total", lambda: "never loaded", user_id=alice) == "canopy's"


def test_entries_of_one_user_are_not_another_users(kernel: Any, alice: str, bob: str) -> None:
    cache.get_or_set("total", lambda: "alice's", user_id=alice)
    assert cache.get_or_set("total", lambda: "bob's", user_id=bob) == "bob's"


def test_invalidate_makes_the_next_read_load_again(kernel: Any, alice: str) -> None:
    load = Loads(1)
    cache.get_or_set("total", load, user_id=alice)
    cache.invalidate("total", user_id=alice)
    cache.get_or_set("total", load, user_id=alice)
    assert load.calls == 2


def test_forget_user_drops_the_users_entries_of_every_app_and_keeps_the_others(
        kernel: Any, alice: str, bob: str) -> None:
    from timber_core.services.persistence import notification_service

    cache.get_or_set("total", lambda: 1, user_id=alice)
    cache.get_or_set("total", lambda: 1, user_id=bob)
    with app_context("grove"):
        cache.get_or_set("notes", lambda: 1, user_id=alice)
    notification_service.unread_count(alice)
    cache.forget_user(alice)
    again = Loads(2)
    assert [cache.get_or_set("total", again, user_id=alice), cache.get_or_set("total", again, user_id=bob)] == [2, 1]
    with app_context("grove"):
        assert cache.get_or_set("notes", again, user_id=alice) == 2
    before = kernel.cache.stats()["timber"]["misses"]
    notification_service.unread_count(alice)
    assert kernel.cache.stats()["timber"]["misses"] == before + 1
    assert again.calls == 2


def test_a_value_the_cache_cannot_store_is_a_validation_error(kernel: Any, alice: str) -> None:
    with pytest.raises(ValidationError) as err:
        cache.get_or_set("thing", lambda: object(), user_id=alice)
    assert str(err.value) == (
        "cache entry 'thing' of namespace 'canopy': cannot store or load builtins.object: only plain data, "
        "datetimes, Decimals, UUIDs and SQLAlchemy Rows are cached; return such values from the loader")


def test_a_malformed_key_is_a_validation_error(kernel: Any) -> None:
    with pytest.raises(ValidationError) as err:
        cache.get_or_set("", lambda: 1)
    assert str(err.value) == "get_or_set: key must be a non-empty string of at most 200 characters; got ''"


def test_a_hit_returns_a_copy_the_caller_may_change(kernel: Any, alice: str) -> None:
    cache.get_or_set("items", lambda: [1, 2], user_id=alice)
    first = cache.get_or_set("items", lambda: [9], user_id=alice)
    first.append(3)
    assert cache.get_or_set("items", lambda: [9], user_id=alice) == [1, 2]


class Portfolio(BaseService):
    def __init__(self, kernel: Any) -> None:
        super().__init__(kernel)
        self.loads = Loads(None)

    @cached("positions", ttl=30)
    def positions(self, user_id: str, symbol: str = "*") -> list[str]:
        self.loads()
        return [f"{user_id[:4]}:{symbol}"]


def test_a_cached_method_loads_once_per_arguments(kernel: Any, alice: str) -> None:
    service = Portfolio(kernel)
    assert service.positions(alice) == service.positions(alice) == [f"{alice[:4]}:*"]
    assert service.positions(alice, "AAPL") == [f"{alice[:4]}:AAPL"]
    assert service.loads.calls == 2


def test_invalidating_a_cached_methods_family_drops_every_arguments_entry(kernel: Any, alice: str) -> None:
    service = Portfolio(kernel)
    service.positions(alice)
    service.positions(alice, "AAPL")
    cache.invalidate("positions", user_id=alice)
    service.positions(alice)
    service.positions(alice, "AAPL")
    assert service.loads.calls == 4


def test_a_hundred_concurrent_misses_on_one_key_load_once(kernel: Any, alice: str) -> None:
    gate = threading.Event()
    load = Loads("value")

    def slow() -> Any:
        gate.wait(5)
        return load()

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_set("k", slow, user_id=alice)))
               for _ in range(100)]
    for t in threads:
        t.start()
    threading.Timer(0.2, gate.set).start()
    for t in threads:
        t.join()
    assert (load.calls, results) == (1, ["value"] * 100)


def test_with_the_cache_off_every_read_loads(backend: str, timber_kernel_factory: Any, monkeypatch: Any,
                                             make_user: Any) -> None:
    from timber_core.config import TimberConfig

    monkeypatch.setenv("TIMBER_CACHE", "false")
    TimberConfig.clear_cache()
    kernel = timber_kernel_factory("canopy")
    load = Loads(1)
    cache.get_or_set("k", load)
    cache.get_or_set("k", load)
    assert (load.calls, kernel.cache.stats()) == (2, {})


@pytest.mark.parametrize("backend", ["redis"], indirect=True)  # the load lock is Redis's: one process in-process
def test_with_redis_a_miss_waits_for_the_process_holding_the_load_lock(backend: str, kernel: Any, alice: str) -> None:
    import redis

    from timber_core.cache._codec import dumps

    own = kernel.cache
    key = own._key("canopy", alice, "total")
    client = redis.Redis.from_url(own.backend.url)
    client.set(f"{key}:lock:", "another process", px=2000)  # another process is loading "total"
    threading.Timer(0.2, lambda: client.hset(key, "", dumps("theirs"))).start()
    load = Loads("ours")
    assert (cache.get_or_set("total", load, user_id=alice), load.calls) == ("theirs", 0)


def test_by_default_the_cache_is_on_with_sqlite_and_off_on_postgresql_without_redis(
        timber_kernel_factory: Any, timber_database_url: str, monkeypatch: Any) -> None:
    from timber_core.config import TimberConfig

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("TIMBER_CACHE", raising=False)
    TimberConfig.clear_cache()
    kernel = timber_kernel_factory("canopy")
    assert (kernel.db.dialect, kernel.cache.enabled) in {("sqlite", True), ("postgresql", False)}
    assert kernel.cache.enabled is (kernel.db.dialect == "sqlite")


def test_timber_cache_true_turns_the_in_process_cache_on_with_postgresql(
        timber_kernel_factory: Any, monkeypatch: Any) -> None:
    from timber_core.config import TimberConfig

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("TIMBER_CACHE", "true")
    TimberConfig.clear_cache()
    assert timber_kernel_factory("canopy").cache.enabled is True
