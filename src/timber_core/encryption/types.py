"""The column type of ``encrypted: true`` columns, their blind indexes, and binding the keys to them.

:class:`EncryptedText` is a SQLAlchemy ``TypeDecorator`` over ``Text``: a value is encrypted
(AES-256-GCM, the newest key; see :mod:`.keys`) when it is bound to a statement and decrypted when a row is loaded,
so the database, its logs and its backups only ever hold tokens. Comparing an encrypted
column in SQL cannot work (each token is different, even for one text), so its comparator
refuses every operator, except that with ``blind_index: true`` ``==``, ``!=``, ``in_`` and
``not_in`` are rewritten onto the keyed-hash column ``<name>_bidx``; ``is_(None)`` works on
every encrypted column. The ORM keeps ``<name>_bidx`` in step on insert and update (mapper
events); a Core ``insert()``/``update()`` that writes the column must set it with
:func:`blind_index_of`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, event, inspect
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from ..errors import ConfigurationError, EncryptionError, ValidationError
from .keys import FieldKeys, InvalidToken, load_field_keys

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["EncryptedText", "EncryptedColumn", "encrypted_columns", "install", "blind_index_of", "listen_encrypted"]

#: Operators rewritten onto the blind-index column (the value hashed), and those that work on NULL alone.
_EQUALITY = {operators.eq, operators.ne, operators.in_op, operators.not_in_op}
_NULL_TESTS = {operators.is_, operators.is_not}


class EncryptedText(TypeDecorator[str]):
    """Text stored as an encrypted token. ``label`` names the column in errors (``Model.field (app 'x')``),
    ``hash_label`` (``table.column``) derives its blind-index key, ``blind_index`` is the hash column or None,
    ``max_length`` the plaintext limit of a ``String(n)`` column."""

    impl = Text
    cache_ok = True

    def __init__(self, label: str, hash_label: str, blind_index: str | None = None, max_length: int | None = None) -> None:
        super().__init__()
        self.label, self.hash_label, self.blind_index, self.max_length = label, hash_label, blind_index, max_length
        #: Bound by :func:`install` when the kernel starts; not part of the statement cache key.
        self.keys: FieldKeys | None = None

    def _keys(self) -> FieldKeys:
        if self.keys is None:
            raise EncryptionError(f"{self.label} is encrypted but no keys are loaded: use it through a kernel "
                                  f"(timber_core.initialize_timber) started with ENABLE_ENCRYPTION=true")
        return self.keys

    def check(self, value: Any) -> None:
        """Raise ValidationError unless ``value`` is None or text within the column's length."""
        if value is None:
            return
        if not isinstance(value, str):
            raise ValidationError(f"{self.label}: an encrypted field holds text; got {type(value).__name__}")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValidationError(f"{self.label}: at most {self.max_length} characters; got {len(value)}")

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        self.check(value)  # the ORM checked on assignment; this is for Core statements
        return self._keys().encrypt(value)

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        keys = self._keys()
        try:
            return keys.decrypt(value)
        except (InvalidToken, UnicodeError, ValueError):
            raise self._undecryptable(keys) from None

    def _undecryptable(self, keys: FieldKeys) -> EncryptionError:
        return EncryptionError(
            f"cannot decrypt {self.label}: no key in {keys.source} decrypts the stored value (it was "
            f"encrypted with a key that is no longer listed, or written without Timber): put that key back "
            f"after the newest one, then run `timber keys rotate`"
        )

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        # Called once per column per statement; the closure runs on every row loaded, so it skips
        # TypeDecorator's generic layers (Text has no result processor of its own on SQLite or psycopg).
        if self.impl_instance.result_processor(dialect, coltype) is not None:  # pragma: no cover - other drivers
            return super().result_processor(dialect, coltype)
        keys = self._keys()
        decrypt = keys.decrypt

        def process(value: Any) -> str | None:
            if value is None:
                return None
            try:
                return decrypt(value)
            except (InvalidToken, UnicodeError, ValueError):
                raise self._undecryptable(keys) from None

        return process

    def hash(self, value: Any) -> str:
        """Return the blind-index hash of ``value`` (text) for this column."""
        if not isinstance(value, str):
            raise EncryptionError(f"{self.label} is compared through its blind index: compare it with text, "
                                  f"not {type(value).__name__}")
        return self._keys().blind_index(self.hash_label, value)

    class comparator_factory(TypeDecorator.Comparator):  # noqa: N801 - SQLAlchemy's attribute name
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            enc: EncryptedText = self.type
            if op in _NULL_TESTS or (op in (operators.eq, operators.ne) and other and other[0] is None):
                return super().operate(op, *other, **kwargs)
            if op in _EQUALITY and enc.blind_index is not None:
                hashed = self.expr.table.c[enc.blind_index]
                value = other[0]
                if op in (operators.in_op, operators.not_in_op):
                    value = [enc.hash(v) for v in value]
                else:
                    value = enc.hash(value)
                return op(hashed, value, **kwargs)
            why = ("only ==, !=, in_ and not_in work, through its blind index" if enc.blind_index else
                   "declare blind_index: true on it for ==, !=, in_ and not_in")
            raise EncryptionError(f"{enc.label} is encrypted: the database holds tokens, so it cannot "
                                  f"be filtered or sorted with {getattr(op, '__name__', op)}; {why}")

        def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
            return self.operate(op, other, **kwargs)


@dataclasses.dataclass(frozen=True)
class EncryptedColumn:
    """One encrypted column of one app's model: where it is and its type."""

    app: str
    model: str
    field: str
    table: str
    column: str
    primary_key: tuple[str, ...]
    type: EncryptedText

    def __str__(self) -> str:
        return f"{self.model}.{self.field} (app {self.app!r})"


def encrypted_columns(kernel: Kernel) -> list[EncryptedColumn]:
    """Return every encrypted column of every loaded app, in model order."""
    found = []
    for spec in kernel.schema.models:
        table = kernel.metadata.tables.get(spec.table_name)
        if table is None:
            continue
        pk = tuple(c.name for c in table.primary_key.columns)
        for col in spec.columns:
            if col.encrypted:
                found.append(EncryptedColumn(spec.app, spec.name, col.name, spec.table_name, col.name, pk,
                                             table.c[col.name].type))
    return found


def install(kernel: Kernel) -> FieldKeys | None:
    """Load the keys and bind them to every encrypted column; return them, or None without encrypted columns.

    Raise ConfigurationError when there are encrypted columns but ``ENABLE_ENCRYPTION`` is off,
    or no key is configured on PostgreSQL (:func:`~.keys.load_field_keys`).
    """
    columns = encrypted_columns(kernel)
    if not columns:
        return None
    names = ", ".join(map(str, columns))
    if not kernel.config.ENABLE_ENCRYPTION:
        raise ConfigurationError(f"the models declare encrypted columns ({names}) but ENABLE_ENCRYPTION is off: "
                                 f"set ENABLE_ENCRYPTION=true and the keys (docs/services.md, \"Field encryption\")")
    keys = load_field_keys(kernel.config, kernel.db.dialect, names, any(c.type.blind_index for c in columns))
    for col in columns:
        col.type.keys = keys
    return keys


def blind_index_of(model: type, field: str, value: str) -> str:
    """Return the value of ``model``'s ``<field>_bidx`` column for ``value`` (for Core inserts and updates)."""
    col = inspect(model).columns[field]
    if not isinstance(col.type, EncryptedText) or col.type.blind_index is None:
        raise ConfigurationError(f"{model.__name__}.{field} has no blind index: declare encrypted: true and "
                                 f"blind_index: true on it")
    return col.type.hash(value)


def listen_encrypted(cls: type, attrs: list[str], pairs: list[tuple[str, str]]) -> None:
    """Check each encrypted attribute of ``cls`` on assignment (a ValidationError then, not a wrapped one at
    flush), and keep each ``(encrypted attribute, hash attribute)`` in step when the ORM inserts or updates a row."""
    for attr in attrs:
        enc: EncryptedText = cls.__table__.c[attr].type

        def check(_target: Any, value: Any, _old: Any, _initiator: Any, enc: EncryptedText = enc) -> Any:
            enc.check(value)
            return value

        event.listen(getattr(cls, attr), "set", check, retval=True)
    if not pairs:
        return
    types = {attr: cls.__table__.c[attr].type for attr, _ in pairs}

    def fill(_mapper: Any, _conn: Any, target: Any) -> None:
        loaded = inspect(target).dict
        for attr, hashed in pairs:
            if attr in loaded:  # an expired, unchanged value keeps its hash
                value = loaded[attr]
                setattr(target, hashed, None if value is None else types[attr].hash(value))

    event.listen(cls, "before_insert", fill)
    event.listen(cls, "before_update", fill)
