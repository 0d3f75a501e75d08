"""Vector store on ``qdrant-client``: a Qdrant server or cluster (``QDRANT_URL``).

The same code path runs against qdrant-client's in-process mode (``location=":memory:"``
or ``path=...``), which speaks the server's API; tests use it. Differences handled here:

- Payload indexes: on a server every indexed field gets a keyword index, ``app`` with
  ``is_tenant=True`` (Qdrant co-locates a tenant's points). The local mode has no payload
  indexes (it would only warn), so none are created there; filtering still works.
- The indexed fields of a collection are recorded in the collection's ``metadata``
  (``timber_indexed_fields``), which both the server and the local mode persist; on a
  server the payload schema is merged in as well.
- Connection failures raise VectorSearchError naming the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from timber_core.errors import ConfigurationError, VectorSearchError
from timber_core.vectors.store import (
    ID_KEY,
    FilterValue,
    Hit,
    Point,
    VectorStore,
    check_collection_name,
    check_filter,
    check_limit,
    check_vector,
    hit_from,
    payload_for,
    qdrant_id,
    stored_payload,
    unknown_collection_error,
)

__all__ = ["QdrantServerStore", "TENANT_FIELDS"]

#: Indexed fields that get ``is_tenant=True`` on a real server.
TENANT_FIELDS = frozenset({"app"})

_META_KEY = "timber_indexed_fields"
_UPSERT_BATCH = 512
T = TypeVar("T")


def _qdrant() -> tuple[Any, Any]:
    try:
        from qdrant_client import QdrantClient, models
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "the Qdrant server vector store needs qdrant-client: pip install 'timber-core[vectors]'"
        ) from exc
    return QdrantClient, models


class QdrantServerStore(VectorStore):
    """Vector store backed by qdrant-client.

    Give exactly one of: ``url`` (a server, e.g. ``http://qdrant:6333``), ``client`` (a
    ready ``QdrantClient``; this store closes it), ``location`` (``":memory:"``) or
    ``path`` (local mode on disk, one process).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any | None = None,
        location: str | None = None,
        path: str | None = None,
        timeout: int = 10,
    ) -> None:
        given = [n for n, v in (("url", url), ("client", client), ("location", location), ("path", path)) if v]
        if len(given) != 1:
            raise ConfigurationError(
                "QdrantServerStore needs exactly one of url, client, location, path;"
                f" got {', '.join(given) if given else 'none'}"
            )
        QdrantClient, _ = _qdrant()
        self.url = url
        self._dims: dict[str, int] = {}
        self._fields: dict[str, list[str]] = {}
        if client is not None:
            self._client = client
            self.where = "the given Qdrant client"
        elif url:
            self._client = QdrantClient(url=url, timeout=timeout, check_compatibility=False)
            self.where = f"the Qdrant server at {url}"
        else:
            self.where = f"local Qdrant {location or path}"
            try:
                self._client = QdrantClient(location=location) if location else QdrantClient(path=path)
            except RuntimeError as exc:
                raise VectorSearchError(
                    f"cannot open {self.where}: {exc}. Local Qdrant storage belongs to one process;"
                    " several processes need a Qdrant server (QDRANT_URL)"
                ) from exc
        self.is_server = type(getattr(self._client, "_client", None)).__name__ != "QdrantLocal"

    # -- helpers -----------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T], collection: str | None = None) -> T:
        """Run a client call, turning failures into VectorSearchError.

        With ``collection``, a "not found" answer (the collection was dropped by another
        client since it was cached) becomes the unknown-collection error.
        """
        if self._client is None:
            raise VectorSearchError(f"{self.where} is closed; cannot {what}")
        try:
            return fn()
        except (VectorSearchError, ConfigurationError):
            raise
        except Exception as exc:
            if collection is not None and (
                getattr(exc, "status_code", None) == 404
                or (isinstance(exc, ValueError) and f"Collection {collection} not found" in str(exc))
            ):
                self._dims.pop(collection, None)
                self._fields.pop(collection, None)
                raise unknown_collection_error(collection, self.collections()) from exc
            kind = type(exc).__name__
            if kind in {"ResponseHandlingException", "ConnectError", "ConnectTimeout", "ReadTimeout",
                        "ConnectionError", "ConnectionRefusedError", "TimeoutError", "RpcError"} or isinstance(
                exc, (OSError, ConnectionError)
            ):
                raise VectorSearchError(
                    f"cannot reach {self.where} while trying to {what}: {exc}. Check that the"
                    " server is running and QDRANT_URL is right"
                ) from exc
            raise VectorSearchError(f"{self.where} failed to {what}: {exc}") from exc

    def _info(self, name: str) -> tuple[int, list[str]]:
        """(dim, indexed fields) of ``name``; raises the unknown-collection error."""
        check_collection_name(name)
        if name in self._dims:
            return self._dims[name], self._fields[name]
        if not self._call(f"look up collection {name!r}", lambda: self._client.collection_exists(name)):
            raise unknown_collection_error(name, self.collections())
        info = self._call(f"read collection {name!r}", lambda: self._client.get_collection(name))
        vectors = info.config.params.vectors
        dim = int(vectors.size)
        fields = set((info.config.metadata or {}).get(_META_KEY, []))
        fields |= set((info.payload_schema or {}).keys())
        self._dims[name], self._fields[name] = dim, sorted(fields)
        return dim, self._fields[name]

    def _filter(self, name: str, must: Mapping[str, FilterValue] | None) -> Any:
        _, models = _qdrant()
        _, fields = self._info(name)
        conditions = check_filter(name, must, fields)
        if not conditions:
            return None
        return models.Filter(
            must=[
                models.FieldCondition(
                    key=key,
                    match=models.MatchAny(any=value) if isinstance(value, list) else models.MatchValue(value=value),
                )
                for key, value in conditions.items()
            ]
        )

    def _create_index(self, name: str, field_name: str) -> None:
        """Keyword-index ``field_name`` on a server; a no-op in local mode (which has no
        payload indexes: it filters by scanning, and the field list lives in metadata)."""
        if not self.is_server:
            return
        _, models = _qdrant()
        schema = models.KeywordIndexParams(
            type=models.KeywordIndexType.KEYWORD, is_tenant=(field_name in TENANT_FIELDS) or None
        )
        self._call(
            f"index field {field_name!r} of collection {name!r}",
            lambda: self._client.create_payload_index(name, field_name, field_schema=schema, wait=True),
        )

    # -- interface ---------------------------------------------------------------
    def ensure_collection(self, name: str, dim: int, indexed_fields: Sequence[str]) -> None:
        _, models = _qdrant()
        check_collection_name(name)
        exists = self._call(f"look up collection {name!r}", lambda: self._client.collection_exists(name))
        if not exists:
            self._call(
                f"create collection {name!r}",
                lambda: self._client.create_collection(
                    name,
                    vectors_config=models.VectorParams(size=int(dim), distance=models.Distance.COSINE),
                    metadata={_META_KEY: sorted(set(indexed_fields))},
                ),
            )
            for field_name in sorted(set(indexed_fields)):
                self._create_index(name, field_name)
            self._dims[name], self._fields[name] = int(dim), sorted(set(indexed_fields))
            return
        current_dim, fields = self._info(name)
        if current_dim != int(dim):
            raise VectorSearchError(
                f"vector collection {name!r} has vectors of size {current_dim}, not {dim};"
                " drop and reindex it to change the embedding model"
            )
        missing = sorted(set(indexed_fields) - set(fields))
        if missing:
            for field_name in missing:
                self._create_index(name, field_name)
            merged = sorted(set(fields) | set(missing))
            self._call(
                f"update collection {name!r}",
                lambda: self._client.update_collection(name, metadata={_META_KEY: merged}),
            )
            self._fields[name] = merged

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        _, models = _qdrant()
        dim, _ = self._info(name)
        if not points:
            return
        structs = [
            models.PointStruct(id=qdrant_id(p.id), vector=check_vector(name, p.vector, dim), payload=payload_for(p))
            for p in points
        ]
        for start in range(0, len(structs), _UPSERT_BATCH):
            batch = structs[start : start + _UPSERT_BATCH]
            self._call(f"upsert into collection {name!r}", lambda: self._client.upsert(name, points=batch, wait=True), name)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        _, models = _qdrant()
        self._info(name)
        if not ids:
            return
        selector = models.PointIdsList(points=[qdrant_id(i) for i in ids])
        self._call(f"delete from collection {name!r}", lambda: self._client.delete(name, points_selector=selector, wait=True), name)

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        must: Mapping[str, FilterValue] | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        dim, _ = self._info(name)
        query = check_vector(name, vector, dim)
        n = check_limit(limit)
        flt = self._filter(name, must)
        result = self._call(
            f"search collection {name!r}",
            lambda: self._client.query_points(name, query=query, query_filter=flt, limit=n, with_payload=True),
            name,
        )
        return [hit_from(p.id, p.score, p.payload) for p in result.points]

    def count(self, name: str, must: Mapping[str, FilterValue] | None = None) -> int:
        flt = self._filter(name, must)
        result = self._call(
            f"count collection {name!r}", lambda: self._client.count(name, count_filter=flt, exact=True), name
        )
        return int(result.count)

    def retrieve(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self._info(name)
        keys = [str(i) for i in ids]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), _UPSERT_BATCH):
            chunk = [qdrant_id(i) for i in keys[start:start + _UPSERT_BATCH]]
            records = self._call(f"read points of collection {name!r}",
                                 lambda: self._client.retrieve(name, ids=chunk, with_payload=True), name)
            for r in records:
                found[str((r.payload or {}).get(ID_KEY, r.id))] = stored_payload(r.payload)
        return found

    def scan(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        self._info(name)
        offset: Any = None
        while True:
            records, offset = self._call(
                f"scroll collection {name!r}",
                lambda: self._client.scroll(name, limit=_UPSERT_BATCH, offset=offset, with_payload=True), name)
            for r in records:
                yield str((r.payload or {}).get(ID_KEY, r.id)), stored_payload(r.payload)
            if offset is None:
                return

    def collections(self) -> list[str]:
        result = self._call("list collections", lambda: self._client.get_collections())
        return sorted(c.name for c in result.collections)

    def drop_collection(self, name: str) -> None:
        self._info(name)
        self._call(f"drop collection {name!r}", lambda: self._client.delete_collection(name))
        self._dims.pop(name, None)
        self._fields.pop(name, None)

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a dead connection is not an error worth raising
                pass

    def __repr__(self) -> str:
        return f"QdrantServerStore({self.where})"
