"""Ready-made row-level-security grants for an app's ``timber_rls_policies`` hook.

Cheap to import (no SQLAlchemy, no Alembic): plugin modules import it, and ``timber apps
list`` imports plugin modules.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACTING_USER", "own_rows"]

#: The transaction's user (``timber.user_id``), as a policy expression. NULLIF: an unset or
#: empty setting (what a finished transaction leaves, FIELD-NOTES) matches no row. A scalar
#: subquery, so it is computed once per statement. The kernel's own policies
#: (``timber_core.migrations.ops``) use it too.
ACTING_USER: Final = "(SELECT NULLIF(current_setting('timber.user_id', true), ''))"

_COMMANDS: Final = ("ALL", "SELECT", "INSERT", "UPDATE", "DELETE")


def own_rows(name: str, table: str = "sessions", command: str = "ALL", column: str = "user_id") -> dict[str, str]:
    """Return the grant letting the app reach only the acting user's rows of ``table``.

    The dict ``timber_rls_policies`` returns: ``{"name", "table", "command", "using"}``, with
    ``using`` = ``<column> = <the acting user>`` (``check`` defaults to it). The kernel's
    RESTRICTIVE policy still limits the app to its own session types. Raise ValueError for a
    ``command`` PostgreSQL has no policy for.
    """
    if command not in _COMMANDS:
        raise ValueError(f"own_rows({name!r}): command={command!r}; use one of {', '.join(_COMMANDS)}")
    return {"name": name, "table": table, "command": command, "using": f"{column} = {ACTING_USER}"}
