"""The keys of encrypted columns: where they come from, and what is done with them.

Two secrets, never stored in the database:

* the encryption keys (``TIMBER_ENCRYPTION_KEYS``, comma-separated, newest first; else the file
  ``TIMBER_ENCRYPTION_KEY_FILE``, one key a line, newest first): 32 random bytes each, in
  url-safe base64 (the format of a Fernet key). The newest encrypts; every one decrypts, so a
  new key can be put first while ``timber keys rotate`` re-encrypts the rows and reads keep
  working.
* the blind-index secret (``TIMBER_BLIND_INDEX_KEY``), from which one HMAC-SHA256 key per
  column is derived (HKDF). It is separate from the encryption keys so that rotating them leaves
  every blind index valid.

Values are sealed with AES-256-GCM (``cryptography``'s AESGCM: authenticated, a random
96-bit nonce per value) as the token ``hex(version 1 | key id (4) | nonce (12) |
ciphertext and tag)``: hex rather than base64 because ``bytes.fromhex`` decodes in about half
the time of ``binascii.a2b_base64`` here, on every value of every row loaded, for tokens half
again as long. The key id (a digest prefix of the key) picks the key to try, so
rotation tells a value under the newest key without decrypting it. Not Fernet, though the
keys look alike: Fernet (AES-128-CBC + HMAC, a new cipher context per call) measured about
60 µs per decrypt here, which made reading rows with two encrypted fields 0.23x as fast as
without (bench/bench_encryption.py); AESGCM takes about 5 µs.

Unset on SQLite (the embedded default), each is generated once into ``$TIMBER_HOME``
(``encryption_keys``, ``blind_index_key``; 0600, created atomically, shared by every
process on that home), as ``auth.py`` does for token keys. Unset on PostgreSQL, the kernel
refuses to start: processes of several apps on several machines must share the keys, and a
key generated on one machine would make the others' rows unreadable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import base64
import hashlib
import hmac as _stdlib_hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._home_secret import home_secret
from ..config import encryption_keys
from ..errors import ConfigurationError

__all__ = ["FieldKeys", "generate_key", "load_field_keys", "KEY_FILE", "BLIND_INDEX_KEY_FILE", "InvalidToken"]

#: The generated encryption key file under TIMBER_HOME (SQLite, when no key is configured).
KEY_FILE = "encryption_keys"
#: The generated blind-index secret under TIMBER_HOME (SQLite, when TIMBER_BLIND_INDEX_KEY is unset).
BLIND_INDEX_KEY_FILE = "blind_index_key"
_MIN_BLIND_INDEX_SECRET = 32
_VERSION = b"\x01"
_KID, _NONCE = 4, 12
_HEADER = 1 + _KID + _NONCE


class InvalidToken(Exception):
    """No configured key decrypts the value (or it is not a Timber token)."""


def generate_key() -> str:
    """Return a new key (32 random bytes, url-safe base64 text), for ``TIMBER_ENCRYPTION_KEYS``."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _kid(key: bytes) -> bytes:
    return hashlib.sha256(b"timber field key id " + key).digest()[:_KID]


class FieldKeys:
    """The encryption keys (newest first) and the blind-index secret; ``source`` says where they came from."""

    def __init__(self, keys: Sequence[str], blind_index_secret: str | None, source: str) -> None:
        if not keys:
            raise ConfigurationError("no encryption key: set TIMBER_ENCRYPTION_KEYS (make one with `timber keys generate`)")
        self.source = source
        raw = [base64.urlsafe_b64decode(k.encode("ascii")) for k in keys]
        self._by_kid: dict[bytes, list[AESGCM]] = {}
        for key in raw:
            self._by_kid.setdefault(_kid(key), []).append(AESGCM(key))
        self._newest_kid, self._newest = _kid(raw[0]), AESGCM(raw[0])
        self._newest_head = _VERSION + self._newest_kid
        self._newest_head_hex = self._newest_head.hex()
        self._secret = blind_index_secret.encode() if blind_index_secret else None
        self._derived: dict[str, bytes] = {}

    def encrypt(self, plaintext: str) -> str:
        """Return the token of ``plaintext`` under the newest key."""
        nonce = os.urandom(_NONCE)
        sealed = self._newest.encrypt(nonce, plaintext.encode("utf-8"), None)
        return (self._newest_head + nonce + sealed).hex()

    def decrypt(self, token: str) -> str:
        """Return the plaintext of ``token``; raise InvalidToken when no key decrypts it."""
        # On every row loaded: the newest key's tokens (the usual case) take the shortest path.
        try:
            data = bytes.fromhex(token)
        except (TypeError, ValueError):
            raise InvalidToken from None
        head = data[:_HEADER - _NONCE]
        keys = (self._newest,) if head == self._newest_head else (
            self._by_kid.get(head[1:], ()) if head[:1] == _VERSION else ())
        for aead in keys:
            try:
                return aead.decrypt(data[_HEADER - _NONCE:_HEADER], data[_HEADER:], None).decode("utf-8")
            except InvalidTag:
                continue
        raise InvalidToken

    def is_current(self, token: str) -> bool:
        """Return whether ``token`` is under the newest key (rotation skips such values), from its key id."""
        return token[:len(self._newest_head_hex)] == self._newest_head_hex

    def rotate(self, token: str) -> str:
        """Return ``token`` re-encrypted under the newest key; raise InvalidToken when no key decrypts it."""
        return self.encrypt(self.decrypt(token))

    def blind_index(self, label: str, value: str) -> str:
        """Return the keyed hash (hex HMAC-SHA256) of ``value`` for the column ``label`` (``table.column``).

        Each column gets its own key (HKDF of the secret with the label), so equal values in two
        columns or two apps hash differently.
        """
        if self._secret is None:
            raise ConfigurationError("no blind-index key: set TIMBER_BLIND_INDEX_KEY (at least 32 characters)")
        key = self._derived.get(label)
        if key is None:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=f"timber blind index {label}".encode()).derive(self._secret)
            self._derived[label] = key
        return _stdlib_hmac.digest(key, value.encode("utf-8"), "sha256").hex()


def _read_key_file(path: str, name: str) -> tuple[str, ...]:
    """Return the keys of the file ``path`` (one a line, ``#`` comments); ``name`` says what it is in errors."""
    try:
        raw = Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"{name} cannot be read: {exc.strerror}") from None
    lines = [line.strip() for line in raw.splitlines() if line.strip() and not line.strip().startswith("#")]
    try:
        return encryption_keys(",".join(lines))
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None


def _refuse(setting: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"{setting} is not set: {why}. On PostgreSQL every process of every app must use the same keys: "
        f"set {setting} in each app's environment (see docs/services.md, \"Field encryption\")"
    )


def load_field_keys(config: Any, dialect: str, columns: str, blind_index: bool) -> FieldKeys:
    """Return the keys ``config`` names (see the module docstring) for a kernel on ``dialect``.

    ``columns`` names the encrypted columns for the error when no key is configured on
    PostgreSQL; ``blind_index``: some column needs the blind-index secret.
    """
    home = Path(config.TIMBER_HOME)
    if config.ENCRYPTION_KEYS:
        keys, source = tuple(config.ENCRYPTION_KEYS), "TIMBER_ENCRYPTION_KEYS"
    elif config.ENCRYPTION_KEY_FILE:
        keys = _read_key_file(config.ENCRYPTION_KEY_FILE, f"TIMBER_ENCRYPTION_KEY_FILE={config.ENCRYPTION_KEY_FILE!r}")
        source = f"TIMBER_ENCRYPTION_KEY_FILE ({config.ENCRYPTION_KEY_FILE})"
        if not keys:
            raise ConfigurationError(f"TIMBER_ENCRYPTION_KEY_FILE={config.ENCRYPTION_KEY_FILE!r} holds no key: "
                                     f"put one there (`timber keys generate`)")
    elif dialect == "sqlite":
        path = home / KEY_FILE
        home_secret(path, generate_key())
        keys, source = _read_key_file(str(path), f"the generated key file {path}"), str(path)
    else:
        raise _refuse("TIMBER_ENCRYPTION_KEYS", f"the encrypted columns {columns} need a key")
    secret = None
    if blind_index:
        secret = config.BLIND_INDEX_KEY
        if secret is None and dialect == "sqlite":
            secret = home_secret(home / BLIND_INDEX_KEY_FILE, secrets.token_urlsafe(48))
        if secret is None:
            raise _refuse("TIMBER_BLIND_INDEX_KEY", "blind_index: true columns need a secret to hash with")
        if len(secret) < _MIN_BLIND_INDEX_SECRET:
            raise ConfigurationError(f"TIMBER_BLIND_INDEX_KEY is shorter than {_MIN_BLIND_INDEX_SECRET} characters; "
                                     f"make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return FieldKeys(keys, secret, source)
