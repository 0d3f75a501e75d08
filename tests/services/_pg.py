"""Bring a scratch PostgreSQL database to the current schema for the service tests."""

from __future__ import annotations

from typing import Any

import timber_core


def prepare(url: str) -> Any:
    """Create the schema in the empty database at ``url`` and return a kernel initialized for Canopy."""
    return timber_core.initialize_timber(app_name="canopy", database_url=url, create_tables=True)
