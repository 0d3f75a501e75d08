"""``from timber.common.models.base import db_manager``: :data:`timber_core.models.base.db_manager`."""

from timber_core.models.base import db_manager

__all__ = ["db_manager"]
