"""The transactional outbox of vector-index work: recording it, reading it, settling it.

Recording (:class:`Recorder`, installed on the kernel's ``sessionmaker``): when a flush
creates a row of a model with ``vector_search.enabled`` (with content), changes its
content field or its user, or deletes it, one row of ``timber_vector_outbox`` is
written through ``session.connection()``, i.e. in the SAME transaction as the change:
both commit or neither does. Repeated work on one row within a transaction is written
once; across transactions the drain collapses it (see :mod:`.drain`). An outbox row
says *which* row to look at, not what to write: the drain indexes what the database
holds when it runs, so a stale or repeated entry can never make the index wrong.

Not recorded (the ORM sees no flush): Core or bulk ORM ``UPDATE``/``DELETE`` statements
and database-side cascades (``ON DELETE CASCADE`` from ``users``).
``timber vectors reindex`` brings such collections back to the database's state.

On PostgreSQL an app's role may only INSERT outbox rows stamped with its own app (RLS);
reading, settling and removing them is the platform's job (see docs/vectors.md).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, Table, and_, case, delete, func, insert, inspect, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..apps import KERNEL_APP
from ..context import current_app
from ..schema.build import attribute_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = [
    "OUTBOX_MODEL",
    "OUTBOX_TABLE",
    "UPSERT",
    "DELETE",
    "INDEXED_FIELDS",
    "IndexedModel",
    "OutboxEntry",
    "Recorder",
    "indexed_models",
    "outbox_table",
    "fetch",
    "remove",
    "fail",
    "backoff",
    "summary",
    "has_text",
]

OUTBOX_MODEL: Final = "VectorOutbox"
OUTBOX_TABLE: Final = "timber_vector_outbox"
UPSERT: Final = "upsert"
DELETE: Final = "delete"
#: Payload fields of every point that carry a keyword index (the only ones a search may filter on).
INDEXED_FIELDS: Final = ("app", "model", "user_id")
#: Backoff after a failed attempt: BASE * 2**(attempts-1) seconds, at most MAX.
BACKOFF_BASE_S: Final = 2.0
BACKOFF_MAX_S: Final = 600.0
_ERROR_CHARS: Final = 2000
_SEEN_KEY: Final = "timber_vector_recorded"
_TOUCHED_KEY: Final = "timber_vector_touched"


@dataclasses.dataclass(frozen=True)
class IndexedModel:
    """A model with vector search enabled: where its rows and their text are.

    ``collection`` is the table name; ``user_attr``/``user_column`` are None when the
    model has no ``user_id`` column.
    """

    name: str
    app: str
    collection: str
    content_column: str
    content_attr: str
    pk_column: str
    pk_attr: str
    user_column: str | None
    user_attr: str | None
    embedding_model: str
    #: The kernel's models (``Kernel.models``): the class is looked up there, so reading
    #: ``cls`` maps the model's app if it is not mapped yet (docs/plugins.md, "What a process builds").
    models: Any = dataclasses.field(compare=False, repr=False)

    @property
    def cls(self) -> type:
        """The model's mapped class."""
        return self.models[self.name]  # type: ignore[no-any-return]

    @property
    def shared(self) -> bool:
        """True for a kernel-owned model: its points are tagged with the app that wrote them."""
        return self.app == KERNEL_APP


def indexed_models(kernel: Kernel) -> dict[str, IndexedModel]:
    """Return every loaded model with ``vector_search.enabled``, by model name."""
    found: dict[str, IndexedModel] = {}
    for spec in kernel.schema.models:  # every model, mapped yet or not
        name = spec.name
        vs = spec.vector_search
        if vs is None or not vs.enabled:
            continue
        pks = [c.name for c in spec.columns if c.primary_key]
        user = "user_id" if spec.column("user_id") is not None else None
        found[name] = IndexedModel(
            name=name,
            app=spec.app,
            collection=spec.table_name,
            content_column=vs.content_field,
            content_attr=attribute_name(vs.content_field),
            pk_column=pks[0],
            pk_attr=attribute_name(pks[0]),
            user_column=user,
            user_attr=None if user is None else attribute_name(user),
            embedding_model=vs.embedding_model,
            models=kernel.models,
        )
    return found


def outbox_table(kernel: Kernel) -> Table:
    """Return the outbox's Table of ``kernel``."""
    return kernel.models[OUTBOX_MODEL].__table__  # type: ignore[no-any-return]


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def has_text(value: Any) -> bool:
    """True when ``value`` is text worth indexing (a non-blank string)."""
    return isinstance(value, str) and bool(value.strip())


class Recorder:
    """Session listeners that write outbox rows in the flushing transaction.

    ``on_commit(models)`` is called after a transaction that recorded work commits, with
    the names of the models it recorded; it must not raise (the runtime's inline drain
    catches everything).
    """

    def __init__(self, kernel: Kernel, models: dict[str, IndexedModel], on_commit: Any = None) -> None:
        self._table = outbox_table(kernel)
        # By model name, not by class: an app's classes are mapped on first need, after this.
        self._by_name = dict(models)
        self._built = kernel.models.built
        self._on_commit = on_commit

    def install(self, factory: sessionmaker[Session]) -> None:
        """Attach the listeners to every session ``factory`` makes."""
        from sqlalchemy import event

        event.listen(factory, "after_flush", self._after_flush)
        event.listen(factory, "after_commit", self._after_commit)
        event.listen(factory, "after_rollback", self._forget)

    # -- listeners -------------------------------------------------------------
    def _after_flush(self, session: Session, _ctx: Any) -> None:
        if not self._by_name:
            return
        seen: dict[tuple[str, str], str] = session.info.setdefault(_SEEN_KEY, {})
        rows: list[dict[str, Any]] = []
        for objects, verb in ((session.new, "new"), (session.dirty, "dirty"), (session.deleted, "deleted")):
            for obj in objects:
                spec = getattr(type(obj), "__timber_model__", None)
                model = None if spec is None else self._by_name.get(spec.name)
                if model is None or self._built(model.name) is not type(obj):  # not this kernel's class
                    continue
                op = self._op(obj, model, verb)
                if op is None:
                    continue
                row_id = str(getattr(obj, model.pk_attr))
                key = (model.name, row_id)
                if seen.get(key) == op:
                    continue  # the same work is already in this transaction's outbox
                seen[key] = op
                rows.append(self._row(model, row_id, op, None if model.user_attr is None
                                      else getattr(obj, model.user_attr)))
        if rows:
            session.connection().execute(insert(self._table), rows)
            session.info.setdefault(_TOUCHED_KEY, set()).update(r["model"] for r in rows)

    @staticmethod
    def _op(obj: Any, model: IndexedModel, verb: str) -> str | None:
        if verb == "deleted":
            return DELETE
        if verb == "new":
            return UPSERT if has_text(getattr(obj, model.content_attr)) else None
        state = inspect(obj)
        watched = [model.content_attr] + ([model.user_attr] if model.user_attr else [])
        if not any(state.attrs[a].history.has_changes() for a in watched):
            return None
        return UPSERT if has_text(getattr(obj, model.content_attr)) else DELETE

    def _row(self, model: IndexedModel, row_id: str, op: str, user_id: Any) -> dict[str, Any]:
        app = model.app
        if model.shared:
            app = current_app()  # a shared model's points belong to the app that wrote them
        now = _now()
        return {
            "id": str(uuid.uuid4()), "app": app, "model": model.name, "row_id": row_id, "op": op,
            "user_id": None if user_id is None else str(user_id), "attempts": 0, "last_error": None,
            "next_attempt_at": None, "created_at": now, "updated_at": now,
        }

    def _after_commit(self, session: Session) -> None:
        touched = session.info.pop(_TOUCHED_KEY, None)
        session.info.pop(_SEEN_KEY, None)
        if touched and self._on_commit is not None:
            self._on_commit(sorted(touched))

    @staticmethod
    def _forget(session: Session) -> None:
        session.info.pop(_TOUCHED_KEY, None)
        session.info.pop(_SEEN_KEY, None)


# -- reading and settling (platform context) ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as the drain reads it."""

    id: str
    app: str
    model: str
    row_id: str
    op: str
    user_id: str | None
    attempts: int
    created_at: _dt.datetime


def fetch(
    conn: Connection,
    table: Table,
    *,
    limit: int,
    after: tuple[_dt.datetime, str] | None = None,
    due_only: bool = True,
    models: Iterable[str] | None = None,
) -> list[OutboxEntry]:
    """Return up to ``limit`` outbox rows in (created_at, id) order, after the cursor ``after``.

    ``due_only``: only rows whose ``next_attempt_at`` is unset or past (what the inline
    drain and the worker do; ``timber vectors sync`` takes every row).
    """
    t = table
    stmt = select(t.c.id, t.c.app, t.c.model, t.c.row_id, t.c.op, t.c.user_id, t.c.attempts, t.c.created_at)
    if due_only:
        stmt = stmt.where(or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= _now()))
    if after is not None:
        stmt = stmt.where(or_(t.c.created_at > after[0], and_(t.c.created_at == after[0], t.c.id > after[1])))
    if models is not None:
        stmt = stmt.where(t.c.model.in_(list(models)))
    stmt = stmt.order_by(t.c.created_at, t.c.id).limit(limit)
    return [OutboxEntry(*r) for r in conn.execute(stmt)]


def remove(conn: Connection, table: Table, ids: Sequence[str]) -> int:
    """Delete the outbox rows ``ids`` (work applied); return how many went."""
    removed = 0
    for start in range(0, len(ids), 500):
        removed += conn.execute(delete(table).where(table.c.id.in_(ids[start:start + 500]))).rowcount
    return removed


def backoff(attempts: int) -> _dt.timedelta:
    """Return the wait after the ``attempts``-th failed attempt (exponential, capped)."""
    return _dt.timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def fail(conn: Connection, table: Table, entries: Sequence[OutboxEntry], error: str) -> None:
    """Record a failed attempt on ``entries``: attempts + 1, the error, the next attempt after a backoff."""
    now = _now()
    message = error[:_ERROR_CHARS]
    by_attempts: dict[int, list[str]] = {}
    for e in entries:
        by_attempts.setdefault(e.attempts + 1, []).append(e.id)
    for attempts, ids in by_attempts.items():
        for start in range(0, len(ids), 500):
            conn.execute(
                update(table).where(table.c.id.in_(ids[start:start + 500])).values(
                    attempts=attempts, last_error=message, next_attempt_at=now + backoff(attempts), updated_at=now
                )
            )


def summary(conn: Connection, table: Table) -> dict[str, Any]:
    """Return ``{"pending": n, "failed": n, "by_model": {...}, "errors": [...]}`` of the outbox."""
    t = table
    by_model: dict[str, dict[str, int]] = {}
    failed_rows = func.sum(case((t.c.attempts > 0, 1), else_=0))
    for model, n, failed in conn.execute(select(t.c.model, func.count(), failed_rows).group_by(t.c.model)):
        by_model[str(model)] = {"pending": int(n), "failed": int(failed or 0)}
    errors = [
        {"model": r.model, "row_id": r.row_id, "op": r.op, "attempts": int(r.attempts), "last_error": r.last_error,
         "next_attempt_at": None if r.next_attempt_at is None else str(r.next_attempt_at)}
        for r in conn.execute(
            select(t.c.model, t.c.row_id, t.c.op, t.c.attempts, t.c.last_error, t.c.next_attempt_at)
            .where(t.c.attempts > 0).order_by(t.c.updated_at.desc(), t.c.id).limit(10)
        )
    ]
    return {
        "pending": sum(v["pending"] for v in by_model.values()),
        "failed": sum(v["failed"] for v in by_model.values()),
        "by_model": by_model,
        "errors": errors,
    }
