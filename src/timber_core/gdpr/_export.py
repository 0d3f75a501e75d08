"""``export_user``: every row, point and hook answer of one user, grouped by app, as one JSON-able dict."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from ..errors import NotFoundError
from . import _rows, _vectors
from ._guard import ask_apps, check_user_id, require_platform

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["export_user", "FORMAT"]

#: The ``format`` of the document; a change of its shape gets a new number.
FORMAT = "timber-gdpr-export/1"


def export_user(kernel: Kernel, user_id: str) -> dict[str, Any]:
    """See :func:`timber_core.gdpr.export_user`."""
    call = "export_user()"
    require_platform(kernel, call)
    check_user_id(user_id, call)
    users = kernel.models["User"].__table__  # type: ignore[attr-defined]
    apps: dict[str, dict[str, Any]] = {}

    def part(app: str) -> dict[str, Any]:
        return apps.setdefault(app, {"models": {}, "vectors": []})

    with kernel.db.connection() as conn:
        user = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        if user is None:
            raise NotFoundError(f"{call}: no user {user_id!r} (erased already, or a mistyped id)")
        has_password = conn.execute(text("SELECT 1 FROM user_credentials WHERE user_id = :u"),
                                    {"u": user_id}).first() is not None
        for table in _rows.user_tables(kernel):
            pk = list(table.table.primary_key.columns)
            for row in conn.execute(select(table.table).where(table.of_user(user_id)).order_by(*pk)).mappings():
                app = str(row["app_name"]) if table.tagged_by_app_name else table.app
                part(app)["models"].setdefault(table.model, []).append(_rows.jsonable(row))
    for collection, points in _vectors.points_of(kernel, user_id).items():
        for point_id, payload in points:
            part(str(payload.get("app", "timber")))["vectors"].append(
                {"collection": collection, "id": point_id, "payload": payload})
    for app, answer in ask_apps(kernel, "timber_gdpr_export", user_id=user_id).items():
        part(app)["extra"] = answer
    return {
        "format": FORMAT,
        "user_id": user_id,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "user": {**_rows.jsonable(user), "has_password": has_password},
        "apps": dict(sorted(apps.items())),
    }
