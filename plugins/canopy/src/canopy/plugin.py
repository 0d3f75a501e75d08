"""Canopy's Timber hooks. Cheap to import: no SQLAlchemy, no services."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from timber_core import hookimpl
from timber_core.policies import own_rows

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click

_HERE = os.path.dirname(os.path.abspath(__file__))


@hookimpl
def timber_app_info() -> dict[str, object]:
    # Name and version come from the entry point and the distribution (pyproject.toml).
    return {"description": "Trading platform: trading sessions and orders"}


@hookimpl
def timber_model_dirs() -> list[str]:
    return [os.path.join(_HERE, "models")]


@hookimpl
def timber_session_types() -> list[str]:
    return ["trading", "paper_trading"]


@hookimpl
def timber_rls_policies() -> list[dict[str, str]]:
    # A trader reaches only their own sessions, within Canopy's types.
    return [own_rows("canopy_own_sessions")]


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


@hookimpl
def timber_gdpr_veto(kernel: object, user_id: str, mode: str) -> str | None:
    # Filled orders are trade records a broker must retain: they may be anonymized, never deleted.
    if mode != "delete":
        return None
    from .gdpr import filled_orders  # SQLAlchemy only when an erasure is asked

    n = filled_orders(kernel, user_id)
    if not n:
        return None
    return (f"{n} filled order{'s' if n != 1 else ''} must be retained (legal retention of trade records); "
            f"erase with mode anonymize, which keeps them without the user's data")


@hookimpl
def timber_web_app() -> object:
    from .web import make_router  # FastAPI only when a web server is built

    return make_router()
