"""Which rows of which tables belong to a user, read from the registry alone."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, false, or_, select
from sqlalchemy.sql.elements import ColumnElement

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["UserTable", "user_tables", "jsonable", "USERS"]

#: The table every user-owned row points to, directly or through a parent row.
USERS = "users"


@dataclasses.dataclass(frozen=True)
class UserTable:
    """A registry table holding rows of users.

    ``user_columns`` reference ``users.id``; a table without one holds a user's rows through
    ``parents``: ``(column, referenced column, parent)`` for each key into another such table.
    """

    app: str
    model: str
    table: Table
    user_columns: tuple[str, ...]
    parents: tuple[tuple[str, str, UserTable], ...]
    #: The model's ``gdpr: {anonymize: [...]}`` columns; None: its rows are deleted.
    anonymize: list[str] | None

    def of_user(self, user_id: str) -> ColumnElement[bool]:
        """The WHERE clause selecting the rows of ``user_id``."""
        if self.user_columns:
            return or_(*(self.table.c[c] == user_id for c in self.user_columns))
        return or_(false(), *(
            self.table.c[col].in_(select(parent.table.c[ref]).where(parent.of_user(user_id)))
            for col, ref, parent in self.parents
        ))

    @property
    def tagged_by_app_name(self) -> bool:
        """Whether each row names its app (the kernel's shared tables: sessions, events, notifications)."""
        return self.app == "timber" and "app_name" in self.table.c


def user_tables(kernel: Kernel) -> list[UserTable]:
    """Return every table with rows of users, parents before children (the order to create them).

    A table is one when a foreign key of it references ``users.id``, or (with no such key)
    a table that is one. ``users`` itself is not listed.
    """
    specs = {spec.table_name: spec for spec in kernel.schema.models}  # every model, mapped yet or not
    found: dict[str, UserTable] = {}
    for table in kernel.metadata.sorted_tables:
        spec = specs.get(table.name)
        if spec is None or table.name == USERS:
            continue
        direct: list[str] = []
        parents: list[tuple[str, str, UserTable]] = []
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            target = fk.column.table.name
            if target == USERS and fk.column.name == "id":
                direct.append(fk.parent.name)
            elif target in found and target != table.name:
                parents.append((fk.parent.name, fk.column.name, found[target]))
        if direct or parents:
            found[table.name] = UserTable(spec.app, spec.name, table, tuple(direct),
                                          () if direct else tuple(parents), spec.gdpr_anonymize)
    return list(found.values())


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``row`` with every value JSON can hold: times in ISO 8601, decimals and UUIDs as text."""
    return {key: _value(value) for key, value in row.items()}


def _value(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value
