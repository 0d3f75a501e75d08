"""``db_manager``: the current kernel's database, importable before initialization.

    from timber_core.models.base import db_manager
    with db_manager.session_scope() as session: ...

Every attribute is looked up on the kernel made by the last
``initialize_timber`` at the time of use. A module-level service needs none of
it: ``OrderService()`` (no kernel) follows the current kernel the same way.
"""

from __future__ import annotations

from typing import Any

__all__ = ["db_manager"]


class _CurrentDatabase:
    """A stand-in for the current kernel's :class:`~timber_core.db.DatabaseManager`."""

    def _target(self) -> Any:
        from ..kernel import get_kernel

        return get_kernel().db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return "<db_manager: the current Timber kernel's database>"


db_manager: Any = _CurrentDatabase()
