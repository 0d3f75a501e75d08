"""What the kernel's command modules share: the kernel a command runs with, errors, tables.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

__all__ = ["kernel_for_command", "command_kernel", "table", "TimberGroup", "fail", "describe", "logged", "report",
           "request_traceback", "CommandError"]

_traceback_requested = False


class CommandError(click.ClickException):
    """A command failed: the message is the line to print; ``original`` is the exception behind it."""

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


def _app_name(app: str | None, *, environment: bool) -> str | None:
    """Return the app a command runs as: ``app``, else (when ``environment``) ``TIMBER_APP``, else None (no app)."""
    name = app or (os.environ.get("TIMBER_APP") if environment else None)
    return name if name and name != "timber" else None


def kernel_for_command(app: str | None, *, environment: bool = True, **settings: Any) -> Any:
    """Initialize Timber for a command on ``DATABASE_URL``; Timber errors become click errors.

    As ``app``, else ``TIMBER_APP`` (when ``environment``), else with no default app
    (``initialize_timber(app_name=None)``): a command never guesses an app.
    """
    from .errors import TimberError
    from .kernel import initialize_timber

    try:
        return initialize_timber(_app_name(app, environment=environment),
                                 database_url=os.environ.get("DATABASE_URL") or None, **settings)
    except TimberError as exc:
        raise CommandError(str(exc), exc) from None


#: What a command lets through unchanged: click's own exits and errors (already in the one style).
_PASS_THROUGH = (click.ClickException, click.exceptions.Exit, click.exceptions.Abort)


@contextmanager
def command_kernel(app: str | None = None, *, manage_schema: bool = False, environment: bool = True,
                   timber_errors: str = "typed", **settings: Any) -> Iterator[Any]:
    """Run a command's block with its kernel (:func:`kernel_for_command`); close the kernel after.

    ``manage_schema``: no tables created and no startup check (the migration commands manage
    those). An error in the block becomes the command's one ``Error: ...`` line (:func:`fail`,
    the original kept for ``--traceback``); with ``timber_errors="plain"`` a TimberError is its
    message alone. click's errors and exits pass through.
    """
    if manage_schema:
        from .migrations.doctor import skip_startup_check

        with skip_startup_check():
            kernel = kernel_for_command(app, environment=environment, create_tables=False, **settings)
    else:
        kernel = kernel_for_command(app, environment=environment, **settings)
    try:
        yield kernel
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        from .errors import TimberError

        if timber_errors == "plain" and isinstance(exc, TimberError):
            raise CommandError(str(exc), exc) from None
        raise fail(exc) from None
    finally:
        kernel.close()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render ``rows`` as aligned columns under ``headers`` and a dashed rule: every listing's one style."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


class TimberGroup(click.Group):
    """The ``timber`` group: whatever a command raises becomes the one error style here.

    So ``timber``'s ``main`` and click's ``CliRunner`` print the same ``Error: ...`` line:
    a TimberError is its message, anything else :func:`describe`; the original is kept for
    ``--traceback``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            from .errors import TimberError

            raise CommandError(str(exc) if isinstance(exc, TimberError) else describe(exc), exc) from None


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
    _traceback_requested = bool(value)  # set on every invocation: one in-process run does not leak into the next


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
