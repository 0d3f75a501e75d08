"""The PostgreSQL role names Timber uses, derived from app names (cheap: no SQLAlchemy).

* ``timber_owner``: NOLOGIN, owns every table (migrations hand each new table to it); nothing runs as it.
* ``timber_apps``: NOLOGIN group holding the privileges on the shared tables; every app role is a member.
* ``timber_<app>``: NOLOGIN, NOSUPERUSER, NOBYPASSRLS; the role an app's transactions run as.
* ``timber_platform``: NOLOGIN, NOSUPERUSER, NOBYPASSRLS; the explicit cross-app context.

Roles are cluster-wide: several databases on one server share them, which is why migrations
create them idempotently and never drop them (see docs/isolation.md).
"""

from __future__ import annotations

from typing import Final

from .context import PLATFORM
from .errors import ConfigurationError

__all__ = ["OWNER_ROLE", "APPS_ROLE", "PLATFORM_ROLE", "ROLE_PREFIX", "app_role", "context_role"]

ROLE_PREFIX: Final = "timber_"
OWNER_ROLE: Final = "timber_owner"
APPS_ROLE: Final = "timber_apps"
PLATFORM_ROLE: Final = "timber_platform"
_KERNEL_ROLES: Final = frozenset({OWNER_ROLE, APPS_ROLE, PLATFORM_ROLE})


def app_role(app: str) -> str:
    """Return the role of app ``app`` (``timber_<app>``).

    Raise ConfigurationError when the name would collide with one of the kernel's roles.
    """
    role = f"{ROLE_PREFIX}{app}"
    if role in _KERNEL_ROLES:
        raise ConfigurationError(
            f"app {app!r} cannot run on PostgreSQL: its role would be {role!r}, which is one of the "
            f"kernel's roles ({', '.join(sorted(_KERNEL_ROLES))}); rename the app"
        )
    return role


def context_role(app: str) -> str:
    """Return the role a transaction runs as in context ``app`` (``"platform"`` -> ``timber_platform``)."""
    return PLATFORM_ROLE if app == PLATFORM else app_role(app)
