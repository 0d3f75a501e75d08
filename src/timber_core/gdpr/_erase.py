"""``erase_user``: one transaction for every app's rows, then the vector points and the cache."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, select, text, update

from ..errors import ErasureVetoedError, ValidationError
from . import _audit, _rows, _vectors
from ._guard import ask_apps, check_user_id, require_platform

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["erase_user", "Erasure", "MODES"]

log = logging.getLogger("timber.gdpr")

MODES = ("delete", "anonymize")
#: The kernel's tables outside the registry holding a user's rows, and their user column.
_KERNEL_EXTRAS = (("user_credentials", "user_id"), ("timber_vector_outbox", "user_id"))


@dataclasses.dataclass(frozen=True)
class Erasure:
    """What one ``erase_user`` call did.

    ``rows``: ``{app: {"deleted": n, "anonymized": n}}`` of the database transaction (all zero when a
    re-run finds the rows gone); ``vector_points``: the points deleted; ``audit_id``: its record in
    ``timber_gdpr_audit``.
    """

    audit_id: str
    mode: str
    rows: dict[str, dict[str, int]]
    vector_points: int


def erase_user(kernel: Kernel, user_id: str, mode: str, requested_by: str) -> Erasure:
    """See :func:`timber_core.gdpr.erase_user`."""
    call = "erase_user()"
    require_platform(kernel, call)
    check_user_id(user_id, call)
    if mode not in MODES:
        raise ValidationError(f"{call}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not isinstance(requested_by, str) or not requested_by.strip():
        raise ValidationError(f"{call}: requested_by must say who asked (non-empty text), not {requested_by!r}")
    for app, reason in ask_apps(kernel, "timber_gdpr_veto", user_id=user_id, mode=mode).items():
        raise ErasureVetoedError(f"app {app!r} refuses to erase user {user_id!r} (mode {mode}): {reason}; "
                                 f"nothing was erased", app, str(reason))

    # 1. Every app's rows, the account, its password and pending index work: one transaction.
    # The outbox rows go here, not later: a drain running after the commit finds no work that
    # could put the user's points back.
    with kernel.db.connection() as conn:
        rows = _erase_rows(kernel, conn, user_id, mode)
        audit_id = _audit.record(conn, requested_by, mode, rows)
    log.info("timber: gdpr erase %s (%s) committed: %s", audit_id, mode, rows)

    # 2. What lives outside the database. A crash from here on leaves the record incomplete
    # (completed_at NULL); running erase_user again finds no rows and finishes these steps.
    points = _vectors.delete_points_of(kernel, user_id)
    kernel.cache.forget_user(user_id)
    with kernel.db.connection() as conn:
        _audit.complete(conn, audit_id, points)
    return Erasure(audit_id, mode, rows, points)


def _erase_rows(kernel: Kernel, conn: Any, user_id: str, mode: str) -> dict[str, dict[str, int]]:
    """Delete or anonymize every row of ``user_id``; return the counts per app."""
    deleted: Counter[str] = Counter()
    anonymized: Counter[str] = Counter()
    placeholder: str | None = None
    # Children before parents: a row found through its parent is reached while the parent
    # still belongs to the user, and no delete trips a foreign key.
    for table in reversed(_rows.user_tables(kernel)):
        where = table.of_user(user_id)
        counts = _count_by_app(conn, table, where)
        if not counts:
            continue
        if mode == "anonymize" and table.anonymize is not None:
            placeholder = placeholder or _placeholder_user(kernel, conn)
            values: dict[str, Any] = {c: placeholder for c in table.user_columns}
            for name in table.anonymize:
                column = table.table.c[name]
                values[name] = None if column.nullable else ""
            conn.execute(update(table.table).where(where).values(values))
            anonymized.update(counts)
        else:
            conn.execute(delete(table.table).where(where))
            deleted.update(counts)
    for name, column in _KERNEL_EXTRAS:
        deleted["timber"] += conn.execute(text(f"DELETE FROM {name} WHERE {column} = :u"), {"u": user_id}).rowcount
    users = kernel.models["User"].__table__  # type: ignore[attr-defined]
    deleted["timber"] += conn.execute(delete(users).where(users.c.id == user_id)).rowcount
    apps = sorted(set(deleted) | set(anonymized))
    return {app: {"deleted": deleted[app], "anonymized": anonymized[app]} for app in apps
            if deleted[app] or anonymized[app]}


def _count_by_app(conn: Any, table: _rows.UserTable, where: Any) -> Counter[str]:
    """The rows ``where`` selects, counted per app (a kernel table's rows by their ``app_name``)."""
    t: Table = table.table
    if table.tagged_by_app_name:
        query = select(t.c.app_name, func.count()).where(where).group_by(t.c.app_name)
        return Counter({str(app): int(n) for app, n in conn.execute(query)})
    n = int(conn.execute(select(func.count()).select_from(t).where(where)).scalar_one())
    return Counter({table.app: n} if n else {})


def _placeholder_user(kernel: Kernel, conn: Any) -> str:
    """Create the account anonymized rows are moved to: a fresh id, nothing derived from the user."""
    users = kernel.models["User"].__table__  # type: ignore[attr-defined]
    uid = str(uuid.uuid4())
    conn.execute(users.insert().values(id=uid, email=f"erased-{uid}@erased.invalid", username=f"erased-{uid}"))
    return uid
