"""Field encryption: ``encrypted: true`` columns, their keys, blind indexes and key rotation.

Importing this package is cheap (``timber --help`` imports ``timber_core.encryption.commands``):
the public names below load ``cryptography`` and SQLAlchemy on first use.

Public surface: :class:`FieldKeys`, :func:`generate_key`, :func:`load_field_keys`
(:mod:`.keys`); :func:`install` (the kernel calls it), :func:`encrypted_columns`,
:func:`blind_index_of`, :class:`EncryptedText`, :class:`EncryptedColumn` (:mod:`.types`);
:func:`rotate`, :class:`RotationProgress` (:mod:`.rotation`). Needs ``cryptography`` (a kernel
dependency). See docs/services.md ("Field encryption") and docs/models.md ("Encrypted columns").
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FieldKeys", "generate_key", "load_field_keys", "KEY_FILE", "BLIND_INDEX_KEY_FILE",
    "EncryptedText", "EncryptedColumn", "encrypted_columns", "blind_index_of", "install",
    "rotate", "RotationProgress",
]

_HOME = {
    "FieldKeys": "keys", "generate_key": "keys", "load_field_keys": "keys", "KEY_FILE": "keys",
    "BLIND_INDEX_KEY_FILE": "keys", "EncryptedText": "types", "EncryptedColumn": "types",
    "encrypted_columns": "types", "blind_index_of": "types", "install": "types",
    "rotate": "rotation", "RotationProgress": "rotation",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
