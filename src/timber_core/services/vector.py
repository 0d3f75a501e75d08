"""Search by meaning over the models with ``vector_search``, each app within its own data.

    from timber_core.services.vector import vector_service
    hits = vector_service.search("AAPL earnings beat expectations", "research_sessions",
                                 filter_dict={"user_id": user_id}, limit=5)
    hits[0] == {"id": "<row id>", "score": 0.71, "app": "grove", "model": "ResearchSession",
                "collection": "research_sessions",
                "payload": {"app": "grove", "model": "ResearchSession", "row_id": "<row id>",
                            "user_id": "<user>", "content": "<the notes>", "content_field": "notes"}}

A collection is a vector-enabled model's table. The service, never the caller, filters
every search by the calling app (``app == current app``; the platform context has no
app filter) and by the user: ``filter_dict["user_id"]`` when given, else the
``user_context()`` user when one is set. Results follow the index, which the outbox
keeps in step with the database (see :mod:`timber_core.vectors.drain`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..context import PLATFORM, current_app, current_user
from ..errors import ConfigurationError, IsolationError, NotFoundError, ValidationError
from ..vectors.outbox import INDEXED_FIELDS, IndexedModel
from ._validate import check_acting_user, check_id, check_limit
from .base import BaseService

__all__ = ["VectorService", "vector_service"]

_MAX_QUERY = 10_000


class VectorService(BaseService):
    """``search`` within the caller's collections; ``unified_search`` across apps (platform only)."""

    def _runtime(self) -> Any:
        runtime = self.kernel.vectors
        if not runtime.enabled:
            raise ConfigurationError(
                "vector search is disabled (ENABLE_VECTOR_SEARCH=false): nothing is indexed; "
                "set ENABLE_VECTOR_SEARCH=true and run `timber vectors reindex`"
            )
        return runtime

    def collections(self) -> list[str]:
        """Return the collections the calling app may search: its own and the shared ones (all in the platform)."""
        runtime = self._runtime()
        app = current_app()
        return sorted(m.collection for m in runtime.models.values()
                      if app == PLATFORM or m.app == app or m.shared)

    def _collection(self, runtime: Any, name: Any, call: str) -> IndexedModel:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{call}: collection_name must be a collection name, not {name!r}")
        app = current_app()
        try:
            model: IndexedModel = runtime.model_for_collection(name)
        except NotFoundError:
            raise NotFoundError(
                f"{call}: no vector collection {name!r}; app {app!r} may search: "
                f"{', '.join(self.collections()) or 'none'}"
            ) from None
        if app != PLATFORM and model.app != app and not model.shared:
            raise IsolationError(
                f"{call}: app {app!r} may not search collection {name!r}: it holds model {model.name} of app "
                f"{model.app!r}. Search your own collections ({', '.join(self.collections()) or 'none'}), or "
                f"run cross-app search in timber_core.platform_context() (unified_search)"
            )
        return model

    def _filter(self, filter_dict: Mapping[str, Any] | None, call: str) -> dict[str, Any]:
        if filter_dict is None:
            filter_dict = {}
        if not isinstance(filter_dict, Mapping):
            raise ValidationError(f"{call}: filter_dict must be a dict, not {type(filter_dict).__name__}")
        for key, value in filter_dict.items():
            if key not in INDEXED_FIELDS:
                raise ValidationError(
                    f"{call}: cannot filter on {key!r}: it is not an indexed field; indexed fields: "
                    f"{', '.join(INDEXED_FIELDS)}"
                )
            values = value if isinstance(value, (list, tuple)) else [value]
            if not values or not all(isinstance(v, str) and v for v in values):
                raise ValidationError(f"{call}: filter_dict[{key!r}] must be a string or a non-empty list of "
                                      f"strings, not {value!r}")
        must = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in filter_dict.items()}
        app = current_app()
        if app != PLATFORM:
            asked = must.get("app", app)
            if asked != app:
                raise IsolationError(f"{call}: app {app!r} may not search app {asked!r}'s points; leave 'app' "
                                     f"out, Timber filters by the calling app")
            must["app"] = app
        user = current_user()
        if user is not None:  # in the platform context too: the block acts for one user
            check_acting_user(must.get("user_id", user), call, "filter_dict['user_id']")
            must["user_id"] = user
        return must

    def search(self, query: str, collection_name: str, filter_dict: Mapping[str, Any] | None = None,
               limit: int = 10) -> list[dict[str, Any]]:
        """Return the ``limit`` rows of ``collection_name`` closest in meaning to ``query``, best first.

        Each hit: ``{"id", "score", "app", "model", "collection", "payload"}``. Raise
        ValidationError for an empty query, a bad limit or a filter on a field that is
        not indexed (``app``, ``model``, ``user_id`` are); NotFoundError for an unknown
        collection (listing the caller's); IsolationError for another app's collection.
        """
        call = "search"
        query = _check_query(query, call)
        limit = check_limit(limit, "limit", call, 1000) or 10
        runtime = self._runtime()
        model = self._collection(runtime, collection_name, call)
        must = self._filter(filter_dict, call)
        vector = runtime.embedder(model.embedding_model).embed_query(query)
        runtime.ensure_collection(model)
        hits = runtime.store.search(model.collection, vector, must=must or None, limit=limit)
        return [_hit(model.collection, h) for h in hits]

    def unified_search(self, user_id: str, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Search every vector collection ``user_id`` has points in; merge by score; tag each hit with its app.

        Only in ``timber_core.platform_context()`` (cross-app reads are explicit);
        elsewhere raise IsolationError, as for a ``user_id`` other than the ``user_context()`` user.
        """
        call = "unified_search"
        if current_app() != PLATFORM:
            raise IsolationError(
                f"{call}: app {current_app()!r} may not search other apps' data; call it inside "
                f"timber_core.platform_context(), or use search() on your own collections"
            )
        check_id(user_id, "user_id", call)
        check_acting_user(user_id, call)
        query = _check_query(query, call)
        limit = check_limit(limit, "limit", call, 1000) or 20
        runtime = self._runtime()
        store = runtime.store
        existing = set(store.collections())
        vectors: dict[str, list[float]] = {}
        merged: list[dict[str, Any]] = []
        for model in sorted(runtime.models.values(), key=lambda m: m.collection):
            if model.collection not in existing or store.count(model.collection, must={"user_id": user_id}) == 0:
                continue
            if model.embedding_model not in vectors:
                vectors[model.embedding_model] = runtime.embedder(model.embedding_model).embed_query(query)
            hits = store.search(model.collection, vectors[model.embedding_model], must={"user_id": user_id},
                                limit=limit)
            merged.extend(_hit(model.collection, h) for h in hits)
        merged.sort(key=lambda h: (-h["score"], h["collection"], h["id"]))
        return merged[:limit]


def _check_query(query: Any, call: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise ValidationError(f"{call}: query must be non-empty text to search for, not {query!r:.60}")
    if len(query) > _MAX_QUERY:
        raise ValidationError(f"{call}: query is {len(query)} characters long; the limit is {_MAX_QUERY}")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{call}: query is not valid Unicode text: it holds a lone surrogate {query[exc.start]!r} at index "
            f"{exc.start}, which cannot be encoded as UTF-8; decode the text from its bytes with errors='replace' "
            f"before searching") from None
    return query


def _hit(collection: str, hit: Any) -> dict[str, Any]:
    payload = dict(hit.payload)
    return {"id": str(payload.get("row_id", hit.id)), "score": float(hit.score), "app": payload.get("app"),
            "model": payload.get("model"), "collection": collection, "payload": payload}


vector_service = VectorService()
