"""The validated form of model YAML: plain dataclasses, no SQLAlchemy."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = [
    "Where",
    "TypeSpec",
    "ColumnSpec",
    "IndexSpec",
    "RelationshipSpec",
    "VectorSearchSpec",
    "ModelSpec",
    "ModelFile",
    "SchemaProblem",
]


@dataclasses.dataclass(frozen=True)
class Where:
    """A place in a model file: app, path and 1-based line."""

    app: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line} (app {self.app!r})"


@dataclasses.dataclass(frozen=True)
class SchemaProblem:
    """One validation error: where, which field, what is wrong and what is allowed.

    ``contested`` names the other apps declaring the same name (model, table or index), for
    a clash between apps: the kernel leaves each of them out, not only the one at ``where``.
    """

    where: Where
    field: str
    message: str
    contested: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.where.file}:{self.where.line}: app {self.where.app!r}, field {self.field!r}: {self.message}"


@dataclasses.dataclass(frozen=True)
class TypeSpec:
    """A column type as written, e.g. ``Numeric(10, 2)`` -> ``("Numeric", (10, 2))``."""

    name: str
    args: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.args))})" if self.args else self.name


@dataclasses.dataclass
class ColumnSpec:
    name: str
    type: TypeSpec
    where: Where
    primary_key: bool = False
    nullable: bool | None = None
    unique: bool = False
    index: bool = False
    default: Any = None
    has_default: bool = False
    foreign_key: str | None = None
    ondelete: str | None = None
    description: str | None = None
    implicit: bool = False  # added by the kernel (timestamps), not written in YAML
    #: Stored encrypted (docs/models.md, "Encrypted columns"): Fernet tokens in a Text column.
    encrypted: bool = False
    #: With ``encrypted``: a keyed HMAC column (:attr:`blind_index_column`) for equality lookups.
    blind_index: bool = False
    #: On a blind-index column the kernel adds: the encrypted column it indexes.
    blind_index_of: str | None = None

    @property
    def blind_index_column(self) -> str:
        """The name of the HMAC column ``blind_index: true`` adds (``<name>_bidx``)."""
        return f"{self.name}_bidx"


@dataclasses.dataclass
class IndexSpec:
    name: str
    columns: list[str]
    where: Where
    unique: bool = False


@dataclasses.dataclass
class RelationshipSpec:
    name: str
    model: str
    type: str
    where: Where
    back_populates: str | None = None
    backref: str | None = None
    secondary: str | None = None
    foreign_key: str | None = None
    cascade: str | None = None


@dataclasses.dataclass
class VectorSearchSpec:
    enabled: bool
    content_field: str
    embedding_model: str
    where: Where


@dataclasses.dataclass
class ModelSpec:
    """One model: its table, columns and the app that owns it."""

    name: str
    table_name: str
    app: str
    where: Where
    description: str | None = None
    columns: list[ColumnSpec] = dataclasses.field(default_factory=list)
    indexes: list[IndexSpec] = dataclasses.field(default_factory=list)
    relationships: list[RelationshipSpec] = dataclasses.field(default_factory=list)
    vector_search: VectorSearchSpec | None = None
    shared: bool = False
    typed_by: str | None = None
    #: The column naming the user each row belongs to (a foreign key to ``users.id``): in an
    #: app's context only the acting user's rows are read or written (docs/isolation.md).
    owned_by: str | None = None
    timestamps: bool = True
    #: What ``erase_user(mode="anonymize")`` does with the user's rows (YAML ``gdpr:``): None
    #: deletes them (the default, ``gdpr: delete``); a list keeps them, those columns blanked and
    #: every ``users.id`` column pointed at a placeholder user (``gdpr: {anonymize: [...]}``).
    gdpr_anonymize: list[str] | None = None

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclasses.dataclass
class ModelFile:
    """One YAML file: its header and its models."""

    path: str
    app: str
    version: str | None
    description: str | None
    depends: list[str]
    models: list[ModelSpec]
    where: Where
    #: The line of each ``depends`` entry, so an unresolved one is reported where it is written.
    depends_lines: list[int] = dataclasses.field(default_factory=list)

    def depends_where(self, index: int) -> Where:
        """Return where the ``index``-th ``depends`` entry is written (the file's first line if unknown)."""
        line = self.depends_lines[index] if index < len(self.depends_lines) else self.where.line
        return Where(self.app, self.path, line)

    @property
    def basename(self) -> str:
        import os

        return os.path.basename(self.path)
