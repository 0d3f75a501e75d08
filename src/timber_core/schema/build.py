"""Building SQLAlchemy mapped classes from validated model specs, into one registry."""

from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import backref, registry, relationship
from sqlalchemy.types import TypeEngine

from .spec import ColumnSpec, ModelSpec, TypeSpec

__all__ = ["build_models", "build_tables", "map_models", "attribute_name", "NAMING_CONVENTION"]

#: Names SQLAlchemy's declarative base claims for itself; such columns get a trailing underscore
#: as their attribute while keeping their name in the database (``metadata`` -> ``metadata_``).
RESERVED_ATTRIBUTES = frozenset({"metadata", "registry", "query", "query_class"})

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def attribute_name(column: str) -> str:
    """Return the Python attribute for a column name (reserved names get ``_``)."""
    return f"{column}_" if column in RESERVED_ATTRIBUTES else column


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _today() -> _dt.date:
    return _utcnow().date()


def _uuid_str() -> str:
    return str(uuid.uuid4())


def _sa_type(t: TypeSpec) -> TypeEngine[Any]:
    n, a = t.name, t.args
    if n == "String":
        return String(a[0])
    if n == "Numeric":
        return Numeric(*a, asdecimal=True)
    if n == "DateTime":
        return DateTime(timezone=True)
    if n == "JSON":
        # JSONB on PostgreSQL: indexable and comparable; plain JSON text elsewhere.
        return JSON().with_variant(JSONB(), "postgresql")
    if n == "UUID":
        return Uuid(as_uuid=False)
    simple: dict[str, type[TypeEngine[Any]]] = {
        "Text": Text, "Integer": Integer, "BigInteger": BigInteger, "Float": Float,
        "Boolean": Boolean, "Date": Date,
    }
    return simple[n]()


def _default(col: ColumnSpec) -> Any:
    if not col.has_default:
        return None
    value = col.default
    if value == "uuid4":
        return _uuid_str
    if value == "utcnow":
        return _today if col.type.name == "Date" else _utcnow
    if isinstance(value, (dict, list)):
        return lambda: __import__("copy").deepcopy(value)
    return value


def _encrypted_type(model: ModelSpec, col: ColumnSpec) -> TypeEngine[Any]:
    # Imported here: cryptography loads only for a registry with encrypted columns.
    from ..encryption.types import EncryptedText

    return EncryptedText(
        label=f"{model.name}.{col.name} (app {model.app!r})",
        hash_label=f"{model.table_name}.{col.name}",
        blind_index=attribute_name(col.blind_index_column) if col.blind_index else None,
        max_length=col.type.args[0] if col.type.name == "String" else None,
    )


def _column(col: ColumnSpec, model: ModelSpec | None = None) -> Column[Any]:
    type_ = _encrypted_type(model, col) if col.encrypted and model is not None else _sa_type(col.type)
    args: list[Any] = [col.name, type_]
    if col.foreign_key:
        args.append(ForeignKey(col.foreign_key, ondelete=col.ondelete))
    kwargs: dict[str, Any] = {
        "key": attribute_name(col.name),
        "primary_key": col.primary_key,
        "unique": col.unique or None,
        "index": col.index or None,
        "comment": col.description,
    }
    if col.nullable is not None:
        kwargs["nullable"] = col.nullable
    default = _default(col)
    if default is not None:
        kwargs["default"] = default
    if col.implicit and col.name == "updated_at":
        kwargs["onupdate"] = _utcnow
    return Column(*args, **kwargs)


def _relationship(model: ModelSpec, rel: Any) -> Any:
    kwargs: dict[str, Any] = {}
    if rel.back_populates:
        kwargs["back_populates"] = rel.back_populates
    if rel.backref:
        # SQLAlchemy infers the reverse direction; only a one-to-one reverse must be told it is scalar.
        kwargs["backref"] = backref(rel.backref, uselist=False) if rel.type == "one-to-one" else rel.backref
    if rel.type == "one-to-one":
        kwargs["uselist"] = False
    if rel.type == "many-to-many":
        kwargs["secondary"] = rel.secondary
    if rel.foreign_key:
        kwargs["foreign_keys"] = f"{model.name}.{attribute_name(rel.foreign_key)}"
    if rel.cascade:
        kwargs["cascade"] = rel.cascade
    return relationship(rel.model, **kwargs)


def build_tables(models: list[ModelSpec]) -> tuple[type[Any], dict[str, Table]]:
    """Build every model's ``Table`` into one MetaData, under a fresh base; map nothing.

    Return the base (``metadata``, ``registry``, the keyword constructor) and the tables by
    model name. The classes are mapped by :func:`map_models`, all at once or an app at a time.
    """
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    mapper_registry = registry(metadata=metadata)
    # Mapped imperatively, not by subclassing a DeclarativeBase: the table is already built, and
    # declarative's scan of each class body for what to map costs about 10 % of building the
    # classes for nothing (docs/performance.md, "Building the models").
    base = type("TimberBase", (), {"metadata": metadata, "registry": mapper_registry,
                                   "__init__": mapper_registry.constructor, "__module__": "timber_models",
                                   "__doc__": "The base of every mapped class of one kernel."})
    tables: dict[str, Table] = {}
    for model in models:
        tables[model.name] = Table(
            model.table_name,
            metadata,
            *[_column(c, model) for c in model.columns],
            *[Index(ix.name, *map(attribute_name, ix.columns), unique=ix.unique) for ix in model.indexes],
            comment=model.description,
        )
    return base, tables


def map_models(base: type[Any], models: list[ModelSpec], tables: dict[str, Table]) -> dict[str, type[Any]]:
    """Map a class for each of ``models`` (their tables from :func:`build_tables`) into ``base``'s registry.

    Return the new classes by model name; the caller runs ``registry.configure()`` after. Each
    model a relationship names must be mapped by then, in this call or an earlier one. Each
    class carries ``__table__``, ``__tablename__``, the keyword constructor of declarative
    classes, and its spec as ``__timber_model__``.
    """
    mapper_registry = base.registry
    classes: dict[str, type[Any]] = {}
    for model in models:
        table = tables[model.name]
        cls = type(model.name, (base,), {
            "__table__": table,
            # Code written for plain declarative models reads Model.__tablename__; keep it working.
            "__tablename__": model.table_name,
            "__timber_model__": model,
            "__module__": f"timber_models.{model.app}",
            "__doc__": model.description,
        })
        mapper_registry.map_imperatively(
            cls, table, properties={rel.name: _relationship(model, rel) for rel in model.relationships})
        classes[model.name] = cls
        encrypted = [c for c in model.columns if c.encrypted]
        if encrypted:
            from ..encryption.types import listen_encrypted

            listen_encrypted(cls, [attribute_name(c.name) for c in encrypted],
                             [(attribute_name(c.name), attribute_name(c.blind_index_column))
                              for c in encrypted if c.blind_index])
    return classes


def build_models(models: list[ModelSpec]) -> tuple[type[Any], dict[str, type[Any]]]:
    """Map every model spec to a class under one fresh base, in one registry.

    Return the base and the classes by model name (:func:`build_tables` then :func:`map_models`).
    The base carries ``metadata`` (every table) and ``registry`` (every mapper), as a
    declarative base does.
    """
    base, tables = build_tables(models)
    return base, map_models(base, models, tables)
