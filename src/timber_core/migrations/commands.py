"""The migration commands of the ``timber`` CLI: ``register(cli)`` adds them.

``timber migrate [--app NAME] [--sql] [--drop-unrecorded]``, ``timber downgrade --app NAME [--all] REV``,
``timber create-migration "message" --app NAME``, ``timber migrations status [--json]``,
``timber migrations check``, ``timber doctor``.

Cheap to import: click only. SQLAlchemy and Alembic are imported inside each
command, so ``timber apps list`` never pays for them. The commands need no app:
each builds its kernel with no default app context (``initialize_timber(app_name=None)``),
or as the app named by ``--app`` (``timber doctor``: ``--app`` or ``TIMBER_APP``); ``TIMBER_APP``
is not read otherwise, and no app is ever guessed; database from ``DATABASE_URL``, without creating
tables or running the startup check, since those are what the commands themselves
manage. A command that has to wait for another process's migration says so once on stderr.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .._cli_support import command_kernel, table

__all__ = ["register"]


def _say_wait(message: str) -> None:
    click.echo(message, err=True)


def _say_unknown(kernel: Any) -> bool:
    """Print on stderr each revision the database records that the installed code lacks; True if any is an error."""
    from .runner import unknown_revisions

    found = unknown_revisions(kernel)
    for u in found:
        click.echo(f"{u.severity.capitalize()}: {u.message()}", err=True)
    return any(u.severity == "error" for u in found)


def register(cli: click.Group) -> None:
    """Add the migration commands to the ``timber`` group ``cli``."""

    @cli.command("migrate")
    @click.option("--app", "app", default=None, help="Upgrade only this app's branch (and what it depends on).")
    @click.option("--sql", is_flag=True, help="Print the SQL of an upgrade from an empty database; run nothing.")
    @click.option("--drop-unrecorded", is_flag=True,
                  help="First drop the tables an interrupted migration left with no recorded revision "
                       "(refused if they hold rows).")
    def migrate(app: str | None, sql: bool, drop_unrecorded: bool) -> None:
        """Upgrade the database to every head (or one app's)."""
        from .runner import upgrade

        if sql and drop_unrecorded:
            raise click.UsageError("--drop-unrecorded changes the database; it cannot go with --sql")
        # No app needed: --app names the branch (and the kernel runs as it, so an app left out says why).
        with command_kernel(app, manage_schema=True, environment=False) as kernel:
            out = upgrade(kernel, app, sql=sql, drop_unrecorded=drop_unrecorded, on_wait=_say_wait)
            failed = out is None and _say_unknown(kernel)
        if out is not None:
            click.echo(out, nl=False)
            return
        click.echo(f"migrated {kernel.db.display_url} to {'every head' if app is None else app + '@head'}"
                   + (" except the app(s) left out above" if failed else ""))
        if failed:
            raise SystemExit(1)

    # ignore_unknown_options: a relative revision such as -1 is the argument, not an unknown option.
    @cli.command("downgrade", context_settings={"ignore_unknown_options": True})
    @click.option("--app", "app", required=True, help="The app whose branch to downgrade.")
    @click.option("--all", "with_dependents", is_flag=True,
                  help="Also take down the other apps whose revisions depend on what is removed "
                       "(refused without it, naming them).")
    @click.argument("revision")
    def downgrade_cmd(app: str, revision: str, with_dependents: bool) -> None:
        """Downgrade one app's branch to REVISION (an id, `base` or `-1`)."""
        from .runner import downgrade

        if revision.startswith("-") and not revision[1:].isdigit():
            raise click.UsageError(f"No such option: {revision}")

        with command_kernel(app, manage_schema=True, environment=False) as kernel:
            others = downgrade(kernel, app, revision, with_dependents=with_dependents, on_wait=_say_wait)
        taken = " and ".join(f"app {name!r}" for name in others)
        click.echo(f"downgraded app {app!r} to {revision}" + (f", and with it {taken}" if taken else ""))

    @cli.command("create-migration")
    @click.argument("message")
    @click.option("--app", "app", required=True, help="The app whose tables, role and policies to compare.")
    @click.option("--rev-id", default=None, help="Revision id (default: random).")
    def create_migration_cmd(message: str, app: str, rev_id: str | None) -> None:
        """Write APP's next revision: its table changes and its role/policy changes, nothing else."""
        from .autogen import create_migration

        with command_kernel(app, manage_schema=True, environment=False) as kernel:
            path = create_migration(kernel, message, app, rev_id=rev_id)
        click.echo(f"wrote {path}" if path else f"no changes for app {app!r}: nothing written")

    @cli.group("migrations")
    def migrations() -> None:
        """Inspect the migration graph."""

    @migrations.command("status")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: no app).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def status_cmd(app: str | None, as_json: bool) -> None:
        """Show each app's installed version, current revision, head and pending revisions.

        Apps the database records but that are not installed are listed too; a problem
        (an app not installed, or older than the database) is said under its line.
        """
        from .runner import status

        with command_kernel(app, manage_schema=True, environment=False) as kernel:
            rows = status(kernel)
        if as_json:
            click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
            return
        click.echo(table(["app", "version", "current", "head", "pending"], [
            [r.app, (r.version or "-") if r.installed else "not installed", r.current or "-", r.head or "-",
             ", ".join(r.pending) or "none"]
            for r in rows
        ]))
        for r in rows:  # under the table: an app not installed, or older than the database
            if r.problem:
                click.echo(f"{'Error' if r.installed else 'Warning'}: {r.problem}")

    @migrations.command("check")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: no app).")
    def check_cmd(app: str | None) -> None:
        """Exit 1 when the models and the database (or the migrations) disagree."""
        from .runner import check, unknown_revisions

        with command_kernel(app, manage_schema=True, environment=False) as kernel:
            problems = check(kernel)
            absent = [u for u in unknown_revisions(kernel) if not u.installed]
        for u in absent:  # not a disagreement of the installed apps: said, without failing the check
            click.echo(f"Warning: {u.message()}", err=True)
        if problems:
            for p in problems:
                click.echo(p, err=True)
            raise SystemExit(1)
        click.echo("models, migrations and database agree")

    @cli.command("doctor")
    @click.option("--app", "app", default=None,
                  help="Check as this app, its login included (default: TIMBER_APP, else no app and no login check).")
    @click.option("--instances", type=int, default=None, help="Processes per app (default: TIMBER_APP_INSTANCES).")
    def doctor_cmd(app: str | None, instances: int | None) -> None:
        """Check RLS, owners, roles, the login, pending migrations and connection arithmetic."""
        from .doctor import run_doctor

        with command_kernel(app, manage_schema=True) as kernel:
            findings = run_doctor(kernel, instances=instances)
        for f in findings:
            click.echo(str(f), err=f.severity == "error")
        if any(f.severity == "error" for f in findings):
            raise SystemExit(1)
        if not findings:
            click.echo("no problems found")
