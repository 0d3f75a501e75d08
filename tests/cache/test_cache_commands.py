"""``timber cache stats`` run in-process with click's CliRunner, on a SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import timber_core
from timber_core.config import TimberConfig

from .conftest import REDIS_URL, _drop_prefix, require_redis

Invoke = Callable[..., Result]


@pytest.fixture
def timber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    from timber_core import cli as cli_module

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'timber.db'}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    TimberConfig.clear_cache()
    timber_core.shutdown()
    yield lambda *args: CliRunner().invoke(cli_module.cli, list(args), catch_exceptions=False)
    timber_core.shutdown()


@pytest.fixture
def shared_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require_redis()
    prefix = "timber_t_cli_" + __import__("uuid").uuid4().hex[:8]
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("TIMBER_CACHE_PREFIX", prefix)
    TimberConfig.clear_cache()
    yield prefix
    _drop_prefix(REDIS_URL, prefix)


def _lookups_as_canopy(user_id_reads: int) -> None:
    from timber_core.cache import cache

    kernel = timber_core.initialize_timber("canopy")
    for _ in range(user_id_reads):
        cache.get_or_set("total", lambda: 1, user_id="u1")
    kernel.close()
    timber_core.shutdown()


def test_stats_in_process_says_each_process_counts_its_own(timber: Invoke) -> None:
    result = timber("cache", "stats")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "backend: memory (in-process)\n",
        "Warning: the in-process cache counts in each process: read a running app's counters in its GET /health, "
        "or set REDIS_URL to share the cache and its counters\n")


def test_stats_with_redis_prints_every_processs_hits_and_misses(timber: Invoke, shared_redis: str) -> None:
    _lookups_as_canopy(3)
    result = timber("cache", "stats")
    assert (result.exit_code, result.stdout) == (0, (
        f"backend: redis (Redis at 127.0.0.1:6379/0)\n"
        f"namespace  hits  misses\n"
        f"---------  ----  ------\n"
        f"canopy     2     1\n"))


def test_stats_with_redis_before_any_lookup(timber: Invoke, shared_redis: str) -> None:
    result = timber("cache", "stats")
    assert result.stdout.splitlines()[-1] == "no lookups counted yet"


def test_stats_json_is_one_document(timber: Invoke, shared_redis: str) -> None:
    _lookups_as_canopy(2)
    result = timber("cache", "stats", "--json")
    assert json.loads(result.stdout) == {"backend": "redis", "where": "Redis at 127.0.0.1:6379/0", "enabled": True,
                                         "namespaces": {"canopy": {"hits": 1, "misses": 1}}, "note": None}


def test_stats_with_the_cache_off_says_so(timber: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_CACHE", "off")
    TimberConfig.clear_cache()
    result = timber("cache", "stats")
    assert result.stderr == "Warning: the cache is off (TIMBER_CACHE=false): every read goes to the database\n"


def test_stats_with_redis_unreachable_is_one_error_line(timber: Invoke, monkeypatch: pytest.MonkeyPatch,
                                                         own_redis: Any) -> None:
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    TimberConfig.clear_cache()
    own_redis.stop()
    result = timber("cache", "stats")
    assert (result.exit_code, result.stderr) == (1, (
        f"Error: the cache's Redis at 127.0.0.1:{own_redis.port}/0 does not answer (Error 111 connecting to "
        f"127.0.0.1:{own_redis.port}. Connection refused.); start it or fix REDIS_URL\n"))
