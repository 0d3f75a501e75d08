"""The erasure records (kernel table ``timber_gdpr_audit``, revision timber_0005): no personal data."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, select, update
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["AUDIT", "record", "complete", "records"]

#: The table as timber_0005 creates it; not a registry model, so no app can ``get_model`` it.
AUDIT = Table(
    "timber_gdpr_audit", MetaData(),
    Column("id", String(36), primary_key=True),
    Column("requested_by", String(255), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("mode", String(10), nullable=False),
    Column("rows", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("vector_points", Integer),
    Column("completed_at", DateTime(timezone=True)),
)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def record(conn: Any, requested_by: str, mode: str, rows: dict[str, dict[str, int]]) -> str:
    """Insert the record of an erasure, in the erasure's own transaction; return its id."""
    audit_id = str(uuid.uuid4())
    conn.execute(AUDIT.insert().values(id=audit_id, requested_by=requested_by, requested_at=_now(), mode=mode,
                                       rows=rows))
    return audit_id


def complete(conn: Any, audit_id: str, vector_points: int) -> None:
    """Mark erasure ``audit_id`` complete: its vector points and cache entries are gone too."""
    conn.execute(update(AUDIT).where(AUDIT.c.id == audit_id).values(vector_points=vector_points,
                                                                    completed_at=_now()))


def records(conn: Any) -> list[dict[str, Any]]:
    """Every erasure record, oldest first."""
    return [dict(r) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.requested_at, AUDIT.c.id)).mappings()]
