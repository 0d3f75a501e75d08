"""How ``create-migration`` writes column types: Timber's own types, the same text on every database.

Alembic renders a type as the generating database sees it: a reflected column
(``existing_type=``, a removed column or table in ``downgrade()``) as that
dialect's class (``sqlite.JSON()``, ``postgresql.TIMESTAMP(timezone=True)``), and
a type with a PostgreSQL variant generated on SQLite as
``postgresql.JSONB(astext_type=Text())``, which fails with ``NameError``. So a
revision would depend on where it was generated. Here every column type, from the
models or reflected from either database, is first read back as the model-language
type it stands for (:func:`type_spec`, e.g. ``TIMESTAMP WITH TIME ZONE`` ->
``DateTime``), then written as exactly what
:func:`timber_core.schema.build._sa_type` builds for it (:func:`render_type`), with
its imports. A revision therefore runs on SQLite and on PostgreSQL whichever one
generated it, and creates what ``metadata.create_all`` would.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import types as sqltypes

from ..schema.spec import TypeSpec

__all__ = ["type_spec", "render_type", "render_item", "POSTGRESQL_IMPORT"]

POSTGRESQL_IMPORT = "from sqlalchemy.dialects import postgresql"

#: The length of ``CHAR`` SQLAlchemy's ``Uuid`` uses where there is no native UUID type (SQLite).
_UUID_CHAR_LENGTH = 32


def type_spec(type_: Any) -> TypeSpec | None:
    """Return the model-language type ``type_`` stands for, or None for a type the language has not.

    ``type_`` is a model column's type or one reflected from SQLite or PostgreSQL.
    Subclasses come before their bases (``Text`` is a ``String``, ``Float`` a
    ``Numeric``, ``BigInteger`` an ``Integer``). A ``TypeDecorator`` (an encrypted
    column's ``EncryptedText``) stands for what it stores (``Text``).
    """
    if isinstance(type_, sqltypes.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, sqltypes.JSON):  # JSON, its JSONB variant, sqlite.JSON, postgresql.JSON(B)
        return TypeSpec("JSON")
    if isinstance(type_, sqltypes.Uuid):
        return TypeSpec("UUID")
    if isinstance(type_, sqltypes.DateTime):  # the language's DateTime is always timezone-aware
        return TypeSpec("DateTime")
    if isinstance(type_, sqltypes.Date):
        return TypeSpec("Date")
    if isinstance(type_, sqltypes.Boolean):
        return TypeSpec("Boolean")
    if isinstance(type_, sqltypes.Float):  # DOUBLE PRECISION and REAL too
        return TypeSpec("Float")
    if isinstance(type_, sqltypes.Numeric):
        args = (type_.precision, type_.scale) if type_.scale is not None else (type_.precision,)
        return TypeSpec("Numeric", tuple(a for a in args if a is not None))
    if isinstance(type_, sqltypes.BigInteger):
        return TypeSpec("BigInteger")
    if isinstance(type_, sqltypes.Integer) and not isinstance(type_, sqltypes.SmallInteger):
        return TypeSpec("Integer")
    if isinstance(type_, sqltypes.CHAR) and type_.length == _UUID_CHAR_LENGTH:
        return TypeSpec("UUID")  # how SQLite stores a Uuid; the language has no CHAR
    if isinstance(type_, sqltypes.Text) or (isinstance(type_, sqltypes.String) and type_.length is None
                                             and not isinstance(type_, sqltypes.CHAR)):
        return TypeSpec("Text")
    if isinstance(type_, sqltypes.String) and not isinstance(type_, sqltypes.CHAR):
        return TypeSpec("String", (type_.length,))
    return None


def render_type(spec: TypeSpec, prefix: str = "sa.") -> tuple[str, set[str]]:
    """Return the Python text building ``spec``'s column type, and the imports that text needs.

    ``prefix`` is how the revision names ``sqlalchemy`` (Alembic's ``sqlalchemy_module_prefix``).
    """
    n, a = spec.name, spec.args
    if n == "String":
        return f"{prefix}String(length={a[0]})", set()
    if n == "Numeric":
        params = ", ".join(f"{k}={v}" for k, v in zip(("precision", "scale"), a))
        return f"{prefix}Numeric({params})", set()
    if n == "DateTime":
        return f"{prefix}DateTime(timezone=True)", set()
    if n == "JSON":
        return f"{prefix}JSON().with_variant(postgresql.JSONB(), 'postgresql')", {POSTGRESQL_IMPORT}
    if n == "UUID":
        return f"{prefix}Uuid(as_uuid=False)", set()
    return f"{prefix}{n}()", set()


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Alembic's ``render_item`` hook: render column types with :func:`render_type`; the rest as Alembic does."""
    if type_ != "type":
        return False
    spec = type_spec(obj)
    if spec is None:
        return False
    prefix = autogen_context.opts.get("sqlalchemy_module_prefix") or "sa."
    text, imports = render_type(spec, prefix)
    autogen_context.imports.update(imports)
    return text
