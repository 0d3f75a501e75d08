"""Embedded vector store in one SQLite file with the ``sqlite-vec`` extension: safe for many processes.

The default embedded store. Layout: ``<root_dir>/index.sqlite3``, a catalog table
``timber_collections`` and one ``vec0`` virtual table per collection (exact cosine
search, the collection's indexed fields as metadata columns, the payload as an
auxiliary column).

Contracts beyond :class:`~timber_core.vectors.store.VectorStore`:

- Any number of processes (web workers, CLI commands, the worker) may open the same
  file at once: SQLite's own locking serializes writers (WAL journal, so readers never
  block them). Every write is one transaction, committed with ``synchronous=FULL``:
  durable when ``upsert``/``delete`` return, all or nothing when a process dies midway.
- Search is exact (no approximation, recall 1.0); at most :data:`MAX_LIMIT` hits. The
  ``user_id`` field, when indexed, is the table's partition key, so a search for one
  user's points reads only those.
- A point whose payload lacks an indexed field stores ``""`` for it, so filtering on
  ``""`` finds such points.
- A full disk or an unwritable directory is a VectorSearchError naming the file and
  the free space; nothing is half-written.

Python's ``sqlite3`` on many systems cannot load extensions, so the connection comes
from ``sqlean.py`` (a drop-in ``sqlite3`` module with a current SQLite); both
packages install with ``timber-core[vectors]``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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
    unknown_collection_error,
)

__all__ = ["SqliteVecStore", "INDEX_FILE", "MAX_LIMIT"]

#: The file of the store inside its root directory.
INDEX_FILE: Final = "index.sqlite3"
#: The most hits one search returns (sqlite-vec's limit on ``k``).
MAX_LIMIT: Final = 4096
#: The indexed field stored as vec0's partition key (searches are filtered on it).
PARTITION_FIELD: Final = "user_id"
#: How long a statement waits for another process's write transaction (ms).
BUSY_TIMEOUT_MS: Final = 60_000
_BATCH: Final = 500

_CATALOG = """CREATE TABLE IF NOT EXISTS timber_collections (
    name TEXT PRIMARY KEY,
    dim INTEGER NOT NULL,
    indexed_fields TEXT NOT NULL,
    table_id INTEGER NOT NULL
)"""


def _modules() -> tuple[Any, Any]:
    """Import sqlean and sqlite_vec lazily, with an actionable error when missing."""
    try:
        import sqlean
        import sqlite_vec
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "the embedded vector store needs sqlite-vec and sqlean.py: pip install 'timber-core[vectors]'"
            " (or pip install sqlite-vec sqlean.py), or set QDRANT_URL to use a Qdrant server"
        ) from exc
    return sqlean, sqlite_vec


@dataclass(frozen=True)
class _Collection:
    name: str
    dim: int
    indexed_fields: tuple[str, ...]
    table_id: int

    @property
    def table(self) -> str:
        return f"vec_{self.table_id}"

    def column(self, field_name: str) -> str:
        """The metadata column holding indexed field ``field_name``."""
        return f"m{self.indexed_fields.index(field_name)}"


def _blob(vector: Sequence[float]) -> bytes:
    return struct.pack(f"{len(vector)}f", *vector)


def _meta_value(value: Any) -> str:
    """Metadata columns hold text: ints and strings compare by their text, absent is ``""``."""
    return "" if value is None else str(value)


class SqliteVecStore(VectorStore):
    """Vector store in ``<root_dir>/index.sqlite3``, shared safely by every process on the machine.

    The file and ``root_dir`` are created on first use. One connection per store,
    serialized by a lock: safe to share between threads.
    """

    def __init__(self, root_dir: str | os.PathLike[str]) -> None:
        self.root_dir = Path(root_dir)
        self.path = self.root_dir / INDEX_FILE
        self._conn: Any = None
        self._lock = threading.RLock()
        self._closed = False

    # -- connection ---------------------------------------------------------------
    def _connect(self) -> Any:
        if self._closed:
            raise VectorSearchError(f"the embedded vector store at {self.path} is closed")
        if self._conn is not None:
            return self._conn
        sqlean, sqlite_vec = _modules()
        try:
            self.root_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlean.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                  check_same_thread=False)
        except (OSError, sqlean.Error) as exc:
            raise self._io_error("open", exc) from None
        try:
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed write survives power loss too, not only a process crash.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(_CATALOG)
        except sqlean.Error as exc:
            conn.close()
            raise self._io_error("open", exc) from None
        self._conn = conn
        return conn

    def _io_error(self, action: str, exc: BaseException) -> VectorSearchError:
        """A VectorSearchError for a failed file operation, naming the file and the free space."""
        message = str(exc)
        where = self.path if self.path.exists() else self.root_dir
        try:
            free = shutil.disk_usage(self._existing_parent(where)).free
            space = f"{free:,} bytes free"
        except OSError:
            space = "free space unknown"
        full = "full" in message.lower() or "no space" in message.lower()
        if full:
            return VectorSearchError(
                f"the embedded vector store {self.path} cannot {action}: the disk is full ({space});"
                " free space there (queued index work is kept and applied once there is room)")
        readonly = (getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM)
                    or "readonly" in message.lower() or "unable to open database file" in message.lower())
        if readonly:
            return VectorSearchError(
                f"the embedded vector store {self.path} cannot {action}: {self._existing_parent(self.root_dir)}"
                " is not writable; point TIMBER_HOME at a writable directory or set QDRANT_URL")
        return VectorSearchError(f"the embedded vector store {self.path} cannot {action}: {message} ({space})")

    @staticmethod
    def _existing_parent(path: Path) -> Path:
        while not path.exists() and path != path.parent:
            path = path.parent
        return path

    @contextmanager
    def _write(self, action: str) -> Iterator[Any]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error."""
        sqlean, _ = _modules()
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlean.Error as exc:
                raise self._io_error(action, exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK")
                except sqlean.Error:
                    pass  # SQLite already rolled back (e.g. on SQLITE_FULL)
                if isinstance(exc, sqlean.Error):
                    raise self._io_error(action, exc) from None
                raise

    def _collections(self) -> dict[str, _Collection]:
        """The catalog, read from the file (other processes may have changed it)."""
        conn = self._connect()
        return {
            name: _Collection(name, int(dim), tuple(json.loads(fields)), int(table_id))
            for name, dim, fields, table_id in conn.execute(
                "SELECT name, dim, indexed_fields, table_id FROM timber_collections")
        }

    def _get(self, name: str) -> _Collection:
        """Collection ``name`` as the file says now (another process may have dropped or rebuilt it)."""
        check_collection_name(name)
        catalog = self._collections()
        coll = catalog.get(name)
        if coll is None:
            raise unknown_collection_error(name, catalog)
        return coll

    def _where(self, name: str, coll: _Collection, must: Mapping[str, FilterValue] | None) -> tuple[str, list[Any]]:
        conditions = check_filter(name, must, coll.indexed_fields)
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in conditions.items():
            column = coll.column(key)
            if isinstance(value, list):
                clauses.append(f"{column} IN ({', '.join('?' for _ in value)})")
                params.extend(_meta_value(v) for v in value)
            else:
                clauses.append(f"{column} = ?")
                params.append(_meta_value(value))
        return "".join(f" AND {c}" for c in clauses), params

    @staticmethod
    def _create_table(conn: Any, coll: _Collection) -> None:
        # The user is a partition key: vec0 stores each user's vectors apart, so a search
        # filtered on a user scans only that user's points (10x faster at 10k points here).
        metadata = "".join(f", m{i} text" + (" partition key" if f == PARTITION_FIELD else "")
                           for i, f in enumerate(coll.indexed_fields))
        conn.execute(f"CREATE VIRTUAL TABLE {coll.table} USING vec0(id text primary key, "
                     f"embedding float[{coll.dim}] distance_metric=cosine{metadata}, +payload text)")

    # -- interface ---------------------------------------------------------------
    def ensure_collection(self, name: str, dim: int, indexed_fields: Sequence[str]) -> None:
        check_collection_name(name)
        with self._write("create a collection") as conn:
            # Read inside the write lock: what every process sees now.
            coll = self._collections().get(name)
            if coll is None:
                table_id = int(conn.execute("SELECT coalesce(max(table_id), 0) + 1 FROM timber_collections")
                               .fetchone()[0])
                coll = _Collection(name, int(dim), tuple(sorted(set(indexed_fields))), table_id)
                self._create_table(conn, coll)
                conn.execute("INSERT INTO timber_collections VALUES (?, ?, ?, ?)",
                             (name, coll.dim, json.dumps(list(coll.indexed_fields)), table_id))
            else:
                if coll.dim != int(dim):
                    raise VectorSearchError(
                        f"vector collection {name!r} has vectors of size {coll.dim}, not {dim};"
                        " drop and reindex it to change the embedding model"
                    )
                missing = set(indexed_fields) - set(coll.indexed_fields)
                if missing:
                    self._rebuild_with_fields(conn, coll, sorted(set(coll.indexed_fields) | missing))

    def _rebuild_with_fields(self, conn: Any, old: _Collection, fields: list[str]) -> _Collection:
        """Copy ``old`` into a new table with metadata columns for ``fields`` (vec0 cannot add columns)."""
        table_id = int(conn.execute("SELECT max(table_id) + 1 FROM timber_collections").fetchone()[0])
        new = _Collection(old.name, old.dim, tuple(fields), table_id)
        self._create_table(conn, new)
        rows = conn.execute(f"SELECT id, embedding, payload FROM {old.table}").fetchall()
        for point_id, embedding, payload in rows:
            self._insert(conn, new, point_id, embedding, json.loads(payload))
        conn.execute(f"DROP TABLE {old.table}")
        conn.execute("UPDATE timber_collections SET indexed_fields = ?, table_id = ? WHERE name = ?",
                     (json.dumps(fields), table_id, old.name))
        return new

    @staticmethod
    def _insert(conn: Any, coll: _Collection, point_id: str, embedding: bytes, payload: dict[str, Any]) -> None:
        columns = "".join(f", m{i}" for i in range(len(coll.indexed_fields)))
        marks = ", ?" * len(coll.indexed_fields)
        conn.execute(f"INSERT INTO {coll.table}(id, embedding{columns}, payload) VALUES (?, ?{marks}, ?)",
                     (point_id, embedding, *(_meta_value(payload.get(f)) for f in coll.indexed_fields),
                      json.dumps(payload)))

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        with self._write("write points") as conn:
            coll = self._get(name)
            rows = [(str(p.id), _blob(check_vector(name, p.vector, coll.dim)), payload_for(p)) for p in points]
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), _BATCH):
                chunk = ids[start:start + _BATCH]
                conn.execute(f"DELETE FROM {coll.table} WHERE id IN ({', '.join('?' for _ in chunk)})", chunk)
            for point_id, embedding, payload in rows:
                self._insert(conn, coll, point_id, embedding, payload)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        with self._write("delete points") as conn:
            coll = self._get(name)
            keys = [str(i) for i in ids]
            for start in range(0, len(keys), _BATCH):
                chunk = keys[start:start + _BATCH]
                conn.execute(f"DELETE FROM {coll.table} WHERE id IN ({', '.join('?' for _ in chunk)})", chunk)

    def retrieve(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            coll = self._get(name)
            found: dict[str, dict[str, Any]] = {}
            keys = [str(i) for i in ids]
            for start in range(0, len(keys), _BATCH):
                chunk = keys[start:start + _BATCH]
                for point_id, payload in self._connect().execute(
                        f"SELECT id, payload FROM {coll.table} WHERE id IN ({', '.join('?' for _ in chunk)})", chunk):
                    data = json.loads(payload)
                    data.pop(ID_KEY, None)
                    found[point_id] = data
            return found

    def scan(self, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            coll = self._get(name)
            rows = self._connect().execute(f"SELECT id, payload FROM {coll.table} ORDER BY id").fetchall()
        for point_id, payload in rows:
            data = json.loads(payload)
            data.pop(ID_KEY, None)
            yield point_id, data

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        must: Mapping[str, FilterValue] | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        check_limit(limit)
        if limit > MAX_LIMIT:
            raise VectorSearchError(f"search limit {limit} is over the embedded store's maximum of {MAX_LIMIT}")
        with self._lock:
            coll = self._get(name)
            where, params = self._where(name, coll, must)
            # With several users (partitions) vec0 answers k per partition: keep the best k.
            rows = self._connect().execute(
                f"WITH hits AS MATERIALIZED (SELECT id, distance, payload FROM {coll.table}"
                f" WHERE embedding MATCH ? AND k = ?{where}) SELECT id, distance, payload FROM hits"
                " ORDER BY distance, id LIMIT ?",
                [_blob(check_vector(name, vector, coll.dim)), limit, *params, limit],
            ).fetchall()
        # sqlite-vec's cosine distance is 1 - cosine similarity; hits report the similarity.
        return [hit_from(point_id, 1.0 - float(distance), json.loads(payload)) for point_id, distance, payload in rows]

    def count(self, name: str, must: Mapping[str, FilterValue] | None = None) -> int:
        with self._lock:
            coll = self._get(name)
            where, params = self._where(name, coll, must)
            return int(self._connect().execute(
                f"SELECT count(*) FROM {coll.table} WHERE 1 = 1{where}", params).fetchone()[0])

    def collections(self) -> list[str]:
        with self._lock:
            if not self.path.exists() and self._conn is None:
                return []
            return sorted(self._collections())

    def drop_collection(self, name: str) -> None:
        with self._write("drop a collection") as conn:
            coll = self._get(name)
            conn.execute(f"DROP TABLE {coll.table}")
            conn.execute("DELETE FROM timber_collections WHERE name = ?", (name,))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __repr__(self) -> str:
        return f"SqliteVecStore({str(self.path)!r})"
