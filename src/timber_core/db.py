"""Engines, pools and ``session_scope()``: the kernel's one way into the database.

SQLite (the embedded default) gets foreign keys enforced and WAL journaling;
PostgreSQL goes through psycopg 3. Every ORM session is made by one
``sessionmaker`` on which :mod:`timber_core.isolation` installs its guards.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from .errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

__all__ = ["DatabaseManager", "normalize_url", "embedded_url"]

log = logging.getLogger("timber.db")


def embedded_url(home: str) -> str:
    """Return the URL of the embedded SQLite database under ``home`` (created if missing)."""
    os.makedirs(home, exist_ok=True)
    return f"sqlite:///{os.path.abspath(os.path.join(home, 'timber.db'))}"


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; plain ``postgresql://`` URLs get the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            f"database URL {str(url)!r} cannot be parsed ({exc}); use e.g. "
            f"postgresql://user@127.0.0.1:5432/db or sqlite:///path/timber.db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: Timber supports "
            f"sqlite and postgresql, not {parsed.get_backend_name()}"
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class DatabaseManager:
    """One engine and one session factory; ``session_scope()`` is the unit of work."""

    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 10,
        max_overflow: int = 5,
        pool_timeout: int = 30,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self.kernel: Kernel | None = None
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
        if self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if self.url.database and self.url.database != ":memory:":
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        # expire_on_commit=False: objects returned from a scope stay readable after it.
        self.session_factory: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for logs and messages."""
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Session]:
        """Yield an ORM session in the current app context; commit on success, roll back on error."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """Yield a Core connection in a transaction (committed on success) in the current app context."""
        with self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
