"""Embedded vector store on ``qdrant-edge-py`` (HNSW, payload indexes, write-ahead log).

Layout: one Edge shard per collection in ``<root_dir>/<collection>/``, next to a
``timber-collection.json`` holding the vector size and the indexed fields.

Contracts beyond :class:`~timber_core.vectors.store.VectorStore`:

- One process, and one EdgeStore in it, owns the directory, from its first use until
  :meth:`close`: an exclusive lock on ``<root_dir>/.owner.lock``, which the OS releases
  if the process dies. Another process (or a second EdgeStore) gets a VectorSearchError
  naming the owner's pid before it opens, reads or writes anything, so it can never
  write back a stale shard (handing a shard between processes loses points: see
  docs/vectors.md). Several processes need the default store
  (:class:`~timber_core.vectors.sqlitevec.SqliteVecStore`) or a Qdrant server.
- Writes go to the WAL before ``upsert``/``delete`` return, so they survive a crash;
  ``close()`` flushes segments too.
- Edge has no background optimizer. With ``auto_optimize=True`` (the default) every
  write ends with ``EdgeShard.optimize()``: a no-op (microseconds) while the appendable
  segment is under Qdrant's indexing threshold (about 6,500 vectors of 384 floats); once
  it is over, that call builds the HNSW graph and blocks (seconds to a minute for
  10^4-10^5 vectors on two cores). Bulk loaders pass ``auto_optimize=False`` and call
  :meth:`EdgeStore.optimize` once at the end.
- Thread-safe: one lock serializes calls on a store.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timber_core._flock import acquire, open_lock_file
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

__all__ = ["EdgeStore", "META_FILE"]

#: File in each collection directory describing it (vector size, indexed fields).
META_FILE = "timber-collection.json"
#: Lock file in the root directory held by the owning process (its pid inside).
OWNER_LOCK = ".owner.lock"

_UPSERT_BATCH = 1024


def _edge() -> Any:
    """Import qdrant_edge lazily, with an actionable error when it is missing."""
    try:
        import qdrant_edge
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "the embedded vector store needs qdrant-edge-py: pip install 'timber-core[vectors]'"
            " (or pip install qdrant-edge-py), or set QDRANT_URL to use a Qdrant server"
        ) from exc
    return qdrant_edge


@dataclass
class _Collection:
    shard: Any
    dim: int
    indexed_fields: list[str]


class EdgeStore(VectorStore):
    """Vector store embedded in this process, persisted under ``root_dir``.

    ``root_dir`` is created on the first ``ensure_collection``. Shards open lazily on
    first use and stay open until :meth:`close`.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        auto_optimize: bool = True,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        """``indexing_threshold_kb``: size of vectors (KB) above which a segment gets an HNSW
        graph, for collections created by this store (None: Qdrant's default, 10,000 KB,
        about 6,500 vectors of 384 floats; below it search is an exact scan)."""
        self.root_dir = Path(root_dir)
        self.auto_optimize = auto_optimize
        self.indexing_threshold_kb = indexing_threshold_kb
        self._open: dict[str, _Collection] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._owner_fd: int | None = None

    # -- helpers
    def _own(self) -> None:
        """Take the directory's owner lock (once); raise VectorSearchError naming the owner if held."""
        if self._owner_fd is not None:
            return
        self.root_dir.mkdir(parents=True, exist_ok=True)
        path = self.root_dir / OWNER_LOCK
        fd = open_lock_file(path)
        if not acquire(fd, deadline=0.0):  # one attempt: the owner keeps it until it closes
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise VectorSearchError(
                f"the embedded vector store {self.root_dir} is already open (owned by process {owner}, in this"
                " or another process). The Edge store (TIMBER_VECTOR_STORE=edge) belongs to one process"
                " and one EdgeStore; to share vectors between several processes (app servers, workers), use"
                " the default embedded store (TIMBER_VECTOR_STORE=sqlite) or run a Qdrant server and set"
                " QDRANT_URL") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._owner_fd = fd

    def _release(self) -> None:
        fd, self._owner_fd = self._owner_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    # -- files -----------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        return self.root_dir / check_collection_name(name)

    def _read_meta(self, name: str) -> dict[str, Any] | None:
        path = self._dir(name) / META_FILE
        if not path.is_file():
            return None
        with path.open(encoding="utf-8") as fh:
            meta: dict[str, Any] = json.load(fh)
        return meta

    def _write_meta(self, name: str, dim: int, indexed_fields: Sequence[str]) -> None:
        path = self._dir(name) / META_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps({"dim": dim, "indexed_fields": sorted(indexed_fields)}, indent=2) + "\n",
            encoding="utf-8",
        )
        os.replace(tmp, path)

    def _check_open(self) -> None:
        if self._closed:
            raise VectorSearchError(f"the embedded vector store at {self.root_dir} is closed")

    def _load_shard(self, name: str) -> Any:
        qe = _edge()
        path = self._dir(name)
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise VectorSearchError(
                    f"the embedded vector store {path} is already open (in another process, or by"
                    " another EdgeStore in this one). The embedded store (qdrant-edge) belongs to"
                    " one process and one EdgeStore; to share vectors between"
                    " several processes (app servers, workers), run a Qdrant server and set"
                    " QDRANT_URL"
                ) from exc
            raise VectorSearchError(f"cannot open vector collection {name!r} at {path}: {exc}") from exc

    def _get(self, name: str) -> _Collection:
        """The open collection ``name``; raises VectorSearchError if it does not exist."""
        self._check_open()
        check_collection_name(name)
        self._own()
        coll = self._open.get(name)
        if coll is not None:
            return coll
        meta = self._read_meta(name)
        if meta is None:
            raise unknown_collection_error(name, self.collections())
        coll = _Collection(self._load_shard(name), int(meta["dim"]), list(meta["indexed_fields"]))
        self._open[name] = coll
        return coll

    def _filter(self, name: str, coll: _Collection, must: Mapping[str, FilterValue] | None) -> Any:
        conditions = check_filter(name, must, coll.indexed_fields)
        if not conditions:
            return None
        qe = _edge()
        return qe.Filter(
            must=[
                qe.FieldCondition(
                    key,
                    match=qe.MatchAny(value) if isinstance(value, list) else qe.MatchValue(value),
                )
                for key, value in conditions.items()
            ]
        )

    def _after_write(self, coll: _Collection) -> None:
        if self.auto_optimize:
            coll.shard.optimize()

    # -- interface ---------------------------------------------------------------
    def ensure_collection(self, name: str, dim: int, indexed_fields: Sequence[str]) -> None:
        qe = _edge()
        with self._lock:
            self._check_open()
            path = self._dir(name)
            self._own()
            meta = self._read_meta(name)
            if meta is None:
                if path.exists() and any(path.iterdir()):
                    raise VectorSearchError(
                        f"cannot create vector collection {name!r}: {path} exists and is not a"
                        f" Timber collection (no {META_FILE}); move it away"
                    )
                path.mkdir(parents=True, exist_ok=True)
                optimizers = (
                    qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb)
                    if self.indexing_threshold_kb is not None
                    else None
                )
                config = qe.EdgeConfig(
                    vectors=qe.EdgeVectorParams(size=int(dim), distance=qe.Distance.Cosine), optimizers=optimizers
                )
                shard = qe.EdgeShard.create(str(path), config)
                coll = _Collection(shard, int(dim), [])
                self._open[name] = coll
            else:
                coll = self._get(name)
                if coll.dim != int(dim):
                    raise VectorSearchError(
                        f"vector collection {name!r} has vectors of size {coll.dim}, not {dim};"
                        " drop and reindex it to change the embedding model"
                    )
            missing = [f for f in indexed_fields if f not in coll.indexed_fields]
            for field_name in missing:
                coll.shard.update(qe.UpdateOperation.create_field_index(field_name, qe.PayloadSchemaType.Keyword))
            if missing or meta is None:
                coll.indexed_fields = sorted(set(coll.indexed_fields) | set(indexed_fields))
                coll.shard.flush()
                self._write_meta(name, coll.dim, coll.indexed_fields)

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        qe = _edge()
        with self._lock:
            coll = self._get(name)
            if not points:
                return
            converted = [
                qe.Point(qdrant_id(p.id), check_vector(name, p.vector, coll.dim), payload_for(p)) for p in points
            ]
            for start in range(0, len(converted), _UPSERT_BATCH):
                coll.shard.update(qe.UpdateOperation.upsert_points(converted[start : start + _UPSERT_BATCH]))
            self._after_write(coll)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        qe = _edge()
        with self._lock:
            coll = self._get(name)
            if not ids:
                return
            coll.shard.update(qe.UpdateOperation.delete_points([qdrant_id(i) for i in ids]))
            self._after_write(coll)

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        must: Mapping[str, FilterValue] | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        qe = _edge()
        with self._lock:
            coll = self._get(name)
            request = qe.QueryRequest(
                limit=check_limit(limit),
                query=qe.Query.Nearest(check_vector(name, vector, coll.dim)),
                filter=self._filter(name, coll, must),
                with_payload=True,
            )
            return [hit_from(p.id, p.score, p.payload) for p in coll.shard.query(request)]

    def count(self, name: str, must: Mapping[str, FilterValue] | None = None) -> int:
        qe = _edge()
        with self._lock:
            coll = self._get(name)
            return int(coll.shard.count(qe.CountRequest(exact=True, filter=self._filter(name, coll, must))))

    def retrieve(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            coll = self._get(name)
            keys = [str(i) for i in ids]
            found: dict[str, dict[str, Any]] = {}
            for start in range(0, len(keys), _UPSERT_BATCH):
                chunk = [qdrant_id(i) for i in keys[start:start + _UPSERT_BATCH]]
                for r in coll.shard.retrieve(chunk, True, False):
                    found[str((r.payload or {}).get(ID_KEY, r.id))] = stored_payload(r.payload)
            return found

    def scan(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        qe = _edge()
        with self._lock:
            coll = self._get(name)
            records: list[Any] = []
            offset: Any = None
            while True:
                page, offset = coll.shard.scroll(qe.ScrollRequest(offset=offset, limit=_UPSERT_BATCH,
                                                                  with_payload=True))
                records.extend(page)
                if offset is None:
                    break
        for r in records:
            yield str((r.payload or {}).get(ID_KEY, r.id)), stored_payload(r.payload)

    def collections(self) -> list[str]:
        if not self.root_dir.is_dir():
            return []
        return sorted(p.name for p in self.root_dir.iterdir() if p.is_dir() and (p / META_FILE).is_file())

    def drop_collection(self, name: str) -> None:
        with self._lock:
            coll = self._get(name)
            coll.shard.close()
            del self._open[name]
            shutil.rmtree(self._dir(name))

    def optimize(self, name: str) -> bool:
        """Build the HNSW index of ``name`` now (blocks); True if anything was optimized."""
        with self._lock:
            return bool(self._get(name).shard.optimize())

    def stats(self, name: str) -> dict[str, int]:
        """``points``, ``indexed_vectors`` (in HNSW graphs) and ``segments`` of ``name``."""
        with self._lock:
            info = self._get(name).shard.info()
            return {
                "points": int(info.points_count),
                "indexed_vectors": int(info.indexed_vectors_count),
                "segments": int(info.segments_count),
            }

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            errors: list[str] = []
            for name, coll in self._open.items():
                try:
                    coll.shard.flush()
                    coll.shard.close()
                except Exception as exc:  # close the others anyway
                    errors.append(f"{name}: {exc}")
            self._open.clear()
            self._release()
            if errors:
                raise VectorSearchError("closing the embedded vector store failed: " + "; ".join(errors))

    def __repr__(self) -> str:
        return f"EdgeStore({str(self.root_dir)!r})"
