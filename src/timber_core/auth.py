"""One login across every app: password hashes, access tokens and the keys signing them.

No web framework here (timber_core.web builds on it). Passwords are hashed with argon2-cffi
and kept in the kernel-only table ``user_credentials`` (timber_0004), which this module reads
and writes in ``platform_context()``: no app's context can (docs/isolation.md). Access tokens
are PyJWT HS256 tokens carrying the user id (``sub``) and expiry (``exp``), their header naming
the signing key (``kid``), so any app's process on the same keys accepts them.

Keys: ``TIMBER_SECRET_KEYS`` (comma-separated; the first signs, every one verifies). Unset,
on SQLite a key is generated once into ``$TIMBER_HOME/secret_key`` (0600, created atomically,
shared by every process on that home); on PostgreSQL :func:`signing_keys` raises
ConfigurationError naming the setting. Needs the ``timber-core[web]`` extra.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import text

from .context import platform_context
from .errors import AuthenticationError, ConfigurationError, ConflictError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

__all__ = ["Keys", "signing_keys", "home_key", "issue_token", "verify_token", "hash_password", "set_password",
           "authenticate", "register", "KEY_FILE"]

#: The generated key's file under TIMBER_HOME (SQLite only, when TIMBER_SECRET_KEYS is unset).
KEY_FILE = "secret_key"
_ALGORITHM = "HS256"
_BAD_CREDENTIALS = "wrong email or password"
_hasher = PasswordHasher()
#: A hash verified when the email is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("timber: no such user")


class Keys:
    """The keys tokens are signed and verified with: ``signing`` signs, every one of ``by_kid`` verifies."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ConfigurationError("no secret key: set TIMBER_SECRET_KEYS")
        self.by_kid = {_kid(k): k for k in keys}
        self.signing_kid = _kid(keys[0])

    @property
    def signing(self) -> str:
        return self.by_kid[self.signing_kid]


def _kid(key: str) -> str:
    # Derived from the key, so every process names a key alike with no setting for it; a
    # digest prefix reveals nothing usable about the key.
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def home_key(home: Path) -> str:
    """Return the key in ``home/secret_key``, creating it first (0600, atomically) if missing."""
    from ._home_secret import home_secret

    return home_secret(home / KEY_FILE, secrets.token_urlsafe(48))


def signing_keys(kernel: Kernel) -> Keys:
    """Return the kernel's token keys (see the module docstring); raise ConfigurationError on PostgreSQL without any."""
    configured = tuple(kernel.config.SECRET_KEYS)
    if configured:
        return Keys(configured)
    if kernel.db.dialect == "sqlite":
        return Keys((home_key(Path(kernel.config.TIMBER_HOME)),))
    raise ConfigurationError(
        "TIMBER_SECRET_KEYS is not set: on PostgreSQL every process of every app must sign and verify access "
        "tokens with the same keys. Set TIMBER_SECRET_KEYS=<new key>[,<older key>...] in each app's environment "
        "(make a key with python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )


class KernelKeys:
    """The current kernel's token keys, read once per kernel (a web middleware outlives a kernel
    when the process initializes Timber again, as tests do). Call it for the :class:`Keys`."""

    def __init__(self) -> None:
        self._cached: tuple[int, Keys] | None = None

    def __call__(self) -> Keys:
        from .kernel import get_kernel

        kernel = get_kernel()
        if self._cached is None or self._cached[0] != id(kernel):
            self._cached = (id(kernel), signing_keys(kernel))
        return self._cached[1]


def issue_token(keys: Keys, user_id: str, lifetime: int, now: _dt.datetime | None = None) -> str:
    """Return an access token for ``user_id`` valid ``lifetime`` seconds, signed with the first key."""
    issued = now or _dt.datetime.now(_dt.timezone.utc)
    payload = {"sub": user_id, "iat": issued, "exp": issued + _dt.timedelta(seconds=lifetime)}
    return jwt.encode(payload, keys.signing, algorithm=_ALGORITHM, headers={"kid": keys.signing_kid})


def verify_token(keys: Keys, token: str) -> str:
    """Return the user id ``token`` carries; raise AuthenticationError when it is malformed, expired or unknown-keyed."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        raise AuthenticationError("malformed access token: log in again (POST /auth/token)") from None
    key = keys.by_kid.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise AuthenticationError("access token signed with an unknown key: log in again (POST /auth/token)")
    try:
        claims = jwt.decode(token, key, algorithms=[_ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("access token expired: log in again (POST /auth/token)") from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("invalid access token: log in again (POST /auth/token)") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise AuthenticationError("invalid access token: no user: log in again (POST /auth/token)")
    return sub


def hash_password(password: str) -> str:
    """Return the argon2 hash of ``password`` (ValidationError when under 8 characters)."""
    if not isinstance(password, str) or len(password) < 8:
        raise ValidationError("password: must be at least 8 characters")
    return _hasher.hash(password)


_UPSERT = text(
    "INSERT INTO user_credentials (user_id, password_hash, updated_at) VALUES (:u, :h, :t) "
    "ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at"
)


def set_password(kernel: Kernel, user_id: str, password: str) -> None:
    """Set the password of ``user_id`` (in platform_context: apps cannot write the hashes)."""
    _store_hash(kernel, user_id, hash_password(password))


def _store_hash(kernel: Kernel, user_id: str, hashed: str) -> None:
    with platform_context(), kernel.db.connection() as conn:
        conn.execute(_UPSERT, {"u": user_id, "h": hashed, "t": _dt.datetime.now(_dt.timezone.utc)})


def authenticate(kernel: Kernel, email: str, password: str) -> str:
    """Return the id of the user with ``email`` and ``password``; raise AuthenticationError otherwise.

    A hash made with older argon2 parameters is replaced by one made with the current ones.
    """
    with platform_context(), kernel.db.connection() as conn:
        row = conn.execute(
            text("SELECT u.id, c.password_hash FROM users u JOIN user_credentials c ON c.user_id = u.id "
                 "WHERE u.email = :e"), {"e": email}).first()
    stored = row.password_hash if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AuthenticationError(_BAD_CREDENTIALS) from None
    if row is None:
        raise AuthenticationError(_BAD_CREDENTIALS)
    if _hasher.check_needs_rehash(stored):
        set_password(kernel, row.id, password)
    return str(row.id)


def register(kernel: Kernel, email: str, username: str, password: str) -> str:
    """Create an account with a password, in one transaction, and return its id.

    Raise ValidationError for a malformed field, ConflictError when the email or username is taken.
    """
    from .services.persistence import user_service

    # Hashed before the transaction (argon2 takes tens of milliseconds: no lock held meanwhile);
    # a short password is refused before anything is written.
    hashed = hash_password(password)
    # One transaction: an account is never left without its password.
    with platform_context(), kernel.db.session_scope():
        try:
            user_id = user_service.create_user(email, username)
        except ValidationError as exc:
            if "is already taken" in str(exc):  # user_service's one message for a unique field in use
                raise ConflictError(str(exc).replace("; use get_user_by_email() to find the user", "")) from None
            raise
        _store_hash(kernel, user_id, hashed)
    return user_id
