"""``BaseService``: what every app service builds on."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..db import DatabaseManager
    from ..kernel import Kernel

__all__ = ["BaseService"]


class BaseService:
    """A service of a kernel: ``self.kernel``, ``self.db`` and ``self.get_model(name)``.

    Build it with the kernel it belongs to, ``Service(kernel)``: what the kernel's service
    registry passes to a ``timber_services()`` factory. ``Service()`` follows the current
    kernel instead, looked up at each use, so a module-level instance (``session_service``)
    keeps working when ``initialize_timber`` is called again. ``db`` (keyword) runs the
    service on another :class:`~timber_core.db.DatabaseManager` of the kernel (another
    PostgreSQL login; given alone, ``db.kernel`` is the kernel). Anything else raises
    TypeError. Every call runs in the caller's app context: models and rows of other apps
    stay out of reach.
    """

    def __init__(self, kernel: Kernel | None = None, *, db: DatabaseManager | None = None) -> None:
        from ..models.base import _CurrentDatabase, db_manager

        if kernel is None and db is None:  # module-level instances: imports nothing more
            self._kernel: Kernel | None = None
            self.db: Any = db_manager
            return
        from ..db import DatabaseManager
        from ..kernel import Kernel

        name = type(self).__name__
        # Deprecated (services.md documented them until issue 11): a DatabaseManager, or db_manager.
        if isinstance(kernel, DatabaseManager) and db is None:
            warnings.warn(f"{name}(db) with a DatabaseManager is deprecated: pass the kernel, {name}(kernel) "
                          f"(or {name}(kernel, db=db) to run on another database)", DeprecationWarning, stacklevel=2)
            kernel, db = kernel.kernel, kernel
        elif isinstance(kernel, _CurrentDatabase):
            warnings.warn(f"{name}(db_manager) is deprecated: use {name}(), which follows the current kernel",
                          DeprecationWarning, stacklevel=2)
            kernel = None
        if kernel is not None and not isinstance(kernel, Kernel):
            raise TypeError(f"{name}() takes the Kernel the service belongs to (what a timber_services() factory "
                            f"receives), or nothing for the current kernel; got {type(kernel).__name__} {kernel!r:.60}")
        if db is not None and not isinstance(db, DatabaseManager):
            raise TypeError(f"{name}(db=...) takes a timber_core.db.DatabaseManager; got {type(db).__name__}")
        self._kernel = kernel if kernel is not None else (db.kernel if db is not None else None)
        #: The DatabaseManager: ``session_scope()`` is the unit of work, ``connection()`` joins it.
        self.db = db if db is not None else (kernel.db if kernel is not None else db_manager)

    @property
    def kernel(self) -> Kernel:
        """The kernel this service belongs to (the current one for a service built without one)."""
        if self._kernel is not None:
            return self._kernel
        from ..kernel import get_kernel

        return get_kernel()

    def get_model(self, name: str) -> type[Any]:
        """Return model ``name`` if the caller's app context may use it: its own or a shared model.

        Raise IsolationError naming the owner for another app's private model, NotFoundError
        (with close names) for an unknown one. Call it in each method, not in ``__init__``: the
        context is the caller's, per call.
        """
        return self.kernel.get_model(name)

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
