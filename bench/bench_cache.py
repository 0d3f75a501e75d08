#!/usr/bin/env python
"""Cache benchmark (issue 13): the shared services' cached reads beside the same reads uncached.

On a scratch PostgreSQL database (``--database-url``, a server URL; the database is created
and dropped), one user with 50 notifications (20 unread). For each backend (in-process, and
Redis when ``--redis-url`` is given, under a key prefix of its own), in interleaved rounds
(the order flips each round) in one process:

* hits: ``get_user_notifications(user)`` and ``unread_count(user)`` with the entry warm,
  against the same call with the cache off (``kernel.cache.enabled = False``: straight to
  the database); reported as calls/s, median of the rounds, and the ratio (target >= 5x);
* misses: the same calls with the entry dropped before each call (dropping is not timed),
  against the cache off; reported as the extra time per call (target <= 10 %).

Wall time (perf_counter) and CPU time (process_time) are both printed.

    python bench/bench_cache.py --database-url postgresql://postgres@127.0.0.1:5432/test \\
        [--redis-url redis://127.0.0.1:6379/0] [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any


def _timed(fn: Callable[[], Any], calls: int, before: Callable[[], None] | None = None) -> tuple[float, float]:
    """Return (wall, cpu) seconds per call of ``fn``; ``before`` runs untimed before each call."""
    wall = cpu = 0.0
    for _ in range(calls):
        if before is not None:
            before()
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
    return wall / calls, cpu / calls


def _bench_backend(label: str, url: str, calls: int, rounds: int) -> list[str]:
    import timber_core
    from timber_core.cache.hooks import NOTIFICATIONS
    from timber_core.cache.service import KERNEL_NAMESPACE
    from timber_core.services.persistence import notification_service, user_service

    kernel = timber_core.initialize_timber("canopy", database_url=url, create_tables=True)
    tag = uuid.uuid4().hex[:8]
    user = user_service.create_user(f"bench_{tag}@example.com", f"bench_{tag}")
    for i in range(50):
        nid = notification_service.create_notification(user, "fill", f"Order {i} filled", f"message {i}",
                                                       {"order": i, "symbol": "AAPL"})
        if i >= 20:
            notification_service.mark_read(nid, user)
    cache = kernel.cache

    def drop() -> None:
        cache.drop(KERNEL_NAMESPACE, user, [NOTIFICATIONS])

    reads = {"get_user_notifications": lambda: notification_service.get_user_notifications(user),
             "unread_count": lambda: notification_service.unread_count(user)}
    lines = []
    for name, read in reads.items():
        results: dict[str, list[tuple[float, float]]] = {"off": [], "hit": [], "miss": [], "off_m": []}
        for r in range(rounds):
            order = ["off", "hit", "miss", "off_m"] if r % 2 == 0 else ["off_m", "miss", "hit", "off"]
            for kind in order:
                cache.enabled = kind in ("hit", "miss")
                if kind == "hit":
                    read()  # warm
                results[kind].append(_timed(read, calls, drop if kind in ("miss", "off_m") else None))
        cache.enabled = True

        def med(kind: str, i: int) -> float:
            return statistics.median(x[i] for x in results[kind])

        hit_ratio = med("off", 0) / med("hit", 0)
        miss_overhead = med("miss", 0) / med("off_m", 0) - 1
        lines.append(
            f"| {label} | {name} | {1 / med('off', 0):,.0f} | {1 / med('hit', 0):,.0f} | **{hit_ratio:.1f}x** "
            f"| {med('off', 1) / med('hit', 1):.1f}x | {med('off_m', 0) * 1e6:,.0f} | {med('miss', 0) * 1e6:,.0f} "
            f"| **{miss_overhead * 100:+.1f} %** | {(med('miss', 1) / med('off_m', 1) - 1) * 100:+.1f} % |")
    timber_core.shutdown()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL server URL (a scratch database is made)")
    parser.add_argument("--redis-url", default=None, help="also measure the Redis backend (a key prefix of its own)")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from timber_core.config import TimberConfig
    from timber_core.testing import scratch_database

    os.environ["TIMBER_HOME"] = tempfile.mkdtemp(prefix="timber-bench-cache-")
    lines = []
    backends = [("in-process", None)] + ([("Redis", args.redis_url)] if args.redis_url else [])
    for label, redis_url in backends:
        prefix = f"timber_bench_{uuid.uuid4().hex[:8]}"
        if redis_url:
            os.environ["REDIS_URL"], os.environ["TIMBER_CACHE_PREFIX"] = redis_url, prefix
        else:
            os.environ.pop("REDIS_URL", None)
        TimberConfig.clear_cache()
        with scratch_database(args.database_url) as url:
            lines += _bench_backend(label, url, args.calls, args.rounds)
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
    print(f"calls per round {args.calls}, rounds {args.rounds}, Python {sys.version.split()[0]}")
    print("| backend | read | uncached calls/s | hit calls/s | hit speed-up (wall) | (CPU) "
          "| uncached µs | miss µs | miss overhead (wall) | (CPU) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
