"""``BaseService``: what every app service builds on."""

from __future__ import annotations

from typing import Any

__all__ = ["BaseService"]


class BaseService:
    """A service with ``self.db`` (a DatabaseManager) and ``self._get_model(name)``.

    ``db`` may be a DatabaseManager, a Kernel (its database is used) or None
    (the current kernel's, looked up at each use). Every call runs in the
    caller's app context: models and rows of other apps stay out of reach.
    """

    def __init__(self, db: Any = None) -> None:
        from ..models.base import _CurrentDatabase, db_manager

        if db is None:
            db = db_manager
        elif not isinstance(db, _CurrentDatabase) and not hasattr(db, "session_scope"):
            db = db.db  # a Kernel: use its database
        self.db = db

    @property
    def kernel(self) -> Any:
        """The kernel this service's database belongs to."""
        return self.db.kernel

    def _get_model(self, name: str) -> type[Any]:
        """Return model ``name`` for the current app; raise IsolationError for another app's."""
        return self.kernel.get_model(name)  # type: ignore[no-any-return]
