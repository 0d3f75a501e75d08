"""Configuration from the environment, read once, typed, with per-app subclasses.

    class GroveConfig(TimberConfig):
        MAX_REPORT_LENGTH = Setting("GROVE_MAX_REPORT_LENGTH", positive_int, 50_000)

    config = GroveConfig.load()       # read once per class, then cached
    config.DATABASE_URL, config.MAX_REPORT_LENGTH

A malformed value raises :class:`ConfigurationError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from .errors import ConfigurationError

__all__ = ["TimberConfig", "Setting", "boolean", "positive_int", "non_negative_int", "text", "drain_mode", "secret_keys", "encryption_keys",
           "debug_enabled"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def boolean(raw: str) -> bool:
    """Parse true/false, yes/no, on/off, 1/0 (any case)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false (also yes/no, on/off, 1/0)")


def _int(raw: str, minimum: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"expected a whole number of at least {minimum}")
    return value


def positive_int(raw: str) -> int:
    """Parse a whole number of at least 1."""
    return _int(raw, 1)


def non_negative_int(raw: str) -> int:
    """Parse a whole number of at least 0."""
    return _int(raw, 0)


def drain_mode(raw: str) -> str:
    """Parse ``inline`` or ``off`` (any case)."""
    value = raw.strip().lower()
    if value not in ("inline", "off"):
        raise ValueError("expected inline (drain right after each commit) or off (drain with `timber vectors sync`/`worker`)")
    return value


def vector_store_kind(raw: str) -> str:
    """Parse ``sqlite`` or ``edge`` (any case)."""
    value = raw.strip().lower()
    if value not in ("sqlite", "edge"):
        raise ValueError("expected sqlite (the default: one file, safe for many processes) or edge"
                         " (qdrant-edge HNSW, one process only)")
    return value


def secret_keys(raw: str) -> tuple[str, ...]:
    """Parse comma-separated keys of at least 32 characters each (the first signs, all verify)."""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    short = [i + 1 for i, k in enumerate(keys) if len(k) < 32]
    if short:
        raise ValueError(f"key number {', '.join(map(str, short))} is shorter than 32 characters; make one with "
                         "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return keys


def encryption_keys(raw: str) -> tuple[str, ...]:
    """Parse comma-separated encryption keys (url-safe base64 of 32 bytes, 44 characters, as Fernet's), newest first."""
    import base64
    import binascii

    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    bad = []
    for i, key in enumerate(keys):
        try:
            ok = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            bad.append(i + 1)
    if bad:
        raise ValueError(f"key number {', '.join(map(str, bad))} is not an encryption key (url-safe base64 of 32 bytes); "
                         "make one with `timber keys generate`")
    return keys


def text(raw: str) -> str | None:
    """Return the text, or None when it is empty."""
    return raw.strip() or None


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether ``TIMBER_DEBUG`` asks for full tracebacks (a malformed value counts as off).

    Read on each call, not cached: error reporting must work before (and without) a kernel.
    """
    raw = (os.environ if environ is None else environ).get("TIMBER_DEBUG", "")
    return raw.strip().lower() in _TRUE


class Setting(Generic[T]):
    """One environment variable: its name, how to parse it and its default."""

    def __init__(self, env: str, parse: Callable[[str], T], default: T, doc: str = "", secret: bool = False) -> None:
        self.env, self.parse, self.default, self.doc = env, parse, default, doc
        #: A secret's value is never repeated in an error message.
        self.secret = secret
        self.name = env

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        return obj._values[self.name]

    def read(self, environ: Mapping[str, str]) -> T:
        raw = environ.get(self.env)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            shown = self.env if self.secret else f"{self.env}={raw!r}"
            raise ConfigurationError(f"environment variable {shown} is malformed: {exc}") from None


class TimberConfig:
    """The kernel's settings; subclass it per app and add :class:`Setting` attributes."""

    DATABASE_URL = Setting("DATABASE_URL", text, None, "SQLAlchemy URL; unset: embedded SQLite under TIMBER_HOME")
    REDIS_URL = Setting("REDIS_URL", text, None, "Redis for the shared cache; unset: in-process cache")
    QDRANT_URL = Setting("QDRANT_URL", text, None, "Qdrant server; unset: embedded vector store under TIMBER_HOME")
    ENABLE_CACHE = Setting("TIMBER_CACHE", boolean, None,
                           "false: every read goes to the database; unset: on with Redis or SQLite, off on PostgreSQL "
                           "without REDIS_URL (an in-process cache is not shared between machines)")
    CACHE_TTL = Setting("TIMBER_CACHE_TTL", positive_int, 300, "seconds a cache entry lives at most")
    CACHE_MAX_ENTRIES = Setting("TIMBER_CACHE_MAX_ENTRIES", positive_int, 10_000,
                                "keys the in-process cache holds per process (least recently used dropped)")
    CACHE_PREFIX = Setting("TIMBER_CACHE_PREFIX", text, "timber",
                           "prefix of every Redis key of the cache (deployments sharing one Redis)")
    ENABLE_ENCRYPTION = Setting("ENABLE_ENCRYPTION", boolean, False,
                                "true: encrypted: true columns work; false: a kernel with any refuses to start")
    ENCRYPTION_KEYS = Setting("TIMBER_ENCRYPTION_KEYS", encryption_keys, (),
                              "AES-256-GCM keys of encrypted columns, comma-separated, newest first (the first encrypts, "
                              "all decrypt); unset: TIMBER_ENCRYPTION_KEY_FILE, else SQLite generates "
                              "$TIMBER_HOME/encryption_keys, PostgreSQL refuses", secret=True)
    ENCRYPTION_KEY_FILE = Setting("TIMBER_ENCRYPTION_KEY_FILE", text, None,
                                  "a file of encryption keys, one a line, newest first (when TIMBER_ENCRYPTION_KEYS is unset)")
    BLIND_INDEX_KEY = Setting("TIMBER_BLIND_INDEX_KEY", text, None,
                              "secret of at least 32 characters the blind-index HMAC keys derive from; unset: SQLite "
                              "generates $TIMBER_HOME/blind_index_key, PostgreSQL refuses", secret=True)
    ENABLE_VECTOR_SEARCH = Setting("ENABLE_VECTOR_SEARCH", boolean, True, "false: record no index work, search disabled")
    VECTOR_DRAIN = Setting("TIMBER_VECTOR_DRAIN", drain_mode, "inline",
                           "inline: index right after each commit; off: only `timber vectors sync`/`worker`")
    VECTOR_STORE = Setting("TIMBER_VECTOR_STORE", vector_store_kind, "sqlite",
                           "embedded store without QDRANT_URL: sqlite (many processes) or edge (one process)")
    ENABLE_GDPR = Setting("ENABLE_GDPR", boolean, False,
                          "false: timber_core.gdpr export_user/erase_user and `timber gdpr` refuse")
    DB_POOL_SIZE = Setting("DB_POOL_SIZE", positive_int, 10, "connections kept per process")
    DB_MAX_OVERFLOW = Setting("DB_MAX_OVERFLOW", non_negative_int, 5, "extra connections under load")
    DB_POOL_TIMEOUT = Setting("DB_POOL_TIMEOUT", positive_int, 30, "seconds to wait for a connection")
    CONNECT_TIMEOUT = Setting("TIMBER_CONNECT_TIMEOUT", positive_int, 10,
                              "seconds PostgreSQL may take to accept a new connection (libpq's minimum is 2)")
    LOCK_TIMEOUT_MS = Setting("TIMBER_LOCK_TIMEOUT_MS", non_negative_int, 5000,
                              "PostgreSQL: a statement waiting longer than this for a lock fails (55P03); 0: wait forever")
    STATEMENT_TIMEOUT_MS = Setting("TIMBER_STATEMENT_TIMEOUT_MS", non_negative_int, 30000,
                                   "PostgreSQL: a statement running longer than this is cancelled (57014); 0: no limit")
    DEBUG = Setting("TIMBER_DEBUG", boolean, False, "full tracebacks in command errors and database warnings")
    APP_INSTANCES = Setting("TIMBER_APP_INSTANCES", positive_int, 1, "processes per app, for timber doctor")
    MIGRATION_LOCK_TIMEOUT = Setting("TIMBER_MIGRATION_LOCK_TIMEOUT", positive_int, 300,
                                     "seconds to wait for another process's migration of the same database")
    TIMBER_HOME = Setting("TIMBER_HOME", str, ".timber", "directory of the embedded database and vectors")
    SECRET_KEYS = Setting("TIMBER_SECRET_KEYS", secret_keys, (),
                          "keys signing the web layer's access tokens, comma-separated: the first signs, all "
                          "verify (rotation); unset: SQLite generates $TIMBER_HOME/secret_key, PostgreSQL refuses",
                          secret=True)
    TOKEN_LIFETIME = Setting("TIMBER_TOKEN_LIFETIME", positive_int, 3600, "seconds an access token is valid")

    _cache: ClassVar[dict[type, TimberConfig]] = {}

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._values: dict[str, Any] = {}
        for name, setting in self.settings().items():
            self._values[name] = setting.read(env)

    @classmethod
    def settings(cls) -> dict[str, Setting[Any]]:
        """Return every setting of this class and its bases, by attribute name."""
        found: dict[str, Setting[Any]] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Setting):
                    found[name] = value
        return found

    @classmethod
    def load(cls) -> TimberConfig:
        """Return this class's configuration, read from the environment on first use."""
        if cls not in TimberConfig._cache:
            TimberConfig._cache[cls] = cls()
        return TimberConfig._cache[cls]

    @classmethod
    def clear_cache(cls) -> None:
        """Forget every class's loaded configuration: the next ``load()`` reads the environment again.

        ``timber_core.shutdown()`` calls it; call it directly after changing the environment
        while a kernel stays open.
        """
        TimberConfig._cache.clear()

    def as_dict(self) -> dict[str, Any]:
        """Return every setting's value by attribute name."""
        return dict(self._values)

    def __repr__(self) -> str:
        settings = self.settings()
        shown = {k: ("<hidden>" if settings[k].secret and v else v) for k, v in self._values.items()}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"
