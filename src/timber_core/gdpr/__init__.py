"""GDPR export and erasure of one user across every installed app (docs/services.md, "GDPR").

Both calls run only in ``platform_context()`` (IsolationError elsewhere) and only with
``ENABLE_GDPR=true`` (ConfigurationError otherwise). A user's rows are found from the
registry: every table with a foreign key to ``users.id`` (``owned_by`` columns are such
keys), and every table whose key points into such a table (a portfolio's holdings);
apps add what the registry cannot see with the ``timber_gdpr_export`` hook and may
refuse an erasure with ``timber_gdpr_veto`` (docs/plugins.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ._erase import Erasure

__all__ = ["export_user", "erase_user", "Erasure"]


def export_user(user_id: str) -> dict[str, Any]:
    """Return everything Timber holds of user ``user_id`` as one JSON-able dict.

    ``{"format", "user_id", "exported_at", "user": {its users row, "has_password"},
    "apps": {app: {"models": {model: [rows]}, "vectors": [points], "extra": hook answer}}}``:
    each app's rows of its own models, the kernel's sessions, events and notifications under
    the app named on them, each vector point (collection, id, payload) under the app of its
    payload, and the app's ``timber_gdpr_export`` answer when it gives one. Raise
    NotFoundError for an unknown user; the password hash is never exported.
    """
    from ..kernel import get_kernel
    from ._export import export_user as export

    return export(get_kernel(), user_id)


def erase_user(user_id: str, mode: str = "delete", *, requested_by: str = "platform") -> Erasure:
    """Erase user ``user_id`` from every app, the vector index and the cache; return what was done.

    First each app's ``timber_gdpr_veto`` is asked: a reason raises ErasureVetoedError naming
    the app and the reason, with nothing changed. Then one database transaction deletes the
    user's rows in every app (``mode="delete"``), or, with ``mode="anonymize"``, keeps the
    rows of models declaring ``gdpr: {anonymize: [columns]}``, those columns blanked and their
    ``users.id`` columns pointed at a new placeholder account, and deletes the rest; in both
    modes the ``users`` row, its password and its pending vector-outbox work go, and a record
    is written to ``timber_gdpr_audit`` (``requested_by``, when, mode, rows per app: no data of
    the user). After the commit the user's points leave every vector collection, the cache
    forgets the user (``kernel.cache.forget_user``) and the record
    is completed. Idempotent: a re-run after a crash finds no rows and finishes the rest.
    """
    from ..kernel import get_kernel
    from ._erase import erase_user as erase

    return erase(get_kernel(), user_id, mode, requested_by)


def __getattr__(name: str) -> Any:
    # Erasure is imported on first use: `timber gdpr` loads this package, and the command line
    # must not pay for SQLAlchemy before a command runs.
    if name == "Erasure":
        from ._erase import Erasure

        return Erasure
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
