"""The shared cache: in-process (bounded LRU) by default, Redis when ``REDIS_URL`` is set.

    from timber_core.cache import cache, cached

    total = cache.get_or_set("portfolio_total", lambda: compute(user_id), ttl=30, user_id=user_id)
    cache.invalidate("portfolio_total", user_id=user_id)      # after the write; runs after its commit

    class PortfolioService(BaseService):
        @cached("positions", ttl=30)
        def positions(self, user_id: str) -> list[dict]: ...

``cache`` is the current kernel's ``kernel.cache`` (looked up at each use, like the shared
services). Entries are the calling app's and user's: an app never reads another's. The
kernel caches its own reads too (users, notifications, sessions lists) and drops them after
each write commits. See docs/services.md, "Cache".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .service import Cache, cached

__all__ = ["Cache", "cache", "cached", "get_cache"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the CLI's command module imports this package, and `timber --help`
    # must not pay for SQLAlchemy.
    if name in ("Cache", "cached"):
        from . import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_cache() -> Cache:
    """Return the current kernel's cache; raise NotInitializedError before ``initialize_timber``."""
    from ..kernel import get_kernel

    return get_kernel().cache  # type: ignore[no-any-return]


class _CurrentCache:
    """The current kernel's :class:`Cache`, looked up at each attribute access."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_cache(), name)

    def __repr__(self) -> str:
        return "<timber_core.cache.cache: the current kernel's Cache>"


#: The current kernel's cache (``get_or_set``, ``invalidate``, ``forget_user``, ``stats``).
cache: Any = _CurrentCache()
