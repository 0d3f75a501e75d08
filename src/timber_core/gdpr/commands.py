"""The ``timber gdpr`` commands: ``register(cli)`` adds them.

``timber gdpr export USER_ID`` prints the user's export document (JSON) on stdout;
``timber gdpr erase USER_ID [--mode delete|anonymize] [--yes] [--requested-by NAME]``
erases the user and prints what was done. Both build a kernel with no app
(``DATABASE_URL``, ``QDRANT_URL`` as every command) and work in ``platform_context()``;
both need ``ENABLE_GDPR=true``. Cheap to import: click only.
"""

from __future__ import annotations

import getpass
import json

import click

from .._cli_support import command_kernel, table

__all__ = ["register"]


def _operator() -> str:
    """Who runs the command, for the erasure record: the login name, else ``cli``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "cli"


def register(cli: click.Group) -> None:
    """Add the ``gdpr`` group to the ``timber`` group ``cli``."""

    @cli.group("gdpr")
    def gdpr() -> None:
        """GDPR: export or erase one user's data across every app (ENABLE_GDPR=true)."""

    @gdpr.command("export")
    @click.argument("user_id")
    def export(user_id: str) -> None:
        """Print everything Timber holds of USER_ID as one JSON document (redirect it to a file)."""
        from ..context import platform_context
        from . import export_user

        with command_kernel(None, environment=False, timber_errors="plain"), platform_context():
            document = export_user(user_id)
        click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))

    @gdpr.command("erase")
    @click.argument("user_id")
    @click.option("--mode", type=click.Choice(["delete", "anonymize"]), default="delete", show_default=True,
                  help="delete every row, or keep the rows of models declaring gdpr: {anonymize: [...]}, blanked")
    @click.option("--yes", is_flag=True, help="do not ask for confirmation")
    @click.option("--requested-by", default=None, help="who asked, for the erasure record [default: cli:<login>]")
    def erase(user_id: str, mode: str, yes: bool, requested_by: str | None) -> None:
        """Erase USER_ID from every app, the vector index and the cache; record who asked."""
        from ..context import platform_context
        from . import erase_user

        if not yes:
            click.confirm(f"Erase user {user_id} from every app (mode {mode})? This cannot be undone", abort=True)
        with command_kernel(None, environment=False, timber_errors="plain"), platform_context():
            done = erase_user(user_id, mode, requested_by=requested_by or _operator())
        rows = [[app, str(n["deleted"]), str(n["anonymized"])] for app, n in done.rows.items()]
        click.echo(f"erased user {user_id} (mode {mode}); record {done.audit_id}")
        if rows:
            click.echo(table(["app", "deleted", "anonymized"], rows))
        else:
            click.echo("no rows left in the database (erased before?)")
        click.echo(f"vector points deleted: {done.vector_points}")
