"""Grove's Timber hooks. Cheap to import: no SQLAlchemy, no services."""

from __future__ import annotations

import os

from timber_core import hookimpl
from timber_core.policies import own_rows

_HERE = os.path.dirname(os.path.abspath(__file__))


@hookimpl
def timber_app_info() -> dict[str, object]:
    # Name and version come from the entry point and the distribution (pyproject.toml).
    return {"description": "Research platform: research sessions, notes and reports"}


@hookimpl
def timber_model_dirs() -> list[str]:
    return [os.path.join(_HERE, "models")]


@hookimpl
def timber_session_types() -> list[str]:
    return ["research", "analysis"]


@hookimpl
def timber_rls_policies() -> list[dict[str, str]]:
    # A researcher reaches only their own sessions, within Grove's types.
    return [own_rows("grove_own_sessions")]


@hookimpl
def timber_services(kernel: object) -> dict[str, str]:
    return {"reports": "grove.services.report_service:ReportService"}


@hookimpl
def timber_migrations_dir() -> str:
    return os.path.join(_HERE, "migrations", "versions")


@hookimpl
def timber_web_app() -> object:
    from .web import make_router  # FastAPI only when a web server is built

    return make_router()
