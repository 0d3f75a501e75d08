"""Field encryption: ``encrypted: true`` columns, their keys, blind indexes and key rotation.

Public surface: :class:`FieldKeys`, :func:`generate_key`, :func:`load_field_keys`,
:func:`install` (the kernel calls it), :func:`encrypted_columns`, :func:`blind_index_of`,
:func:`rotate` and :class:`RotationProgress`. Needs ``cryptography`` (a kernel dependency).
See docs/services.md ("Field encryption") and docs/models.md ("Encrypted columns").
"""

from __future__ import annotations

from .keys import BLIND_INDEX_KEY_FILE, KEY_FILE, FieldKeys, generate_key, load_field_keys
from .rotation import RotationProgress, rotate
from .types import EncryptedColumn, EncryptedText, blind_index_of, encrypted_columns, install

__all__ = [
    "FieldKeys", "generate_key", "load_field_keys", "KEY_FILE", "BLIND_INDEX_KEY_FILE",
    "EncryptedText", "EncryptedColumn", "encrypted_columns", "blind_index_of", "install",
    "rotate", "RotationProgress",
]
