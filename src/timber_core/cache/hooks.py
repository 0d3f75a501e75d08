"""What keeps the kernel's cached reads right when apps write through the ORM.

The shared services drop their entries themselves after each write. An app may also write
``User``, ``Session`` or ``Notification`` objects through an ORM session: each flush notes
the users whose entries those rows change, and the entries are dropped after the session's
commit (never on rollback). Raw SQL on those tables is not seen: use the services, or
``kernel.cache.drop``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from .service import KERNEL_NAMESPACE

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["install", "USER", "SESSIONS", "NOTIFICATIONS"]

#: The kernel's cache families (per user, namespace ``timber``).
USER, SESSIONS, NOTIFICATIONS = "user", "sessions", "notifications"


def install(kernel: Kernel) -> None:
    """Listen to the flushes of ``kernel.db``'s sessions and drop the kernel entries they change."""
    models = kernel.models
    families: dict[type, tuple[str, tuple[str, ...]]] = {}
    if "User" in models:
        families[models["User"]] = ("id", (USER, SESSIONS, NOTIFICATIONS))  # deleting a user cascades
    if "Session" in models:
        families[models["Session"]] = ("user_id", (SESSIONS,))
    if "Notification" in models:
        families[models["Notification"]] = ("user_id", (NOTIFICATIONS,))
    cache = kernel.cache
    db = kernel.db

    def after_flush(session: Any, _context: Any) -> None:
        changed: dict[str, set[str]] = {}
        for obj in (*session.new, *session.dirty, *session.deleted):
            found = families.get(type(obj))
            if found is None:
                continue
            user_id = getattr(obj, found[0], None)
            if isinstance(user_id, str):
                changed.setdefault(user_id, set()).update(found[1])
        for user_id, fams in changed.items():
            db.after_commit(_dropper(cache, user_id, sorted(fams)), session=session)

    event.listen(db.session_factory, "after_flush", after_flush)


def _dropper(cache: Any, user_id: str, families: list[str]) -> Any:
    return lambda: cache.drop(KERNEL_NAMESPACE, user_id, families)
