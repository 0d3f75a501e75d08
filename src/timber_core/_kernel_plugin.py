"""The kernel's own contribution, registered like any app under the name ``timber``."""

from __future__ import annotations

import os

from .hookspecs import hookimpl

_HERE = os.path.dirname(os.path.abspath(__file__))


@hookimpl
def timber_app_info() -> dict[str, object]:
    from . import __version__

    return {
        "name": "timber",
        "version": __version__,
        "description": "Timber kernel: shared users, sessions, notifications and events",
        "depends": [],
    }


@hookimpl
def timber_model_dirs() -> list[str]:
    return [os.path.join(_HERE, "models")]


@hookimpl
def timber_migrations_dir() -> str:
    return os.path.join(_HERE, "migrations", "versions")


@hookimpl
def timber_services(kernel: object) -> dict[str, str]:
    module = "timber_core.services.persistence"
    return {
        "users": f"{module}:UserService",
        "sessions": f"{module}:SessionService",
        "notifications": f"{module}:NotificationService",
        "tracker": f"{module}:TrackerService",
        "vectors": "timber_core.services.vector:VectorService",
    }
