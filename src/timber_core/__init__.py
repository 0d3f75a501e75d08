"""Timber: one kernel, many apps, each seeing only its own data.

The public API is small: :func:`initialize_timber`, :func:`get_model`,
:func:`shutdown`, :data:`hookimpl`, :func:`app_context`, :func:`platform_context`, :func:`user_context`,
:func:`bind_context` / :func:`submit_in_context` / :class:`ContextThreadPoolExecutor` (carry the
context into threads) and ``__version__``. Importing this package is cheap: SQLAlchemy is imported only
when the kernel is initialized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import (
    app_context,
    bind_context,
    platform_context,
    submit_in_context,
    user_context,
)
from .hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

__version__ = "0.1.0"

__all__ = [
    "initialize_timber",
    "get_model",
    "get_kernel",
    "shutdown",
    "hookimpl",
    "app_context",
    "platform_context",
    "user_context",
    "bind_context",
    "submit_in_context",
    "ContextThreadPoolExecutor",
    "__version__",
]


def initialize_timber(
    app_name: str | None = None,
    model_config_dirs: list[str] | None = None,
    database_url: str | None = None,
    **settings: Any,
) -> Kernel:
    """Load the apps, build the models, connect, and make ``app_name`` the default context.

    ``app_name=None`` builds the kernel with no default context: code then runs inside
    ``app_context(name)`` or ``platform_context()`` (NotInitializedError outside them).

    See :func:`timber_core.kernel.initialize_timber` for the settings.
    """
    from . import _collector

    with _collector.paused():  # also while the kernel's modules (SQLAlchemy, ...) are first imported
        from .kernel import initialize_timber as _init

        return _init(app_name, model_config_dirs=model_config_dirs, database_url=database_url, **settings)


def get_model(name: str) -> type[Any]:
    """Return the mapped class of model ``name`` for the current app context.

    Raise IsolationError for another app's private model, NotFoundError for an unknown one.
    """
    from .kernel import get_kernel as _get

    return _get().get_model(name)


def get_kernel() -> Kernel:
    """Return the initialized kernel; raise NotInitializedError before ``initialize_timber``."""
    from .kernel import get_kernel as _get

    return _get()


def shutdown() -> None:
    """Close the current kernel (if any) and forget every process-level state, so the next
    ``initialize_timber`` starts clean: default app context, configuration, CLI discovery.

    See :func:`timber_core.kernel.shutdown`; the reset tests use (docs/testing.md).
    """
    from .kernel import shutdown as _shutdown

    _shutdown()


def __getattr__(name: str) -> Any:
    if name == "ContextThreadPoolExecutor":  # made on first use (see timber_core.context)
        from . import context

        return context.ContextThreadPoolExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
