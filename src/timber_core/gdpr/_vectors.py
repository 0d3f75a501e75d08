"""A user's points in every vector collection: found by their payload's ``user_id``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["points_of", "delete_points_of"]


def _store(kernel: Kernel) -> Any:
    """The kernel's vector store, or None when no model has vector search (nothing was ever indexed)."""
    return kernel.vectors.store if kernel.vectors.models else None


def points_of(kernel: Kernel, user_id: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Return ``{collection: [(point id, payload), ...]}`` of the user's points, every collection scanned.

    Every collection, not only the registry's: a collection left by a removed app holds
    points of users too. Scanning is exact (no index needed) and GDPR requests are rare.
    """
    store = _store(kernel)
    if store is None:
        return {}
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name in store.collections():
        mine = sorted(((pid, p) for pid, p in store.scan(name) if str(p.get("user_id")) == user_id),
                      key=lambda point: point[0])
        if mine:
            found[name] = mine
    return found


def delete_points_of(kernel: Kernel, user_id: str) -> int:
    """Delete the user's points from every collection; return how many there were."""
    store = _store(kernel)
    if store is None:
        return 0
    total = 0
    for name, points in points_of(kernel, user_id).items():
        store.delete(name, [pid for pid, _payload in points])
        total += len(points)
    return total
