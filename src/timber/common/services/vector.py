"""``timber.common.services.vector``: :mod:`timber_core.services.vector`, re-exported."""

from timber_core.services.vector import VectorService, vector_service

__all__ = ["VectorService", "vector_service"]
