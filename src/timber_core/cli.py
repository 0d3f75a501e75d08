"""The ``timber`` command.

The ``cli`` group is complete at import, as datasette's: the kernel's command modules
(migrations, vectors) are attached when this module is imported, and every installed
app's commands (``timber_register_commands(cli)``) at the end of it, so tests can run
any command in-process with click's ``CliRunner``.

``timber apps list`` and ``timber models list`` read plugin metadata and model
YAML only: they never import SQLAlchemy, a driver or an embedding model.
Commands that need the database import the kernel inside their own body.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from ._cli_support import TimberGroup, command_kernel, report, request_traceback, table
from .apps import BROKEN, CONFLICT, KERNEL_APP, OK, AppRegistry
from .context import PLATFORM

__all__ = ["cli", "main", "app_kernel"]

# -- The CLI's discovery cache: the process's one discovery of the installed apps, and what it
# -- added to ``cli``. Forget it with _reset_discovery() (tests that change what is installed).
_discovered: tuple[AppRegistry, Any] | None = None
#: Names of the commands the apps added to ``cli`` from ``_discovered``.
_app_commands: list[str] = []
#: One line per app whose ``timber_register_commands`` failed; printed on each invocation.
_command_warnings: list[str] = []
_commands_registered = False


def _reset_discovery() -> None:
    """Forget the discovered apps and the commands they added; the next use discovers and registers again."""
    global _discovered, _commands_registered
    _discovered = None
    _commands_registered = False
    for name in _app_commands:
        cli.commands.pop(name, None)
    _app_commands.clear()
    _command_warnings.clear()


def _discover() -> tuple[AppRegistry, Any]:
    """Discover the installed apps once per process (until :func:`_reset_discovery`)."""
    global _discovered
    if _discovered is None:
        from .plugins import discover

        _discovered = discover()
    return _discovered


def _json_dumps(value: Any) -> str:
    import json  # only for --json: its import is about 3 ms of every `timber apps list`

    return json.dumps(value, indent=2)


def _apps() -> AppRegistry:
    return _discover()[0]


class _TimberCli(TimberGroup):
    """``cli``'s class: the kernel's command modules load on first lookup (:data:`KERNEL_COMMANDS`), and
    after a :func:`_reset_discovery` the apps' commands come back on first lookup."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _register_kernel_commands(self, cmd_name)
        _register_app_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_kernel_commands(self)
        _register_app_commands()
        return super().list_commands(ctx)


_NAME_VALUE = re.compile(r"""^name:[ ]*(?:"([A-Za-z_][A-Za-z0-9_]*)"|'([A-Za-z_][A-Za-z0-9_]*)'|([A-Za-z_][A-Za-z0-9_]*))[ ]*(?:[ ]#.*)?$""")


def _scan_model_names(text: str) -> list[str] | None:
    """Return the model names of a block-style model file by scanning its lines; None if unsure.

    Importing PyYAML costs about as much as the rest of ``timber apps list``; the model
    files Timber documents are plain block style, which a line scan reads exactly. Anything
    else (flow style, anchors, tabs, several documents, an item without a name) returns
    None and the caller falls back to the safe loader.
    """
    lines = text.splitlines()
    if "models:" not in lines:
        return None
    names: list[str] = []
    item_indent = key_indent = -1
    named = True
    for line in lines[lines.index("models:") + 1:]:
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(body)
        if "\t" in line or body.startswith(("---", "...")):
            return None
        if indent == 0:
            break  # the next top-level key
        if item_indent < 0:
            item_indent = indent
        if indent < item_indent or body[0] in "{[&*!|>\"'":
            return None
        if indent == item_indent:
            if not body.startswith("- "):
                return None
            if not named:
                return None
            named = False
            rest = body[2:].lstrip(" ")
            key_indent = indent + len(body) - len(rest)
            body, indent = rest, key_indent
            if not body or body[0] in "{[&*!|>\"'-":
                return None
        if indent == key_indent and body.startswith("name:"):
            match = _NAME_VALUE.match(body)
            if match is None or named:
                return None
            names.append(next(g for g in match.groups() if g))
            named = True
    return names if named and names else None


def _model_names(app_dirs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return the model names an app's YAML declares, and any file that cannot be read.

    A line scan, or a plain safe load when the scan is unsure; not the full validation
    (``timber check`` does that): listing stays cheap to start.
    """
    import glob

    names: list[str] = []
    problems: list[str] = []
    for d in app_dirs:
        if not os.path.isdir(d):
            problems.append(f"model directory {d} does not exist")
            continue
        for path in sorted(glob.glob(os.path.join(d, "*.yaml")) + glob.glob(os.path.join(d, "*.yml"))):
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                scanned = _scan_model_names(text)
                if scanned is None:
                    import yaml

                    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
                    scanned = [str(m["name"]) for m in doc["models"]]
                names.extend(scanned)
            except Exception as exc:  # any malformed file: report it, keep listing
                problems.append(f"{path}: cannot be read ({type(exc).__name__}); run `timber check`")
    return names, problems


@click.group(cls=_TimberCli)
@click.version_option(package_name="timber-core", prog_name="timber")
@click.option("--traceback", is_flag=True, expose_value=False, is_eager=True, callback=request_traceback,
              help="On an error, print the full traceback before it (also: TIMBER_DEBUG=1).")
def cli() -> None:
    """Timber: one kernel, many apps, each seeing only its own data."""
    for warning in _command_warnings:  # an app whose commands failed to register: said on every run
        click.echo(f"Warning: {warning}", err=True)


@cli.group("apps")
def apps_group() -> None:
    """Inspect the installed apps."""


@apps_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def apps_list(as_json: bool) -> None:
    """List installed apps: version, distribution, models, session types, policies, services, status.

    Exit 1 when an app is broken or in conflict (left out), after listing every app.
    """
    from . import __version__, _validated
    from .config import TimberConfig

    registry = _apps()
    # Validate the model files as initialize_timber does, so an app whose models fail is listed as
    # it would start: left out, with its error (file, line, field). Files that validated clean
    # before, unchanged, are not validated again (PyYAML and the validator stay unimported).
    home = TimberConfig.load().TIMBER_HOME
    print_ = _validated.fingerprint(__version__, ((a.name, a.model_dirs) for a in registry.loaded()))
    kernel_problems: list[str] = []
    # An unchanged set also lists its model names from the record: no model file is read.
    recorded = _validated.known(home, print_)
    scanned = {name: (names, []) for name, names in (recorded or {}).items()}
    if recorded is None:
        from .containment import load_contained  # PyYAML only: still no SQLAlchemy

        before = len(registry.loaded())
        kernel_problems = [str(p) for p in load_contained(registry).problems]
        if not kernel_problems and len(registry.loaded()) == before:
            scanned = {a.name: _model_names(a.model_dirs) for a in registry.loaded()}
            if not any(problems for _names, problems in scanned.values()):
                _validated.remember(home, print_, {name: names for name, (names, _p) in scanned.items()})
    records = []
    for app in registry:
        if app.loaded and app.name in scanned:
            models, problems = scanned[app.name]
        elif app.status in (OK, BROKEN, CONFLICT):
            models, problems = _model_names(app.model_dirs)
        else:
            models, problems = [], []
        status, error = app.status, app.error
        if app.name == KERNEL_APP and kernel_problems:
            status, error = BROKEN, "; ".join(kernel_problems)
        records.append(
            {
                "name": app.name,
                "version": app.version,
                "distribution": app.distribution,
                "description": app.description,
                "depends": app.depends,
                "models": models,
                "session_types": app.session_types,
                "policies": [p.get("name", "?") for p in app.rls_policies],
                "services": sorted(app.service_factories),
                "status": status,
                "error": error or ("; ".join(problems) if problems else None),
            }
        )
    if as_json:
        click.echo(_json_dumps({"apps": records}))
        if any(r["status"] in (BROKEN, CONFLICT) for r in records):
            sys.exit(1)
        return
    rows = [
        [
            r["name"], r["version"], r["distribution"], ", ".join(r["models"]) or "-",
            ", ".join(r["session_types"]) or "-", ", ".join(r["policies"]) or "-",
            ", ".join(r["services"]) or "-", r["status"],
        ]
        for r in records
    ]
    click.echo(table(["app", "version", "distribution", "models", "session types", "policies", "services", "status"], rows))
    for r in records:
        if r["error"]:
            click.echo(f"{r['name']}: {r['status']}: {r['error']}", err=True)
    if any(r["status"] in (BROKEN, CONFLICT) for r in records):
        sys.exit(1)


@apps_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Remove without asking (needed when stdin is not a terminal).")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
def apps_remove(name: str, yes: bool, dry_run: bool, as_json: bool) -> None:
    """Remove app NAME's tables, shared rows and vector collections from the database, before uninstalling it.

    Shows what will go and asks first. Other apps' data is not touched; the app's
    PostgreSQL role is kept (the SQL to drop it is printed). See docs/plugins.md.
    """
    from ._cli_support import CommandError

    if as_json and not dry_run:
        raise click.UsageError("--json prints the plan only: add --dry-run")
    installed = [a.name for a in _apps() if a.name != KERNEL_APP]
    if name == KERNEL_APP:
        raise CommandError("the kernel ('timber') cannot be removed; remove apps one at a time")
    if name not in installed:
        raise CommandError(
            f"no app named {name!r} is installed (installed: {', '.join(installed) or 'none'}); "
            f"`timber apps remove` needs the app still installed: its migrations take its tables down"
        )
    if not (yes or dry_run or sys.stdin.isatty()):
        raise CommandError(f"cannot ask for confirmation (stdin is not a terminal): run `timber apps remove {name} "
                           f"--yes` to remove it, or add --dry-run to only see what would go")
    from .app_removal import plan_removal, remove_app

    # No startup check: it would refuse the very states removal goes through.
    with command_kernel(name, manage_schema=True, environment=False, timber_errors="plain") as kernel:
        plan = plan_removal(kernel, name)
        if as_json:
            click.echo(_json_dumps(plan.as_dict()))
            return
        for line in plan.describe():
            click.echo(line)
        if plan.refusals:
            raise CommandError(plan.refusal())
        if dry_run:
            click.echo("dry run: nothing changed")
            return
        if plan.empty:
            click.echo(f"nothing of app {name!r} is left in {plan.database}")
        else:
            if not yes and not click.confirm(f"Remove app {name!r}'s data from {plan.database}?", default=False):
                click.echo("nothing changed")
                return
            remove_app(kernel, plan, on_step=click.echo, on_wait=lambda message: click.echo(message, err=True))
            click.echo(f"removed app {name!r} from {plan.database}")
    click.echo(f"now uninstall {plan.distribution} (or set TIMBER_DISABLE_APPS={name}): while it is installed, "
               f"Timber migrates its tables back on SQLite and reports them missing on PostgreSQL")
    if plan.role_sql:
        click.echo(f"its role {plan.role} is kept: roles belong to the whole PostgreSQL server. Once no database "
                   f"on it uses app {name!r}, drop the role as a superuser: run the first statement in each "
                   f"database where the app was installed, then the second once:")
        for statement in plan.role_sql:
            click.echo(f"  {statement}")


@cli.group("models")
def models_group() -> None:
    """Inspect the merged model registry."""


@models_group.command("list")
@click.option("--app", "app_name", default=None, help="Only this app's models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def models_list(app_name: str | None, as_json: bool) -> None:
    """List every model: name, table, owning app, shared/typed, vector search."""
    from .schema import load_schema

    registry = _apps()
    if app_name is not None:
        registry.get(app_name)  # unknown app: NotFoundError naming the installed ones
    schema = load_schema((a.name, d) for a in registry.loaded() for d in a.model_dirs)
    models = [m for m in schema.models if app_name is None or m.app == app_name]
    records = [
        {
            "name": m.name,
            "table": m.table_name,
            "app": m.app,
            "access": "shared" if m.shared else "private",
            "typed_by": m.typed_by,
            "columns": [c.name for c in m.columns],
            "vector_search": m.vector_search.content_field if m.vector_search and m.vector_search.enabled else None,
            "file": f"{m.where.file}:{m.where.line}",
        }
        for m in models
    ]
    if as_json:
        click.echo(_json_dumps({"models": records}))
    else:
        rows = [[r["name"], r["table"], r["app"], r["access"] + (f" (typed by {r['typed_by']})" if r["typed_by"] else ""),
                 str(len(r["columns"])), r["vector_search"] or "-"] for r in records]
        click.echo(table(["model", "table", "app", "access", "columns", "vector search"], rows))
    for p in schema.problems:
        click.echo(str(p), err=True)
    if schema.problems:
        sys.exit(1)


@cli.command("check")
def check() -> None:
    """Load every app and model; print every problem found; exit 1 if there is any.

    Each problem is one ``Error: ...`` line on stderr (the style of every command's error,
    ``_cli_support.report``); the summary names the apps left out and those that start.
    """
    from .errors import SchemaError, TimberError

    registry = _apps()
    fatal: list[str] = []
    try:
        from .kernel import build_schema

        build_schema(registry)  # leaves out (in registry) each app whose models fail
    except SchemaError as exc:
        fatal.extend(str(p) for p in exc.problems)
    except TimberError as exc:
        fatal.append(str(exc))
    problems = [str(p) for p in registry.problems] + fatal
    loaded = [a.name for a in registry.loaded() if a.name != KERNEL_APP]
    if problems:
        for p in problems:
            click.echo(f"Error: {p}", err=True)
        left_out = [f"{a.name} ({a.status})" for a in registry.failed()]
        starting = "none (no app can start)" if fatal else (", ".join(loaded) or "none")
        click.echo(f"timber check: {len(problems)} problem(s) found; left out: {', '.join(left_out) or 'none'}; "
                   f"the other apps start: {starting}", err=True)
        sys.exit(1)
    click.echo(f"timber check: ok ({len(loaded)} apps: {', '.join(loaded) or 'none'})")


@cli.command("new-app")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(exists=True, file_okay=False), default=None,
              help="Create the app in DIR/NAME (default: ./timber-NAME).")
@click.option("--session-type", default=None, help="The type of its shared sessions rows (default: NAME).")
def new_app_cmd(name: str, parent: str | None, session_type: str | None) -> None:
    """Generate app NAME's distribution: entry point, hooks, models, service, command, initial migration, tests."""
    from ._cli_support import CommandError
    from .scaffold import ScaffoldError, new_app

    try:
        path = new_app(name, parent, session_type=session_type)
    except ScaffoldError as exc:
        raise CommandError(str(exc), exc) from None
    click.echo(f"created app {name!r} in {path}\nnext: pip install -e {path} && timber migrate; "
               f"its tests: cd {path} && pytest")


@cli.command("serve")
@click.argument("app")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option("--reload", is_flag=True, help="Restart on code changes (development; one process).")
def serve_cmd(app: str, host: str, port: int, workers: int, reload: bool) -> None:
    """Run APP's web server (uvicorn): the kernel's endpoints and APP's own routes (docs/web.md).

    APP "platform" serves the cross-app endpoints in the platform context (on PostgreSQL the
    login must be granted timber_platform).
    """
    from ._cli_support import CommandError

    if reload and workers > 1:
        raise click.UsageError("--reload runs one process: leave out --workers")
    registry = _apps()
    installed = sorted(a.name for a in registry.loaded() if a.name != KERNEL_APP)
    if app not in installed and app != PLATFORM:
        raise CommandError(f"no app named {app!r} is installed and loaded (installed: {', '.join(installed) or 'none'}; "
                           f"or {PLATFORM!r} for the cross-app server); install its distribution, or see "
                           f"`timber apps list`")
    try:
        from .web.serve import serve
    except ModuleNotFoundError as exc:
        raise CommandError(f"timber serve needs the web extra ({exc.name} is missing): "
                           f"pip install 'timber-core[web]'") from None
    serve(app, host=host, port=port, workers=workers, reload=reload)


@contextmanager
def app_kernel(app_name: str, **settings: Any) -> Iterator[Any]:
    """Run the block with a kernel initialized as ``app_name``; close it when the block ends.

    For an app's own ``timber`` commands (``timber_register_commands``): the command runs in
    the ``timber`` process, where no kernel exists until it asks for one. The kernel is
    ``initialize_timber(app_name, database_url=DATABASE_URL or the embedded SQLite, **settings)``,
    so every query and service call in the block runs in ``app_name``'s context, as in the
    app's own processes. A Timber error (an app that is not installed, a database that
    cannot be reached) is reported like every command's error: one ``Error: ...`` line, exit 1.
    """
    with command_kernel(app_name, environment=False, timber_errors="plain", **settings) as kernel:
        yield kernel


#: The kernel's command modules and the commands each adds to ``cli``. A module is imported and
#: registered when one of its commands is looked up, or when the commands are listed (``--help``),
#: so ``timber apps list`` does not pay for them (a test keeps these names true to each module).
KERNEL_COMMANDS: dict[str, tuple[str, ...]] = {
    "timber_core.migrations.commands": ("migrate", "downgrade", "create-migration", "migrations", "doctor"),
    "timber_core.vectors.commands": ("vectors",),
    "timber_core.encryption.commands": ("keys",),
    "timber_core.gdpr.commands": ("gdpr",),
    "timber_core.cache.commands": ("cache",),
}
_kernel_modules_loaded: set[str] = set()


def _register_kernel_commands(group: click.Group, wanted: str | None = None) -> None:
    """Register the kernel's command modules on ``group``: the one adding command ``wanted``, or all."""
    for module, names in KERNEL_COMMANDS.items():
        if module in _kernel_modules_loaded or (wanted is not None and wanted not in names):
            continue
        _kernel_modules_loaded.add(module)
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:  # pragma: no cover - a trimmed install
            if exc.name and module.startswith(exc.name):
                continue  # that part of the kernel is not installed
            raise
        mod.register(group)


def _register_app_commands() -> None:
    """Add every loaded app's own commands to ``cli`` (once per discovery); keep the failures as warnings."""
    global _commands_registered
    if _commands_registered:
        return
    from .plugins import register_app_commands

    registry, pm = _discover()
    _commands_registered = True  # before the hooks run: an app's hook that looks a command up must not recurse
    before = set(cli.commands)
    _command_warnings.extend(register_app_commands(registry, pm, cli))
    _app_commands.extend(sorted(set(cli.commands) - before))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``timber`` command line; every error ends in one place (``_cli_support.report``)."""
    from . import _collector

    _collector.skip_exit_collection()
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="timber", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except Exception as exc:  # one short line naming what failed; the traceback with --traceback
        sys.exit(report(exc))


try:
    _register_app_commands()
except Exception:  # noqa: BLE001 - e.g. a malformed TIMBER_APPS: main() raises it again, in the one error style
    _reset_discovery()

if __name__ == "__main__":  # pragma: no cover
    main()
