"""The one small hierarchy of errors Timber raises.

Every message says what was asked, by which app (where there is one), where the
problem is (file, line, field) and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "TimberError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "NotInitializedError",
    "SchemaError",
    "PluginError",
    "IsolationError",
    "NotFoundError",
    "ValidationError",
    "VectorSearchError",
    "EncryptionError",
    "AuthenticationError",
    "ConflictError",
    "ErasureVetoedError",
]


class TimberError(Exception):
    """Base of every error Timber raises."""


class ConfigurationError(TimberError):
    """A setting (environment variable, argument, file) is missing or malformed."""


class DatabaseUnavailableError(TimberError):
    """No connection to the database could be opened: refused, timed out, login or database rejected.

    The message names the URL (password hidden), the host and port or file, and the fix.
    ``url`` holds that display URL.
    """

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class NotInitializedError(TimberError):
    """A kernel service was used before ``initialize_timber()`` was called."""


class SchemaError(TimberError):
    """One or more model YAML files are invalid.

    ``problems`` holds every :class:`SchemaProblem`-like entry found, so that
    ``timber check`` can print them all instead of stopping at the first.
    """

    def __init__(self, problems: list[object]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PluginError(TimberError):
    """An app plugin could not be loaded, ordered or merged with the others."""


class IsolationError(TimberError):
    """An app tried to reach data or a model that belongs to another app."""


class NotFoundError(TimberError):
    """A named thing (model, app, row, service, collection) does not exist."""


class ValidationError(TimberError, ValueError):
    """An argument given to a public call is malformed; nothing was written."""


class VectorSearchError(TimberError):
    """The vector index or embedding model could not serve a request."""


class EncryptionError(TimberError):
    """An encrypted column's value cannot be decrypted (no configured key fits) or used as asked."""


class AuthenticationError(TimberError):
    """Credentials or an access token were missing, wrong, expired or signed with an unknown key."""


class ConflictError(ValidationError):
    """A write would duplicate something unique (an email or username already taken); nothing was written."""


class ErasureVetoedError(TimberError):
    """An app refused a GDPR erasure (``timber_gdpr_veto``); nothing was erased.

    ``app`` names the app and ``reason`` is its answer.
    """

    def __init__(self, message: str, app: str, reason: str) -> None:
        super().__init__(message)
        self.app = app
        self.reason = reason
