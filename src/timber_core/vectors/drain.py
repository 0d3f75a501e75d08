"""Applying the outbox to the vector store, and rebuilding collections from the database.

:func:`drain` walks the outbox once in (created_at, id) order, a batch at a time:

1. read the batch in the platform context;
2. per model, keep the latest entry of each row and read those rows in the row's app
   context, as the row's user (so PostgreSQL's RLS applies as it would to the app);
3. a row that exists with non-blank content is embedded (batched, the model's
   Embedder) and upserted; any other (deleted, emptied, invisible) is deleted;
4. what was written is read back from the store and compared (:func:`_verify`);
5. only then are the batch's entries of that model removed; on any failure they keep
   the error, ``attempts + 1`` and ``next_attempt_at`` after an exponential backoff.

So applying an entry twice, late or out of order is harmless: the point ends as the
database row is. :func:`reindex` drops and rebuilds a collection from every row.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import LargeBinary, cast, delete, select

from ..apps import KERNEL_APP
from ..context import PLATFORM, app_context, platform_context, user_context
from ..errors import VectorSearchError
from .outbox import IndexedModel, OutboxEntry, fail, fetch, has_text, remove
from .store import Point

if TYPE_CHECKING:  # pragma: no cover
    from .runtime import VectorRuntime

__all__ = ["DrainResult", "drain", "reindex", "point_payload"]

_READ_CHUNK = 500


@dataclasses.dataclass
class DrainResult:
    """What one drain did: outbox entries applied (removed) and failed, points written, errors."""

    applied: int = 0
    failed: int = 0
    upserted: int = 0
    deleted: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    busy: bool = False  #: another drain held the lock past ``wait``: nothing was done


def point_payload(model: IndexedModel, app: str, row_id: str, user_id: Any, content: str) -> dict[str, Any]:
    """Return the payload of a row's point: app, model, row_id, user_id (if any), content."""
    payload: dict[str, Any] = {"app": app, "model": model.name, "row_id": row_id, "content": content,
                               "content_field": model.content_column}
    if user_id is not None:
        payload["user_id"] = str(user_id)
    return payload


def content_column(runtime: VectorRuntime, column: Any) -> Any:
    """The content column as the index reads it: its raw bytes on SQLite, else the text.

    SQLite stores whatever bytes raw SQL gives it, and Python's sqlite3 refuses to read
    a TEXT value that is not valid UTF-8 (a lone surrogate written as CESU-8 bytes, say):
    read as bytes, such a row is indexed (see :func:`content_text`) instead of failing its
    whole batch. PostgreSQL refuses invalid UTF-8 when it is written.
    """
    if runtime.kernel.db.engine.dialect.name == "sqlite":
        return cast(column, LargeBinary)
    return column


def content_text(value: Any) -> Any:
    """The text to embed and store for a content value: invalid UTF-8 and lone surrogates become U+FFFD."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


@contextmanager
def _as(app: str) -> Iterator[None]:
    if app == PLATFORM or app == KERNEL_APP:
        with platform_context():
            yield
    else:
        with app_context(app):
            yield


def drain(runtime: VectorRuntime, *, due_only: bool = True, batch_size: int = 256,
          models: Sequence[str] | None = None, wait: float | None = None) -> DrainResult:
    """Apply the outbox's work to the store; return counts. Errors stay in the outbox, never raised.

    ``due_only`` (inline drains, the worker) skips entries waiting out a backoff;
    ``timber vectors sync`` passes False to retry everything now. ``models`` limits the
    drain to those models' entries (the inline drain: the models its commit wrote). ``wait``:
    give up (doing nothing, ``busy`` set) when another drain holds the lock that long.
    Errors reaching the database itself (the outbox cannot be read) do raise.
    """
    result = DrainResult()
    if not runtime.enabled:
        return result
    db = runtime.kernel.db
    with runtime.exclusive(wait) as held:
        if not held:
            result.busy = True
            return result
        cursor: tuple[_dt.datetime, str] | None = None
        while True:
            with platform_context(), db.connection() as conn:
                entries = fetch(conn, runtime.table, limit=batch_size, after=cursor, due_only=due_only,
                                models=models)
            if not entries:
                break
            cursor = (entries[-1].created_at, entries[-1].id)
            by_model: dict[str, list[OutboxEntry]] = {}
            for e in entries:
                by_model.setdefault(e.model, []).append(e)
            for name, group in by_model.items():
                _apply(runtime, name, group, result)
    return result


def _apply(runtime: VectorRuntime, name: str, entries: list[OutboxEntry], result: DrainResult) -> None:
    db = runtime.kernel.db
    try:
        model = runtime.models.get(name)
        if model is None:
            raise LookupError(
                f"model {name!r} is not a vector-enabled model of the loaded apps (app uninstalled or disabled, "
                f"or vector_search turned off); install the app again, or delete these outbox rows"
            )
        latest: dict[str, OutboxEntry] = {}
        for e in entries:
            latest[e.row_id] = e
        rows = _read_rows(runtime, model, latest.values())
        upserts: list[tuple[str, str, Any, str]] = []  # row_id, app, user_id, content
        deletes: list[str] = []
        for row_id, entry in latest.items():
            row = rows.get(row_id)
            if row is not None and has_text(row[1]):
                upserts.append((row_id, entry.app if model.shared else model.app, row[0], row[1]))
            else:
                deletes.append(row_id)
        _write(runtime, model, upserts, deletes)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        with platform_context(), db.connection() as conn:
            fail(conn, runtime.table, entries, error)
        result.failed += len(entries)
        result.errors.append(f"{name}: {error}")
        return
    with platform_context(), db.connection() as conn:
        result.applied += remove(conn, runtime.table, [e.id for e in entries])
    result.upserted += len(upserts)
    result.deleted += len(deletes)


def _read_rows(runtime: VectorRuntime, model: IndexedModel, entries: Iterable[OutboxEntry]) -> dict[str, tuple[Any, Any]]:
    """Return ``{row_id: (user_id, content)}`` of the rows that exist, read as each entry's app and user."""
    table = model.cls.__table__  # type: ignore[attr-defined]
    pk = table.c[model.pk_column]
    user_col = table.c[model.user_column] if model.user_column else None
    cols = [pk, user_col if user_col is not None else pk, content_column(runtime, table.c[model.content_column])]
    groups: dict[tuple[str, str | None], list[str]] = {}
    for e in entries:
        groups.setdefault((model.app if not model.shared else e.app, e.user_id), []).append(e.row_id)
    found: dict[str, tuple[Any, Any]] = {}
    for (app, user), ids in groups.items():
        with _as(app), user_context(user), runtime.kernel.db.connection() as conn:
            for start in range(0, len(ids), _READ_CHUNK):
                keys = [_key(pk, i) for i in ids[start:start + _READ_CHUNK]]
                for row_pk, user_id, content in conn.execute(select(*cols).where(pk.in_(keys))):
                    found[str(row_pk)] = (user_id if user_col is not None else None, content_text(content))
    return found


def _key(column: Any, row_id: str) -> Any:
    """Convert an outbox row id back to the primary key's Python type (integers, UUIDs)."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return row_id
    return row_id if kind is str else kind(row_id)


def _write(runtime: VectorRuntime, model: IndexedModel, upserts: Sequence[tuple[str, str, Any, str]],
           deletes: Sequence[str]) -> None:
    if not upserts and not deletes:
        return
    runtime.ensure_collection(model)
    store = runtime.store
    if upserts:
        vectors = runtime.embedder(model.embedding_model).embed([u[3] for u in upserts])
        store.upsert(model.collection, [
            Point(row_id, vector, point_payload(model, app, row_id, user_id, content))
            for (row_id, app, user_id, content), vector in zip(upserts, vectors)
        ])
    if deletes:
        store.delete(model.collection, list(deletes))
    _verify(runtime, model, upserts, deletes)


def _verify(runtime: VectorRuntime, model: IndexedModel, upserts: Sequence[tuple[str, str, Any, str]],
            deletes: Sequence[str]) -> None:
    """Read back what was just written; raise VectorSearchError unless the store holds exactly that.

    Outbox entries are removed only after this passes, so work the store did not keep
    (another process wrote an older state over it, a disk that lied) stays queued.
    """
    got = runtime.store.retrieve(model.collection, [u[0] for u in upserts] + list(deletes))
    wrong = [row_id for row_id, _app, _user, content in upserts
             if got.get(row_id, {}).get("content") != content]
    kept = [row_id for row_id in deletes if row_id in got]
    if wrong or kept:
        raise VectorSearchError(
            f"the vector store did not keep what was written to collection {model.collection!r}: "
            f"{len(wrong)} point(s) missing or different, {len(kept)} deleted point(s) still there"
            f" (first: {(wrong + kept)[0]}); the work stays in the outbox and is retried")


def reindex(runtime: VectorRuntime, names: Sequence[str] | None = None, *, batch_size: int = 512) -> dict[str, int]:
    """Drop and rebuild the collections of ``names`` (default: every vector model) from the database.

    Reads every row in the platform context; returns the points written per collection.
    Outbox entries of those models recorded before the rebuild started are removed (the
    rebuild read newer data). The embedded store builds its HNSW graph once at the end.
    """
    from ..vectors.edge import EdgeStore

    models = [runtime.model(n) for n in names] if names else list(runtime.models.values())
    store = runtime.store
    written: dict[str, int] = {}
    with runtime.exclusive():
        for model in models:
            started = _dt.datetime.now(_dt.timezone.utc)
            if model.collection in store.collections():
                store.drop_collection(model.collection)
            runtime.forget_collection(model.collection)
            runtime.ensure_collection(model)
            edge = isinstance(store, EdgeStore)
            optimize_before = store.auto_optimize if edge else False
            if edge:
                store.auto_optimize = False  # type: ignore[union-attr]
            try:
                written[model.collection] = _rebuild(runtime, model, batch_size)
            finally:
                if edge:
                    store.auto_optimize = optimize_before  # type: ignore[union-attr]
            if edge:
                store.optimize(model.collection)  # type: ignore[union-attr]
            with platform_context(), runtime.kernel.db.connection() as conn:
                t = runtime.table
                conn.execute(delete(t).where(t.c.model == model.name, t.c.created_at <= started))
    return written


def _rebuild(runtime: VectorRuntime, model: IndexedModel, batch_size: int) -> int:
    table = model.cls.__table__  # type: ignore[attr-defined]
    pk = table.c[model.pk_column]
    user_col = table.c[model.user_column] if model.user_column else None
    content = content_column(runtime, table.c[model.content_column])
    app = model.app if not model.shared else KERNEL_APP
    last: Any = None
    count = 0
    while True:
        stmt = select(pk, user_col if user_col is not None else pk, content).order_by(pk).limit(batch_size)
        if last is not None:
            stmt = stmt.where(pk > last)
        with platform_context(), runtime.kernel.db.connection() as conn:
            rows = list(conn.execute(stmt))
        if not rows:
            return count
        last = rows[-1][0]
        texts = [content_text(r[2]) for r in rows]
        upserts = [(str(r[0]), app, r[1] if user_col is not None else None, t) for r, t in zip(rows, texts)
                   if has_text(t)]
        _write(runtime, model, upserts, [])
        count += len(upserts)
