"""Canopy's Timber hooks. Cheap to import: no SQLAlchemy, no services."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from timber_core import hookimpl

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click

_HERE = os.path.dirname(os.path.abspath(__file__))


@hookimpl
def timber_app_info() -> dict[str, object]:
    return {
        "name": "canopy",
        "version": "1.0.0",
        "description": "Trading platform: trading sessions and orders",
        "depends": [],
    }


@hookimpl
def timber_model_dirs() -> list[str]:
    return [os.path.join(_HERE, "models")]


@hookimpl
def timber_session_types() -> list[str]:
    return ["trading", "paper_trading"]


@hookimpl
def timber_rls_policies() -> list[dict[str, str]]:
    # A trader reaches only their own sessions, within Canopy's types. NULLIF: an
    # unset or empty timber.user_id (what a finished transaction leaves) matches no row.
    return [
        {
            "name": "canopy_own_sessions",
            "table": "sessions",
            "command": "ALL",
            "using": "user_id = (SELECT NULLIF(current_setting('timber.user_id', true), ''))",
        }
    ]


@hookimpl
def timber_services(kernel: object) -> dict[str, str]:
    return {"orders": "canopy.services.order_service:OrderService"}


@hookimpl
def timber_migrations_dir() -> str:
    return os.path.join(_HERE, "migrations", "versions")


@hookimpl
def timber_register_commands(cli: click.Group) -> None:
    from .commands import register  # click only; the database is reached inside each command

    register(cli)
