"""``timber.common.services.base.BaseService``: the kernel's BaseService under the document's names.

The design document's services call ``self._get_model(name)`` and are built as
``OrderService(db_manager)``; the kernel names the first ``get_model`` and deprecates the
second in favour of ``OrderService()``. This subclass adds only those two spellings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from timber_core.models.base import _CurrentDatabase
from timber_core.services.base import BaseService as _KernelBaseService

if TYPE_CHECKING:  # pragma: no cover
    from timber_core.db import DatabaseManager
    from timber_core.kernel import Kernel

__all__ = ["BaseService"]


class BaseService(_KernelBaseService):
    """:class:`timber_core.services.base.BaseService` taking the design document's spellings.

    ``Service(db_manager)`` is ``Service()`` (follows the current kernel, no warning: it is
    the document's form); ``self._get_model(name)`` is ``self.get_model(name)``.
    """

    def __init__(self, kernel: Kernel | Any = None, *, db: DatabaseManager | None = None) -> None:
        if isinstance(kernel, _CurrentDatabase):
            kernel = None
        super().__init__(kernel, db=db)

    def _get_model(self, name: str) -> type[Any]:
        return self.get_model(name)
