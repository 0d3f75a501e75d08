"""What the kernel's command modules share: choosing the app a command runs as, and errors.

Imports only click at module level: ``timber apps list`` loads this module too.
"""

from __future__ import annotations

import os
from typing import Any

import click

__all__ = ["kernel_for_command", "fail"]


def _app_name(app: str | None) -> str:
    """Return ``app``, else ``TIMBER_APP``, else the first installed app."""
    from .plugins import discover

    name = app or os.environ.get("TIMBER_APP")
    if name and name != "timber":
        return name
    apps, _pm = discover()
    names = [a.name for a in apps.loaded() if a.name != "timber"]
    if not names:
        raise click.ClickException("no app is installed; install one (e.g. timber-canopy) first")
    return names[0]


def kernel_for_command(app: str | None, **settings: Any) -> Any:
    """Initialize Timber for a command as ``app`` on ``DATABASE_URL``; Timber errors become click errors."""
    from .errors import TimberError
    from .kernel import initialize_timber

    try:
        return initialize_timber(_app_name(app), database_url=os.environ.get("DATABASE_URL") or None, **settings)
    except TimberError as exc:
        raise click.ClickException(str(exc)) from None


def fail(exc: Exception) -> click.ClickException:
    """Wrap an unexpected error for the command line, keeping its type in the message."""
    return click.ClickException(f"{type(exc).__name__}: {exc}")
