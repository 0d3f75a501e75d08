"""Tables that exist without a recorded revision: what a half-applied migration left behind.

Before migrations ran in one transaction on SQLite (see :mod:`.transaction`), a
``timber migrate`` killed halfway left the tables it had created with an empty (or
no) ``alembic_version``. The next ``timber migrate`` then failed on ``table users
already exists``. Such tables are found here, per app: the tables of an app whose
branch has revisions, none of them recorded, that exist in the database anyway.
``timber migrate``, ``timber migrations check`` and ``timber doctor`` report them
with :func:`describe`; ``timber migrate --drop-unrecorded`` applies the fix
(:func:`drop`), which refuses tables that hold rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from ..errors import ConfigurationError
from .applied import read
from .autogen import app_head
from .config import make_config

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["find", "describe", "message_and_fix", "drop"]


def find(kernel: Kernel, conn: Any) -> list[str]:
    """Return, sorted, the tables on ``conn`` of every app with revisions but none recorded."""
    script = ScriptDirectory.from_config(make_config(kernel))
    applied = read(kernel, script, conn).applied(script)
    existing = set(inspect(conn).get_table_names())
    found = []
    for app in kernel.apps.loaded():
        if app_head(script, app.name) is None:
            continue  # an app without revisions gets create_all: its tables are expected unrecorded
        branch = {r.revision for r in script.walk_revisions() if app.name in r.branch_labels}
        if branch & applied:
            continue
        found += [m.table_name for m in kernel.models_of(app.name) if m.table_name in existing]
    return sorted(found)


def message_and_fix(kernel: Kernel, tables: list[str]) -> tuple[str, str]:
    """Return what is wrong with ``tables`` (from :func:`find`) and the fix, for a doctor finding."""
    return (
        f"{kernel.db.display_url} has tables but no revision recorded in alembic_version: "
        f"{', '.join(tables)} (left by an interrupted migration)",
        "run `timber migrate --drop-unrecorded` (it drops those tables if they hold no rows, then migrates)",
    )


def describe(kernel: Kernel, tables: list[str]) -> str:
    """Say :func:`message_and_fix` as one line."""
    message, fix = message_and_fix(kernel, tables)
    return f"{message}. Fix: {fix}"


def drop(kernel: Kernel, conn: Any, tables: list[str]) -> None:
    """Drop ``tables`` (from :func:`find`) on ``conn``, dependents first.

    Raise ConfigurationError, dropping nothing, when any of them holds a row: rows mean
    the tables were not just left by an interrupted migration, and are not ours to lose.
    """
    ours = [kernel.metadata.tables[t] for t in tables]
    full = [t.name for t in ours if conn.execute(select(1).select_from(t).limit(1)).first() is not None]
    if full:
        raise ConfigurationError(
            f"{kernel.db.display_url}: not dropping tables that hold rows: {', '.join(sorted(full))}. They were "
            f"not left by an interrupted migration: back the database up, then move those rows out and drop the "
            f"tables yourself before `timber migrate`"
        )
    for table in reversed(kernel.metadata.sorted_tables):
        if table.name in tables:
            table.drop(conn)
