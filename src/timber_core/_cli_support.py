"""What the kernel's command modules share: choosing the app a command runs as, and errors.

Imports only click at module level: ``timber apps list`` loads this module too.

Errors have one style for every command, decided here in :func:`report`, which
``timber``'s ``main`` calls for whatever a command raised: one ``Error: ...`` line (or a
few, for a list of problems) naming what failed and the fix, exit code 1 (2 for a usage
error). The traceback is printed before that line only with ``timber --traceback`` or
``TIMBER_DEBUG=1``. Commands wrap what they catch with :func:`fail`, which keeps the
original exception for that traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

import click

__all__ = ["kernel_for_command", "fail", "describe", "logged", "report", "request_traceback", "CommandError"]

_traceback_requested = False


class CommandError(click.ClickException):
    """A command failed: the message is the line to print; ``original`` is the exception behind it."""

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


def _app_name(app: str | None) -> str:
    """Return ``app``, else ``TIMBER_APP``, else the first installed app that starts (not left out)."""
    from .containment import load_contained
    from .plugins import discover

    name = app or os.environ.get("TIMBER_APP")
    if name and name != "timber":
        return name
    apps, _pm = discover()
    load_contained(apps)  # an app whose models fail is left out: never pick it to run a command as
    names = [a.name for a in apps.loaded() if a.name != "timber"]
    if not names:
        failed = [f"{a.name} ({a.status})" for a in apps.failed()]
        if failed:
            raise click.ClickException(f"no installed app starts (left out: {', '.join(failed)}); fix them "
                                       f"(`timber check` says how) or name one with --app")
        raise click.ClickException("no app is installed; install one (e.g. timber-canopy) first")
    return names[0]


def kernel_for_command(app: str | None, **settings: Any) -> Any:
    """Initialize Timber for a command as ``app`` on ``DATABASE_URL``; Timber errors become click errors."""
    from .errors import TimberError
    from .kernel import initialize_timber

    try:
        return initialize_timber(_app_name(app), database_url=os.environ.get("DATABASE_URL") or None, **settings)
    except TimberError as exc:
        raise CommandError(str(exc), exc) from None


def describe(exc: BaseException) -> str:
    """Say what ``exc`` means in one line, keeping its type unless the message says it all.

    A database that cannot be reached (DatabaseUnavailableError) is its message alone; a
    file error under ``TIMBER_HOME`` names TIMBER_HOME and the fix; a database error
    keeps the driver's first line, without SQLAlchemy's statement and background link.
    """
    from .errors import DatabaseUnavailableError

    if isinstance(exc, DatabaseUnavailableError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        home = os.path.abspath(os.environ.get("TIMBER_HOME") or ".timber")
        path = os.path.abspath(os.fsdecode(exc.filename))
        if path == home or path.startswith(home + os.sep):
            vectors = os.path.join(home, "vectors")
            other = "QDRANT_URL" if path == vectors or path.startswith(vectors + os.sep) else "DATABASE_URL"
            fix = f"point TIMBER_HOME at a writable directory or set {other}"
            if exc.errno == errno.EROFS:
                return f"TIMBER_HOME {home} is read-only (cannot write {path}): {fix}"
            return f"TIMBER_HOME {home}: {exc.strerror or exc}: {path}: {fix}"
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.DBAPIError) and exc.orig is not None:
        first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        if exc.connection_invalidated:
            return f"lost the connection to the database ({first}); run the command again once it is back"
        return f"{type(exc).__name__}: {first}"
    return f"{type(exc).__name__}: {exc}"


def logged(exc: BaseException) -> bool:
    """Whether the kernel already logged ``exc``: a connection lost in use (``timber.db``'s one warning)."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.DBAPIError) and exc.connection_invalidated


def fail(exc: Exception) -> click.ClickException:
    """Wrap an unexpected error for the command line (see :func:`describe`), keeping it for ``--traceback``."""
    return CommandError(describe(exc), exc)


def request_traceback(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """Callback of ``timber --traceback``: errors print their full traceback."""
    global _traceback_requested
    if value:
        _traceback_requested = True


def report(exc: Exception) -> int:
    """Print ``exc`` as a command's error (the traceback first when asked) and return the exit code."""
    import traceback

    from .config import debug_enabled
    from .errors import TimberError

    show_traceback = _traceback_requested or debug_enabled()
    if isinstance(exc, click.ClickException):
        original = getattr(exc, "original", None)
        if show_traceback and original is not None:
            traceback.print_exception(original, file=sys.stderr)
        exc.show()
        return exc.exit_code
    if show_traceback:
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"Error: {exc if isinstance(exc, TimberError) else describe(exc)}", err=True)
    return 1
