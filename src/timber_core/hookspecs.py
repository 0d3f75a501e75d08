"""The hooks a Timber app plugin implements: the plugin author's reference.

A plugin is a module registered under the ``timber.apps`` entry-point group,
whose entry-point name is the app's name. It implements any of the hooks below
with :data:`timber_core.hookimpl`. Keep the module cheap to import: it is
loaded by ``timber apps list``, which must not import SQLAlchemy, an embedding
model or a database driver. Import services inside :func:`timber_services`'s
factories, not at module level.

The kernel calls each hook for one app at a time, through pluggy, with the
other apps' plugins left out of the call: hookwrappers (``wrapper=True`` or
``hookwrapper=True``), ``tryfirst``/``trylast``, ``specname``, tracing and
``add_hookcall_monitoring`` work as in any pluggy project, and a wrapper sees
the list of its own app's results. The app's answer is the first result that
is not None, in pluggy's call order. A hook that raises marks that app broken
(reported by ``timber apps list`` and ``timber check``) and leaves it out,
without taking the other apps down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click

    from .kernel import Kernel

PROJECT_NAME = "timber"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def timber_app_info() -> dict[str, Any]:
    """Describe the app: return any of ``{"name", "version", "description", "depends"}``.

    Every key is optional, and so is the hook. ``name`` defaults to the
    entry-point name and, if given, must equal it; ``version`` defaults to the
    distribution's version (its metadata); ``description`` defaults to ``""``
    and ``depends`` (names of apps that must load first) to ``[]``. Any other
    key is an error.
    """


@hookspec
def timber_model_dirs() -> list[str]:
    """Return the directories of model YAML (``*.yaml``) this app contributes."""


@hookspec
def timber_session_types() -> list[str]:
    """Return the session types this app owns (rows of the shared ``sessions`` table).

    Two apps may not own the same type; only the owner may create, read or
    change sessions of its types.
    """


@hookspec
def timber_rls_policies() -> list[dict[str, Any]]:
    """Return the app's row-level-security grants on shared, typed tables.

    Each entry is ``{"name", "table", "command", "using", "check"}``: a
    PERMISSIVE policy for this app's role (``command`` is ``ALL``, ``SELECT``,
    ``INSERT``, ``UPDATE`` or ``DELETE``; ``check`` defaults to ``using``). The
    kernel always adds a RESTRICTIVE policy limiting the app to its own session
    types, so a grant can never widen the app's reach beyond them.
    """


@hookspec
def timber_services(kernel: Kernel | None) -> dict[str, Any]:
    """Return the app's services as ``{name: factory}``.

    A factory is a callable taking the kernel, or a ``"module:attr"`` string
    naming one, imported and called on first use of ``kernel.services[name]``.
    Called twice: with ``kernel=None`` when the apps are discovered (what
    ``timber apps list`` shows, and what service conflicts are judged on), then
    with the built kernel by ``initialize_timber``, after the tables and before
    :func:`timber_startup`; that answer's factories are the ones used. Return
    the same names both times (else the app is left out); build nothing here.
    """


@hookspec
def timber_migrations_dir() -> str | None:
    """Return the directory holding this app's Alembic revision files, or None."""


@hookspec
def timber_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``timber`` command group (``@cli.command()``)."""


@hookspec
def timber_web_app() -> Any:
    """Return the app's own web routes: a FastAPI ``APIRouter`` (recommended), or any ASGI app.

    Called by :func:`timber_core.web.create_app` (and so by ``timber serve APP``) when it
    builds the app's server, before the kernel is initialized: build routes here, reach the
    kernel and the services inside the handlers. A router is included beside the kernel's
    endpoints (``/auth/*``, ``/sessions``, ``/notifications``, ``/health``), under the same
    middleware and error shapes, and its routes appear in the server's OpenAPI schema; an
    ASGI app is mounted at ``/`` behind the kernel's endpoints (they answer first) and also
    runs inside the middleware's app and user contexts. Import FastAPI inside this hook, not
    at module level (the plugin module stays cheap to import). Return None for no routes.
    """


@hookspec
def timber_startup(kernel: Kernel) -> None:
    """Set the app up once the kernel is ready; the return value is ignored.

    Called once per loaded app, in dependency order, at the end of
    ``initialize_timber``: after the models, the tables (and, on PostgreSQL,
    the startup check) and the services given the kernel, before it returns.
    It runs in the app's own context (as inside ``app_context``); use the
    ``kernel`` argument: ``get_kernel()`` answers only once
    ``initialize_timber`` has returned. An app whose startup raises is left out (``broken``, logged on the
    ``timber`` logger) with the apps depending on it: its services leave
    ``kernel.services`` and ``app_context`` refuses it, while its models
    stay in ``kernel.models``. Initializing as that app raises
    PluginError. Not called by commands that build no kernel.
    """


@hookspec
def timber_gdpr_export(kernel: Kernel, user_id: str) -> Any:
    """Return what the app holds of user ``user_id`` beyond its models' rows (JSON-able), or None.

    Called by ``timber_core.gdpr.export_user`` in ``platform_context()``, once per app;
    the answer appears in the export under the app's ``"extra"`` key. The kernel already
    exports every row of every model that references ``users.id`` (directly or through
    a parent row); answer here only for data the registry cannot see (files, another
    store). Read only: an exception aborts the export, naming the app.
    """


@hookspec
def timber_gdpr_veto(kernel: Kernel, user_id: str, mode: str) -> str | None:
    """Return why user ``user_id`` may not be erased in ``mode`` (``"delete"`` or ``"anonymize"``), or None.

    Called by ``timber_core.gdpr.erase_user`` in ``platform_context()``, once per app,
    before anything is changed. A reason (e.g. legal retention of filled orders) stops the
    erasure: it raises ErasureVetoedError naming the app and the reason, and nothing is
    erased or recorded. Read only; an exception also stops the erasure, naming the app.
    """
