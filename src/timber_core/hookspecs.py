"""The hooks a Timber app plugin implements: the plugin author's reference.

A plugin is a module registered under the ``timber.apps`` entry-point group,
whose entry-point name is the app's name. It implements any of the hooks below
with :data:`timber_core.hookimpl`. Keep the module cheap to import: it is
loaded by ``timber apps list``, which must not import SQLAlchemy, an embedding
model or a database driver. Import services inside :func:`timber_services`'s
factories, not at module level.

Each hook is called once per plugin, and a hook that raises marks that plugin
broken (reported by ``timber apps list`` and ``timber check``) without taking
the other apps down.
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
    """Describe the app: return ``{"name", "version", "description", "depends"}``.

    ``name`` must equal the entry-point name. ``version`` defaults to the
    distribution's version, ``description`` to ``""`` and ``depends`` (names of
    apps that must load first) to ``[]``.
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
    naming one, imported on first use. ``kernel`` is None when the CLI only
    lists what is installed: build nothing here, return factories.
    """


@hookspec
def timber_migrations_dir() -> str | None:
    """Return the directory holding this app's Alembic revision files, or None."""


@hookspec
def timber_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``timber`` command group (``@cli.command()``)."""
