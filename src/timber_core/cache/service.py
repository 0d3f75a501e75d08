"""``Cache``: the kernel's shared cache service (``kernel.cache``), on either backend.

Entries are addressed by (namespace, user, family, variant). The namespace is the calling
app (``platform`` in the platform context; ``timber`` for the kernel's own entries), so an
app never reads another app's entries; the user is the one the entry belongs to (``-`` for
none), so :meth:`Cache.forget_user` finds all of a user's entries; a family groups the
variants one invalidation drops together (e.g. every page and filter of a user's
notifications). Values are stored as bytes (:mod:`._codec`).

Consistency rules, each kept by a test:

- reads inside an open transaction (``session_scope()``/``connection()``) bypass the cache:
  they must see the transaction's own writes, and must not publish what may roll back;
- invalidation runs after the commit (``DatabaseManager.after_commit``), never on rollback;
- a fill started before an invalidation does not store what it read (backend tokens);
- misses are single-flight per key: one load per process, and with Redis one per key
  across processes (a short lock key; the others wait for the fill);
- a backend that fails (Redis down) is bypassed: the caller gets the database's answer,
  never an error; one warning per outage; recovery is automatic.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ..context import PLATFORM, current_app, current_user
from ..errors import ValidationError
from ._codec import CodecError, dumps, loads
from ._flight import Flights
from ._memory import MemoryBackend

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TimberConfig
    from ..db import DatabaseManager

__all__ = ["Cache", "cached", "KERNEL_NAMESPACE"]

log = logging.getLogger("timber.cache")

F = TypeVar("F", bound=Callable[..., Any])

#: The namespace of the kernel's own entries (users, sessions, notifications).
KERNEL_NAMESPACE = "timber"
#: How long a miss holds its cross-process load lock, and how long the others wait for its fill.
_LOCK_SECONDS = 2.0
_POLL_SECONDS = 0.005


def _user_part(user_id: str | None) -> str:
    # A digest, not the id: after a GDPR erase, the tombstones that stop in-flight fills
    # (``...:!`` and the ``...:g`` counters, a few minutes) must not name the user; no key
    # ever does. It also keeps ':' (allowed in ids) out of the key's parts.
    return "-" if user_id is None else hashlib.blake2b(user_id.encode(), digest_size=12).hexdigest()


def _enabled(config: TimberConfig, db: DatabaseManager | None) -> bool:
    """``TIMBER_CACHE`` when set; else on with Redis or the embedded SQLite, off on a server database.

    Without Redis the processes of one machine share invalidations through a stamp file in
    ``TIMBER_HOME``; processes of a server database may run on several machines, which would
    read each other's stale entries until the TTL: there the cache waits for ``REDIS_URL``
    (or ``TIMBER_CACHE=true``, for one machine).
    """
    if config.ENABLE_CACHE is not None:
        return bool(config.ENABLE_CACHE)
    return bool(config.REDIS_URL) or db is None or db.dialect == "sqlite"


class Cache:
    """The cache of one kernel: ``get_or_set``, ``invalidate``, ``forget_user``, ``stats``.

    Build it with :meth:`from_config`; ``kernel.cache`` is the kernel's. ``enabled=False``
    makes every read call its loader (and count nothing).
    """

    def __init__(self, backend: Any, *, ttl: float, prefix: str, db: DatabaseManager | None = None,
                 enabled: bool = True) -> None:
        self.backend = backend
        self.ttl = ttl
        self.prefix = prefix
        self.enabled = enabled
        self._db = db
        self._flights = Flights()
        self._counts_lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}

    @classmethod
    def from_config(cls, config: TimberConfig, db: DatabaseManager | None = None) -> Cache:
        """Return the cache ``config`` asks for: Redis at ``REDIS_URL``, else in-process (bounded LRU)."""
        if config.REDIS_URL:
            from ._redis import RedisBackend

            backend: Any = RedisBackend(config.REDIS_URL, config.CACHE_PREFIX)
        else:
            # The stamp file (and TIMBER_HOME) is made on the first invalidation, not at start-up.
            backend = MemoryBackend(config.CACHE_MAX_ENTRIES, os.path.join(config.TIMBER_HOME, "cache.stamp"))
        return cls(backend, ttl=config.CACHE_TTL, prefix=config.CACHE_PREFIX, db=db, enabled=_enabled(config, db))

    # -- the public API (the calling app's namespace)
    def get_or_set(self, key: str, loader: Callable[[], Any], ttl: float | None = None, *,
                   user_id: str | None = None) -> Any:
        """Return the value cached under ``key`` for the calling app and user, else ``loader()`` (cached).

        The user is ``user_id``, else the ``user_context()`` user, else none. ``ttl`` in seconds
        (default ``TIMBER_CACHE_TTL``). Inside an open transaction the loader runs and nothing
        is cached. Raise ValidationError for a malformed key, user or ttl, or a value the cache
        cannot store (only plain data, datetimes, Decimals, UUIDs and SQLAlchemy Rows).
        """
        namespace, user = self._caller("get_or_set", key, user_id)
        return self._lookup(namespace, user, key, "", loader, self._ttl(ttl), trusted=False)

    def invalidate(self, key: str, *, user_id: str | None = None) -> None:
        """Drop ``key`` (every variant of it) for the calling app and user, in every process.

        Inside an open transaction it happens after the commit, and not at all on rollback.
        """
        namespace, user = self._caller("invalidate", key, user_id)
        self.drop(namespace, user, [key])

    def forget_user(self, user_id: str) -> None:
        """Drop every entry of ``user_id`` in every namespace (every app's, the kernel's), in every process.

        What GDPR erase calls. Inside an open transaction it happens after the commit. With
        Redis down, it is sent when Redis answers again, before anything is read from it.
        """
        from ..services._validate import check_id

        check_id(user_id, "user_id", "forget_user")
        self._after_commit(KERNEL_NAMESPACE, self.backend.delete_prefix, f"{self.prefix}:u:{_user_part(user_id)}:")

    def stats(self) -> dict[str, dict[str, int]]:
        """Return ``{namespace: {"hits", "misses", "errors"}}`` counted by this process."""
        with self._counts_lock:
            return {ns: {"hits": c[0], "misses": c[1], "errors": c[2]} for ns, c in sorted(self._counts.items())}

    def shared_stats(self) -> dict[str, dict[str, int]] | None:
        """Return ``{namespace: {"hits", "misses"}}`` counted by every process on the same Redis.

        None for the in-process backend (each process counts its own: :meth:`stats`). Raise
        the backend's error when Redis does not answer.
        """
        shared = getattr(self.backend, "shared_stats", None)
        if shared is None:
            return None
        return {ns: {"hits": c.get("lookups", 0) - c.get("misses", 0), "misses": c.get("misses", 0)}
                for ns, c in sorted(shared().items())}

    def where(self) -> str:
        """Say where entries live, for messages: ``in-process`` or the Redis host, port and database."""
        display = getattr(self.backend, "display", None)
        return "in-process" if display is None else f"Redis at {display()}"

    @property
    def backend_name(self) -> str:
        """``"memory"`` or ``"redis"``."""
        return str(self.backend.name)

    def close(self) -> None:
        """Close the backend's connections (the in-process backend forgets its entries)."""
        self.backend.close()

    # -- for the kernel's services
    def lookup(self, namespace: str, user_id: str | None, family: str, variant: str,
               loader: Callable[[], Any], ttl: float | None = None) -> Any:
        """:meth:`get_or_set` for the kernel: namespace, user, family and variant given outright."""
        return self._lookup(namespace, user_id, family, variant, loader, self.ttl if ttl is None else ttl,
                            trusted=True)

    def drop(self, namespace: str, user_id: str | None, families: Iterable[str]) -> None:
        """Drop ``families`` of ``user_id`` in ``namespace`` once the caller's transaction commits."""
        keys = [self._key(namespace, user_id, f) for f in families]
        if keys and self.enabled:
            self._after_commit(namespace, self.backend.delete, keys)

    # -- inside
    def _after_commit(self, namespace: str, op: Callable[[Any], None], arg: Any) -> None:
        """Run the backend's ``op(arg)`` once the caller's transaction commits; a failure is counted, not raised."""

        def run() -> None:
            try:
                op(arg)
            except Exception:  # noqa: BLE001 - backend down: kept for recovery, counted
                self._count(namespace, 2)

        if self._db is None:
            run()
        else:
            self._db.after_commit(run)

    def _caller(self, call: str, key: Any, user_id: Any) -> tuple[str, str | None]:
        from ..services._validate import check_id

        if not isinstance(key, str) or not key or len(key) > 200:
            raise ValidationError(f"{call}: key must be a non-empty string of at most 200 characters; got {key!r:.60}")
        if user_id is not None:
            check_id(user_id, "user_id", call)
        app = current_app()
        return (PLATFORM if app == PLATFORM else app), (user_id if user_id is not None else current_user())

    @staticmethod
    def _ttl(ttl: Any) -> float | None:
        if ttl is None:
            return None
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= 86_400 * 30:
            raise ValidationError(f"ttl must be a number of seconds above 0 and at most 30 days; got {ttl!r}")
        return float(ttl)

    def _key(self, namespace: str, user_id: str | None, family: str) -> str:
        return f"{self.prefix}:u:{_user_part(user_id)}:{namespace}:{family}"

    def _count(self, namespace: str, which: int) -> None:
        with self._counts_lock:
            counts = self._counts.get(namespace)
            if counts is None:
                counts = self._counts[namespace] = [0, 0, 0]
            counts[which] += 1

    def _lookup(self, namespace: str, user_id: str | None, family: str, variant: str,
                loader: Callable[[], Any], ttl: float | None, *, trusted: bool) -> Any:
        if not self.enabled or (self._db is not None and self._db.in_transaction()):
            return loader()
        key = self._key(namespace, user_id, family)
        try:
            data, token, may_load = self.backend.get(key, variant, namespace, _LOCK_SECONDS)
        except Exception:  # noqa: BLE001 - backend down: the database answers
            self._count(namespace, 2)
            return self._flights.run(f"{key}\0{variant}", loader)
        if data is not None:
            try:
                value = loads(data)
            except Exception:  # noqa: BLE001 - unreadable entry: treat as a miss (and count it)
                self._count(namespace, 2)
            else:
                self._count(namespace, 0)
                return value
        self._count(namespace, 1)
        mark = f"{self.prefix}:u:{_user_part(user_id)}:!"
        return self._flights.run(f"{key}\0{variant}", lambda: self._fill(
            namespace, key, variant, loader, self.ttl if ttl is None else ttl, token, may_load, mark, trusted))

    def _fill(self, namespace: str, key: str, variant: str, loader: Callable[[], Any], ttl: float,
              token: Any, may_load: bool, mark: str, trusted: bool) -> Any:
        # Another process holds the key's load lock: wait for its fill; take the lock if it goes.
        deadline = time.monotonic() + _LOCK_SECONDS
        while not may_load and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            try:
                data, token, may_load = self.backend.get(key, variant, namespace, _LOCK_SECONDS)
            except Exception:  # noqa: BLE001
                self._count(namespace, 2)
                return loader()
            if data is not None:
                try:
                    return loads(data)
                except Exception:  # noqa: BLE001
                    break
        stored = False
        try:
            value = loader()
            try:
                data = dumps(value, trusted=trusted)
            except CodecError as exc:
                raise ValidationError(f"cache entry {variant or key.rsplit(':', 1)[-1]!r} of namespace "
                                      f"{namespace!r}: {exc}") from None
            try:
                self.backend.set(key, variant, data, ttl, token, namespace, mark)
                stored = True
            except Exception:  # noqa: BLE001
                self._count(namespace, 2)
            return value
        finally:
            if may_load and not stored:
                self.backend.release(key, variant, token)


def cached(family: str | None = None, *, ttl: float | None = None) -> Callable[[F], F]:
    """Cache an app service's read: ``@cached("portfolio", ttl=30)`` on a method.

    Entries are the calling app's, of the ``user_id`` argument (else the ``user_context()``
    user), one per set of arguments, all in family ``family`` (default: the function's
    qualified name): drop them with ``kernel.cache.invalidate(family, user_id=...)`` after a
    write. The cache is the service's kernel's (``self.kernel.cache``), else the current
    kernel's. Arguments go into the key with ``repr``: give values whose repr is stable.
    """
    Cache._ttl(ttl)

    def decorate(fn: F) -> F:
        name = family or f"{fn.__module__}.{fn.__qualname__}"
        signature = inspect.signature(fn)
        params = list(signature.parameters)
        bound_first = bool(params) and params[0] in ("self", "cls")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            owner = values.pop(params[0]) if bound_first else None
            kernel = getattr(owner, "kernel", None)
            if kernel is None:
                from ..kernel import get_kernel

                kernel = get_kernel()
            cache: Cache = kernel.cache
            user_id = values.get("user_id")
            namespace, user = cache._caller(name, name, user_id if isinstance(user_id, str) else None)
            variant = repr(sorted(values.items()))
            return cache._lookup(namespace, user, name, variant, lambda: fn(*args, **kwargs), cache._ttl(ttl),
                                 trusted=False)

        return wrapper  # type: ignore[return-value]

    return decorate
