"""Comparing each vector collection with its table, and repairing the difference.

:func:`compare` reads every row of a vector-enabled table (platform context) and every
point of its collection, and reports by id: rows with text but no point (*missing*),
points with no row or a row without text (*orphans*: e.g. rows dropped by
``timber downgrade``, or deleted by a database cascade the ORM never saw), and points
whose content or user differs from the row (*stale*). Content is compared through a
SHA-256 of the text, so a large collection is compared without holding two copies.

:func:`repair` writes the missing and stale points from the database and deletes the
orphans, under the drain lock, through the drain's own verified write.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from ..apps import KERNEL_APP
from ..context import platform_context
from .drain import _key, _write, content_column, content_text
from .outbox import IndexedModel, has_text

if TYPE_CHECKING:  # pragma: no cover
    from .runtime import VectorRuntime

__all__ = ["Drift", "compare", "repair", "count_rows"]


@dataclasses.dataclass
class Drift:
    """How one collection differs from its table (ids sorted)."""

    collection: str
    model: str
    app: str
    rows: int
    points: int
    missing: list[str] = dataclasses.field(default_factory=list)
    orphans: list[str] = dataclasses.field(default_factory=list)
    stale: list[str] = dataclasses.field(default_factory=list)
    table_exists: bool = True

    @property
    def clean(self) -> bool:
        """True when the collection holds exactly the table's rows with text."""
        return not (self.missing or self.orphans or self.stale)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"clean": self.clean}


def _digest(text: Any) -> str:
    return hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()


def _table_exists(runtime: VectorRuntime, model: IndexedModel) -> bool:
    table = model.cls.__table__  # type: ignore[attr-defined]
    with platform_context(), runtime.kernel.db.connection() as conn:
        return bool(sa_inspect(conn).has_table(table.name))


def _rows(runtime: VectorRuntime, model: IndexedModel) -> dict[str, tuple[str | None, str]]:
    """``{row_id: (user_id, content digest)}`` of the rows with text (read as the platform)."""
    table = model.cls.__table__  # type: ignore[attr-defined]
    pk = table.c[model.pk_column]
    user = table.c[model.user_column] if model.user_column else None
    content = content_column(runtime, table.c[model.content_column])
    found: dict[str, tuple[str | None, str]] = {}
    with platform_context(), runtime.kernel.db.connection() as conn:
        for row_pk, user_id, raw in conn.execute(select(pk, user if user is not None else pk, content)):
            text = content_text(raw)
            if has_text(text):
                found[str(row_pk)] = (None if user is None or user_id is None else str(user_id), _digest(text))
    return found


def count_rows(runtime: VectorRuntime, model: IndexedModel) -> int | None:
    """How many rows of ``model`` have text to index; None when its table does not exist."""
    if not _table_exists(runtime, model):
        return None
    return len(_rows(runtime, model))


def compare(runtime: VectorRuntime, model: IndexedModel) -> Drift:
    """Compare ``model``'s collection with its table (see the module docstring)."""
    exists = _table_exists(runtime, model)
    rows = _rows(runtime, model) if exists else {}
    store = runtime.store
    points: dict[str, tuple[str | None, str]] = {}
    if model.collection in store.collections():
        for point_id, payload in store.scan(model.collection):
            user = payload.get("user_id")
            points[point_id] = (None if user is None else str(user), _digest(payload.get("content", "")))
    drift = Drift(model.collection, model.name, model.app, len(rows), len(points), table_exists=exists)
    drift.missing = sorted(set(rows) - set(points))
    drift.orphans = sorted(set(points) - set(rows))
    drift.stale = sorted(i for i in set(rows) & set(points) if rows[i] != points[i])
    return drift


def repair(runtime: VectorRuntime, drift: Drift) -> None:
    """Make ``drift``'s collection equal to its table: write missing and stale points, delete orphans."""
    model = runtime.model(drift.model)
    with runtime.exclusive():
        todo = drift.missing + drift.stale
        upserts: list[tuple[str, str, Any, str]] = []
        if todo:
            table = model.cls.__table__  # type: ignore[attr-defined]
            pk = table.c[model.pk_column]
            user = table.c[model.user_column] if model.user_column else None
            content = content_column(runtime, table.c[model.content_column])
            app = model.app if not model.shared else KERNEL_APP
            with platform_context(), runtime.kernel.db.connection() as conn:
                for start in range(0, len(todo), 500):
                    keys = [_key(pk, i) for i in todo[start:start + 500]]
                    for row_pk, user_id, raw in conn.execute(
                            select(pk, user if user is not None else pk, content).where(pk.in_(keys))):
                        text = content_text(raw)
                        if has_text(text):
                            upserts.append((str(row_pk), app, user_id if user is not None else None, text))
        _write(runtime, model, upserts, drift.orphans)
