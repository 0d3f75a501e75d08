"""``GET /health``: is the database reachable and migrated for this app, and the vector store reachable?

Also the cache's backend, whether it answers, and this process's counters per namespace. A
cache that does not answer does not fail the check: reads go to the database meanwhile.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ..apps import KERNEL_APP
from ..context import platform_context

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["health_report"]

log = logging.getLogger("timber.web")


def _database(kernel: Kernel, app: str) -> str | None:
    from ..migrations import runner

    try:
        with kernel.db.connection() as conn:
            conn.execute(text("SELECT 1"))
        with platform_context():
            statuses = {s.app: s for s in runner.status(kernel)}
    except Exception as exc:  # noqa: BLE001 -- reported as the failing part, logged in full
        log.warning("health: database check failed", exc_info=exc)
        return f"unreachable: {type(exc).__name__}"
    behind = [f"{name} (pending {', '.join(statuses[name].pending)})"
              for name in (KERNEL_APP, app) if name in statuses and statuses[name].pending]
    if behind:
        return f"not migrated: {'; '.join(behind)}; run `timber migrate`"
    return None


def _vectors(kernel: Kernel) -> str | None:
    if not kernel.config.ENABLE_VECTOR_SEARCH:
        return None
    try:
        kernel.vectors.store.collections()
    except Exception as exc:  # noqa: BLE001
        log.warning("health: vector store check failed", exc_info=exc)
        return f"unreachable: {type(exc).__name__}"
    return None


def _cache(kernel: Kernel) -> dict[str, Any]:
    cache = kernel.cache
    if not cache.enabled:
        status = "off"
    elif cache.backend.available():
        status = "ok"
    else:
        status = "unavailable: reads go to the database"
    return {"backend": cache.backend_name, "status": status, "namespaces": cache.stats()}


def health_report(kernel: Kernel, app: str) -> tuple[int, dict[str, Any]]:
    """Return 200 and ``{"status": "ok", "app": ..., "checks": {...}, "cache": {...}}``, or 503 naming each failing part.

    ``cache`` is ``{"backend": "memory"|"redis", "status": "ok"|"off"|"unavailable: ...",
    "namespaces": {ns: {"hits", "misses", "errors"}}}`` (this process's counters); it never fails the check.
    """
    checks = {"database": _database(kernel, app), "vectors": _vectors(kernel)}
    failing = {k: v for k, v in checks.items() if v is not None}
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "app": app,
                            "checks": {k: (v or "ok") for k, v in checks.items()}, "cache": _cache(kernel)}
    return (200 if not failing else 503), body
