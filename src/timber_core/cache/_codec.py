"""Values to bytes and back: pickle restricted to plain data, SQLAlchemy ``Row`` objects rebuilt.

Both backends store bytes, so a hit returns a fresh copy (a caller mutating it changes
nothing cached) and the in-process and Redis caches behave alike. Unpickling loads only
the classes listed here: whoever can write to Redis must not be able to run code in
Timber's processes (pickle's ``find_class`` is the hook CPython documents for that).
"""

from __future__ import annotations

import functools
import io
import pickle
import zoneinfo
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
    (__name__, "_row"), (__name__, "_zoneinfo"),
}


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Row):
            return _row, (tuple(str(f) for f in obj._fields), tuple(obj))
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise CodecError(f"cannot store or load {module}.{name}: only plain data, datetimes, Decimals, UUIDs "
                             f"and SQLAlchemy Rows are cached; return such values from the loader")
        return super().find_class(module, name)


def _zoneinfo(key: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(key)


def _reduce_zoneinfo(zone: zoneinfo.ZoneInfo) -> Any:
    # ZoneInfo pickles through getattr(ZoneInfo, "_unpickle"), which the loader must not allow.
    if zone.key is None:
        raise pickle.PicklingError("a ZoneInfo made from a file (no key) cannot be cached")
    return _zoneinfo, (zone.key,)


_DISPATCH = {zoneinfo.ZoneInfo: _reduce_zoneinfo}


def _pickle(payload: Any, pickler: type[pickle.Pickler] = pickle.Pickler) -> bytes:
    buffer = io.BytesIO()
    p = pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = _DISPATCH  # type: ignore[assignment]
    p.dump(payload)
    return buffer.getvalue()


def dumps(value: Any, *, trusted: bool = False) -> bytes:
    """Return ``value`` as bytes; raise CodecError for a value holding other classes than plain data.

    A Row or a list of Rows of the same columns (what the shared services return) takes a fast
    path. ``trusted`` (the kernel's own values) skips loading the bytes back to check them.
    """
    if isinstance(value, Row):
        payload: tuple[Any, ...] = ("row", tuple(str(f) for f in value._fields), tuple(value))
    elif type(value) is list and value and all(type(r) is type(value[0]) for r in value) and isinstance(value[0], Row):
        payload = ("rows", tuple(str(f) for f in value[0]._fields), [tuple(r) for r in value])
    else:
        payload = ("v", None, value)
    try:
        data = _pickle(payload, pickle.Pickler if payload[0] != "v" else _Pickler)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise CodecError(f"the cache cannot store {type(value).__name__}: {exc}") from None
    if not trusted:
        loads(data)  # refuse at store time what could not be loaded back
    return data


def loads(data: bytes) -> Any:
    """Return the value ``dumps`` made; raise CodecError for classes outside plain data."""
    kind, fields, value = _Unpickler(io.BytesIO(data)).load()
    if kind == "rows":
        make = _row_factory(fields)
        return [make(v) for v in value]
    if kind == "row":
        return _row_factory(fields)(value)
    return value
