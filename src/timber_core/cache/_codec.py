"""Values to bytes and back: pickle restricted to plain data, SQLAlchemy ``Row`` objects rebuilt.

Both backends store bytes, so a hit returns a fresh copy (a caller mutating it changes
nothing cached) and the in-process and Redis caches behave alike. Unpickling loads only
the classes listed here: whoever can write to Redis must not be able to run code in
Timber's processes (pickle's ``find_class`` is the hook CPython documents for that).
"""

from __future__ import annotations

import datetime
import decimal
import functools
import io
import pickle
import uuid
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine.result import result_tuple

__all__ = ["dumps", "loads", "CodecError"]


class CodecError(ValueError):
    """A value that the cache cannot store, or bytes it refuses to load."""


def _row(fields: tuple[str, ...], values: tuple[Any, ...]) -> Row[Any]:
    return _row_factory(fields)(values)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _row_factory(fields: tuple[str, ...]) -> Any:
    return result_tuple(list(fields))


_ALLOWED = {
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("decimal", "Decimal"), ("uuid", "UUID"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "bytearray"),
    (__name__, "_row"),
}


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Row):
            return _row, (tuple(str(f) for f in obj._fields), tuple(obj))
        if isinstance(obj, datetime.datetime) and obj.tzinfo is not None and type(obj.tzinfo) is not datetime.timezone:
            # e.g. psycopg's zoneinfo.ZoneInfo, which pickles through getattr(): keep the instant and offset.
            return obj.replace(tzinfo=datetime.timezone(obj.utcoffset())).__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise CodecError(f"cannot store or load {module}.{name}: only plain data, datetimes, Decimals, UUIDs "
                             f"and SQLAlchemy Rows are cached; return such values from the loader")
        return super().find_class(module, name)


def dumps(value: Any) -> bytes:
    """Return ``value`` as bytes; raise CodecError for a value holding other classes than plain data."""
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise CodecError(f"the cache cannot store {type(value).__name__}: {exc}") from None
    data = buffer.getvalue()
    loads(data)  # refuse at store time what could not be loaded back
    return data


def loads(data: bytes) -> Any:
    """Return the value ``dumps`` made; raise CodecError for classes outside plain data."""
    return _Unpickler(io.BytesIO(data)).load()
