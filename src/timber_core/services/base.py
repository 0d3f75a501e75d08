"""``BaseService``: what every app service builds on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

    @contextmanager
    def acting_for(self, user_id: str, call: str) -> Iterator[str]:
        """Run the block for ``user_id`` (``user_context``); IsolationError if the caller acts for another user.

        What an app service taking a ``user_id`` enters instead of ``user_context(user_id)``, so
        that, like the shared services, it refuses to act for Bob inside ``user_context(alice)``.
        """
        from ..context import user_context
        from ._validate import check_acting_user

        check_acting_user(user_id, call)
        with user_context(user_id):
            yield user_id

    def check_user(self, user_id: str, call: str) -> None:
        """Raise IsolationError if the caller's ``user_context()`` acts for another user than ``user_id``."""
        from ._validate import check_acting_user

        check_acting_user(user_id, call)
