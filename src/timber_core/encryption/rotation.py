"""Re-encrypting every encrypted column under the newest key (``timber keys rotate``).

Column by column, rows are read in primary-key order, ``batch_size`` at a time, each batch
in its own transaction in ``platform_context()`` (on PostgreSQL the ``timber_platform`` role,
whose policy sees and writes every row of every app's table under RLS; on SQLite the platform
passes the wall). A value the newest key alone already decrypts is skipped, so a rotation
interrupted anywhere is finished by running it again. Each value is written back only if
it is still the one read (compare-and-set on the token): a row an app changed meanwhile was
written with the newest key already and is left alone. Between batches every row holds a
token some configured key decrypts, so reads keep working throughout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, and_, bindparam, func, select, tuple_, type_coerce, update

from ..context import platform_context
from ..errors import ConfigurationError, EncryptionError
from .keys import InvalidToken
from .types import EncryptedColumn, encrypted_columns

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["rotate", "RotationProgress", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 500


@dataclasses.dataclass
class RotationProgress:
    """Where a rotation stands on one column: rows ``seen`` of ``total``; values ``rotated`` and already ``current``."""

    column: EncryptedColumn
    total: int
    seen: int = 0
    rotated: int = 0
    current: int = 0


def rotate(kernel: Kernel, batch_size: int = DEFAULT_BATCH_SIZE,
           progress: Callable[[RotationProgress], None] | None = None) -> list[RotationProgress]:
    """Re-encrypt every encrypted column of every app under the newest key; return one tally per column.

    ``progress`` is called after each committed batch. Raise ConfigurationError when the kernel
    has no encrypted column, EncryptionError naming the column and row when no key decrypts a value.
    """
    keys = kernel.field_keys
    columns = encrypted_columns(kernel)
    if keys is None or not columns:
        raise ConfigurationError("no model declares an encrypted column: nothing to rotate")
    if batch_size < 1:
        raise ConfigurationError(f"batch size must be at least 1; got {batch_size}")
    tallies = []
    for col in columns:
        tally = _rotate_column(kernel, col, batch_size, progress)
        tallies.append(tally)
    return tallies


def _rotate_column(kernel: Kernel, col: EncryptedColumn, batch_size: int,
                   progress: Callable[[RotationProgress], None] | None) -> RotationProgress:
    table = kernel.metadata.tables[col.table]
    pk = [table.c[name] for name in col.primary_key]
    # The stored token, not the decrypted value: read and written as plain Text.
    raw = type_coerce(table.c[col.column], Text())
    with platform_context(), kernel.db.connection() as conn:
        total = conn.execute(select(func.count()).select_from(table).where(table.c[col.column].is_not(None))).scalar_one()
    tally = RotationProgress(col, total)
    key_of = tuple_(*pk) if len(pk) > 1 else pk[0]
    write = (update(table)
             .where(and_(*[c == bindparam(f"k_{i}") for i, c in enumerate(pk)], raw == bindparam("old", type_=Text())))
             .values({table.c[col.column]: bindparam("new", type_=Text())}))
    last: tuple[Any, ...] | None = None
    while True:
        query = select(*pk, raw).where(table.c[col.column].is_not(None)).order_by(*pk).limit(batch_size)
        if last is not None:
            query = query.where(key_of > (tuple_(*last) if len(pk) > 1 else last[0]))
        with platform_context(), kernel.db.connection() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return tally
            changes = []
            for row in rows:
                key, token = tuple(row[:-1]), row[-1]
                if kernel.field_keys.is_current(token):
                    tally.current += 1
                    continue
                try:
                    new = kernel.field_keys.rotate(token)
                except InvalidToken:
                    raise EncryptionError(
                        f"cannot rotate {col}: no key in {kernel.field_keys.source} decrypts the value of the row "
                        f"with {', '.join(col.primary_key)} = {', '.join(map(repr, key))}: put its key back after "
                        f"the newest one and run `timber keys rotate` again") from None
                changes.append({**{f"k_{i}": v for i, v in enumerate(key)}, "old": token, "new": new})
            if changes:
                conn.execute(write, changes)
            tally.rotated += len(changes)
            tally.seen += len(rows)
            last = tuple(rows[-1][:-1])
        if progress is not None:
            progress(tally)
