"""The small vector-store interface shared by the embedded and the server backends.

Contracts every backend honours (the behaviour tests in ``tests/vectors`` check both):

- A collection has a fixed vector size (``dim``, cosine distance) and a set of
  *indexed fields*: payload keys with a keyword index. Only those may be filtered on.
- Point ids are arbitrary strings (``"42"``, a UUID string, ...). They are mapped to
  Qdrant ids with ``uuid5`` (:func:`qdrant_id`) and the original is kept in the payload
  under :data:`ID_KEY`, so hits return the caller's id and the payload as given.
- ``upsert`` with an existing id replaces that point (vector and payload).
- ``must`` is an exact-match AND filter: ``{"app": "grove", "user_id": ["u1", "u2"]}``
  means ``app == "grove" AND user_id in ("u1", "u2")``.
- Filtering on a field that is not indexed, or naming an unknown collection, raises
  :class:`~timber_core.errors.VectorSearchError` naming the culprit and what exists.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from timber_core.errors import ConfigurationError, VectorSearchError

__all__ = [
    "ID_KEY",
    "FilterValue",
    "Hit",
    "Point",
    "VectorStore",
    "check_collection_name",
    "check_filter",
    "check_limit",
    "check_vector",
    "hit_from",
    "payload_for",
    "qdrant_id",
    "stored_payload",
    "unknown_collection_error",
]

#: Payload key holding the caller's original point id.
ID_KEY = "_id"

#: Namespace of the uuid5 mapping from caller ids to Qdrant ids (fixed forever:
#: changing it would orphan every stored point).
_ID_NAMESPACE = uuid.UUID("6f1d7c52-5a8e-4f0b-9a51-3b1c8f0e7d24")

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

FilterValue = Union[str, int, Sequence[Union[str, int]]]


@dataclass(frozen=True)
class Point:
    """A point to store: caller id, vector, payload (JSON-able dict)."""

    id: str
    vector: list[float]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result: caller id, similarity score (cosine, higher is closer), payload.

    The payload is the one given at upsert, without the internal :data:`ID_KEY`.
    """

    id: str
    score: float
    payload: dict[str, Any]


def qdrant_id(point_id: str) -> str:
    """Deterministic Qdrant id (a UUID string) for a caller's point id."""
    return str(uuid.uuid5(_ID_NAMESPACE, str(point_id)))


def check_collection_name(name: str) -> str:
    """Return ``name`` if it is a valid collection name, else raise ConfigurationError.

    Collection names become directory names in the embedded store, so they are limited
    to letters, digits, ``_``, ``-`` and ``.`` (not first), at most 128 characters.
    """
    if not isinstance(name, str) or not _COLLECTION_NAME.match(name):
        raise ConfigurationError(
            f"invalid vector collection name {name!r}: use letters, digits, '_', '-' or '.'"
            " (not first), at most 128 characters"
        )
    return name


def unknown_collection_error(name: str, known: Iterable[str]) -> VectorSearchError:
    """The error for a collection that does not exist, listing those that do."""
    names = sorted(known)
    listed = ", ".join(names) if names else "none"
    return VectorSearchError(f"unknown vector collection {name!r}; known collections: {listed}")


def check_filter(
    collection: str, must: Mapping[str, FilterValue] | None, indexed_fields: Iterable[str]
) -> dict[str, list[str | int] | str | int]:
    """Validate a ``must`` filter against the collection's indexed fields.

    Returns a normalized copy (sequences become lists). Raises VectorSearchError for a
    field that is not indexed (naming it and the indexed ones) or an empty list value.
    """
    if not must:
        return {}
    indexed = sorted(indexed_fields)
    out: dict[str, list[str | int] | str | int] = {}
    for key, value in must.items():
        if key not in indexed:
            raise VectorSearchError(
                f"cannot filter vector collection {collection!r} on field {key!r}: it is not"
                f" indexed; indexed fields: {', '.join(indexed) if indexed else 'none'}"
            )
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            out[key] = value
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            values = list(value)
            if not values:
                raise VectorSearchError(
                    f"filter on field {key!r} of vector collection {collection!r} has an"
                    " empty list of values; give at least one"
                )
            out[key] = values
        else:
            raise VectorSearchError(
                f"filter on field {key!r} of vector collection {collection!r} must be a string,"
                f" an integer or a list of them, not {type(value).__name__}"
            )
    return out


def check_vector(collection: str, vector: Sequence[float], dim: int) -> list[float]:
    """Return ``vector`` as a list of floats, or raise VectorSearchError on a size mismatch."""
    values = [float(x) for x in vector]
    if len(values) != dim:
        raise VectorSearchError(
            f"vector of size {len(values)} does not fit vector collection {collection!r},"
            f" whose vectors have size {dim}"
        )
    return values


def check_limit(limit: int) -> int:
    """Return ``limit`` if it is a positive integer, else raise VectorSearchError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise VectorSearchError(f"search limit must be a positive integer, not {limit!r}")
    return limit


def payload_for(point: Point) -> dict[str, Any]:
    """The stored payload of ``point``: its payload plus the original id under ID_KEY."""
    if ID_KEY in point.payload:
        raise VectorSearchError(f"payload key {ID_KEY!r} is reserved for the point id (point {point.id!r})")
    payload = dict(point.payload)
    payload[ID_KEY] = str(point.id)
    return payload


def stored_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stored payload without the internal :data:`ID_KEY`."""
    data = dict(payload or {})
    data.pop(ID_KEY, None)
    return data


def hit_from(point_id: Any, score: float, payload: Mapping[str, Any] | None) -> Hit:
    """Build a Hit from a stored point, restoring the caller's id."""
    data = dict(payload or {})
    original = data.pop(ID_KEY, None)
    return Hit(id=str(original if original is not None else point_id), score=float(score), payload=data)


class VectorStore(ABC):
    """A set of named collections of points with cosine similarity search.

    Implementations: :class:`timber_core.vectors.sqlitevec.SqliteVecStore` (embedded, the
    default, many processes), :class:`timber_core.vectors.edge.EdgeStore` (embedded, one process) and :class:`timber_core.vectors.server.QdrantServerStore` (qdrant-client).
    A store is not safe to share between threads without external locking unless the
    implementation says so.
    """

    @abstractmethod
    def ensure_collection(self, name: str, dim: int, indexed_fields: Sequence[str]) -> None:
        """Create ``name`` (cosine, ``dim``-sized vectors) if missing and make sure every
        field of ``indexed_fields`` has a keyword index. An existing collection with
        another ``dim`` raises VectorSearchError. Idempotent."""

    @abstractmethod
    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace ``points`` (same id replaces). Durable when it returns."""

    @abstractmethod
    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete the points with these caller ids; unknown ids are ignored."""

    @abstractmethod
    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        must: Mapping[str, FilterValue] | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        """The ``limit`` points closest to ``vector`` that match ``must``, best first."""

    @abstractmethod
    def count(self, name: str, must: Mapping[str, FilterValue] | None = None) -> int:
        """Exact number of points matching ``must`` (all points when None)."""

    @abstractmethod
    def retrieve(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The payloads of the points with these caller ids that exist, by id (missing ids absent).

        Reads what the store holds now, durably: the drain verifies its writes with it."""

    @abstractmethod
    def scan(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every point of ``name`` as (caller id, payload), for comparing a collection with its table."""

    @abstractmethod
    def collections(self) -> list[str]:
        """Names of the existing collections, sorted."""

    @abstractmethod
    def drop_collection(self, name: str) -> None:
        """Delete the collection and its points; unknown names raise VectorSearchError."""

    @abstractmethod
    def close(self) -> None:
        """Release files, locks and connections. Idempotent."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
