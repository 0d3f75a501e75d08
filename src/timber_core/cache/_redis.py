"""The Redis backend (redis-py): hashes of bytes, conditional fills, and what to do when Redis is down.

Layout under the prefix ``P``: ``P:u:<user>:<namespace>:<family>`` (``<user>``: a digest of the id) is a hash (field: the
variant, value: the bytes) with the entry's TTL; ``...:g`` beside it counts the key's
invalidations, so that a fill started before an invalidation does not store what it read
(the fill is a script that compares the count); ``P:u:<user>:!`` marks a user just forgotten;
``...:lock`` is a miss's load lock; ``P:stats`` counts lookups and misses per namespace.

Redis down: every call raises :class:`CacheUnavailable` at once (no waiting) for
``retry_after`` seconds after a failure, then tries again. Invalidations that could not be
sent are kept (bounded) and sent when Redis answers again, before anything is read from it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RedisBackend", "CacheUnavailable"]

log = logging.getLogger("timber.cache")

#: How long an invalidation count and a forgotten-user mark outlive the write (longer than any load).
_GEN_TTL_MS = 3_600_000
_FORGOTTEN_TTL_MS = 600_000
#: Invalidations kept while Redis is down; past this, the whole prefix is cleared on recovery.
_PENDING_LIMIT = 10_000

# One round trip per step of a lookup: read (and on a miss take the load lock), then fill (and
# give the lock back).
_GET = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
local g = redis.call('GET', KEYS[2]) or ''
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
if v then return {v, g, 0} end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4]) then return {false, g, 1} end
return {false, g, 0}
"""
_SET_IF = """
if redis.call('GET', KEYS[5]) == ARGV[6] then redis.call('DEL', KEYS[5]) end
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class CacheUnavailable(Exception):
    """Redis did not answer (or did, within ``retry_after`` seconds of a failure); go to the database."""


def _escape(pattern: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in pattern)


class RedisBackend:
    """The backend API of :class:`~timber_core.cache._memory.MemoryBackend` on a Redis server."""

    name = "redis"

    def __init__(self, url: str, prefix: str, *, timeout: float = 0.5, retry_after: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.retry_after = retry_after
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0), retry_on_timeout=False)
        self._get = self.client.register_script(_GET)
        self._set_if = self.client.register_script(_SET_IF)
        self._release = self.client.register_script(_RELEASE)
        self._state = threading.Lock()
        self._down_until = 0.0
        self._down = False
        self._pending: set[str] = set()
        self._pending_prefixes: set[str] = set()
        self._overflow = False
        self.stats_key = f"{prefix}:stats"

    # -- outage handling
    def _call(self, fn: Any, *args: Any) -> Any:
        if self._down and time.monotonic() < self._down_until:
            raise CacheUnavailable("Redis is down")
        try:
            if self._down:
                self._recover()
            return fn(*args)
        except redis.RedisError as exc:
            self._failed(exc)
            raise CacheUnavailable(str(exc)) from exc

    def _failed(self, exc: BaseException) -> None:
        with self._state:
            first = not self._down
            self._down = True
            self._down_until = time.monotonic() + self.retry_after
        if first:
            log.warning("Warning: the cache's Redis at %s is unavailable (%s: %s); reads and writes go to the "
                        "database until it answers again", self.display(), type(exc).__name__, exc)

    def _recover(self) -> None:
        """Send the invalidations kept during the outage; then Redis may be read again."""
        self.client.ping()  # still down: raise before anything else, the outage goes on
        with self._state:
            keys, prefixes, overflow = list(self._pending), list(self._pending_prefixes), self._overflow
        if overflow:
            self._delete_matching(f"{self.prefix}:u:")
        for prefix in prefixes:
            self._forget(prefix)
        if keys:
            self._invalidate(keys)
        with self._state:
            self._pending.difference_update(keys)
            self._pending_prefixes.difference_update(prefixes)
            self._overflow = self._overflow and not overflow
            self._down = False
        log.info("the cache's Redis at %s answers again; %d invalidations kept during the outage "
                    "were sent%s", self.display(), len(keys) + len(prefixes),
                    " and every entry was dropped" if overflow else "")  # the outage's end, once

    def _keep(self, keys: list[str] = (), prefix: str | None = None) -> None:  # type: ignore[assignment]
        with self._state:
            if prefix is not None:
                self._pending_prefixes.add(prefix)
            self._pending.update(keys)
            if len(self._pending) + len(self._pending_prefixes) > _PENDING_LIMIT:
                self._pending.clear()
                self._pending_prefixes.clear()
                self._overflow = True

    def display(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    # -- the backend API
    def get(self, key: str, field: str, namespace: str, lock_seconds: float = 0) -> tuple[bytes | None, Any, bool]:
        """Return (bytes or None, fill token, whether this call took the key's load lock).

        On a miss, the load lock of ``key``/``field`` is taken for ``lock_seconds`` when free:
        the caller then loads and :meth:`set` gives it back; else another process loads.
        """
        token = uuid.uuid4().hex
        data, gen, locked = self._call(self._get, [key, f"{key}:g", self._lock_key(key, field), self.stats_key],
                                       [field, f"{namespace}:lookups", token, max(1, int(lock_seconds * 1000))])
        return data, (gen or b"", token if locked else ""), bool(locked)

    @staticmethod
    def _lock_key(key: str, field: str) -> str:
        return f"{key}:lock:{field}"

    def set(self, key: str, field: str, data: bytes, ttl: float, token: Any, namespace: str, user_mark: str) -> bool:
        """Store unless ``key`` was invalidated (or its user forgotten) since ``token``; count the miss.

        Gives back the load lock taken by the :meth:`get` that gave ``token``.
        """
        gen, lock_token = token
        return bool(self._call(self._set_if, [key, f"{key}:g", user_mark, self.stats_key,
                                              self._lock_key(key, field)],
                               [gen, field, data, max(1, int(ttl * 1000)), f"{namespace}:misses", lock_token]))

    def release(self, key: str, field: str, token: Any) -> None:
        """Give back the load lock (a load that failed, so :meth:`set` did not run)."""
        if not token[1]:
            return
        try:
            self._call(self._release, [self._lock_key(key, field)], [token[1]])
        except CacheUnavailable:
            pass  # it expires by itself

    def _invalidate(self, keys: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(*keys)
        for key in keys:
            pipe.incr(f"{key}:g")
            pipe.pexpire(f"{key}:g", _GEN_TTL_MS)
        pipe.execute()

    def delete(self, keys: list[str]) -> None:
        """Drop ``keys`` for every process; kept for later when Redis is down (then CacheUnavailable)."""
        try:
            self._call(self._invalidate, keys)
        except CacheUnavailable:
            self._keep(keys)
            raise

    def _delete_matching(self, prefix: str) -> None:
        batch: list[str] = []
        for key in self.client.scan_iter(match=_escape(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                self.client.delete(*batch)
                batch.clear()
        if batch:
            self.client.delete(*batch)

    def _forget(self, prefix: str) -> None:
        self.client.set(f"{prefix}!", b"1", px=_FORGOTTEN_TTL_MS)
        data_keys = [k for k in self.client.scan_iter(match=_escape(prefix) + "*", count=1000)
                     if not k.endswith((b":g", b"!")) and b":lock:" not in k]
        self._delete_matching(prefix)
        if data_keys:  # a fill in flight for one of them must not store what it read
            self._invalidate([k.decode() for k in data_keys])
        self.client.set(f"{prefix}!", b"1", px=_FORGOTTEN_TTL_MS)

    def delete_prefix(self, prefix: str) -> None:
        """Drop every key under ``prefix`` (a user's); kept for later when Redis is down."""
        try:
            self._call(self._forget, prefix)
        except CacheUnavailable:
            self._keep(prefix=prefix)
            raise

    def available(self) -> bool:
        """Return whether Redis answers a PING now."""
        try:
            self._call(self.client.ping)
        except CacheUnavailable:
            return False
        return True

    def shared_stats(self) -> dict[str, dict[str, int]]:
        """Return lookups and misses per namespace, counted by every process using this Redis."""
        raw = self._call(self.client.hgetall, self.stats_key)
        out: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            ns, _, what = field.decode().rpartition(":")
            out.setdefault(ns, {"lookups": 0, "misses": 0})[what] = int(value)
        return out

    def size(self) -> int:
        """Return the number of keys under the prefix (a SCAN: for the CLI, not hot paths)."""
        return sum(1 for _ in self._call(lambda: list(self.client.scan_iter(match=_escape(self.prefix) + ":u:*",
                                                                              count=1000))))

    def close(self) -> None:
        """Close the connections."""
        self.client.close()
