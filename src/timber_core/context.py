"""The app context every query and service call runs in.

The process default is the app named in ``initialize_timber(app_name=...)`` (none
after ``initialize_timber(app_name=None)``: code enters a context explicitly);
:func:`app_context` switches it for a block and :func:`platform_context` opens
the one explicit cross-app context. Both are contextvars, so each thread and
each asyncio task keeps its own.

A new thread starts with a fresh context: it runs as the process default app with no
user. To carry the caller's app and user into a thread or an executor, wrap the
callable with :func:`bind_context`, submit it with :func:`submit_in_context`, or use a
:class:`ContextThreadPoolExecutor` (``asyncio.to_thread`` already copies the context).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .errors import ConfigurationError, NotInitializedError

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import Executor, Future

__all__ = [
    "PLATFORM",
    "app_context",
    "platform_context",
    "current_app",
    "current_user",
    "user_context",
    "set_context",
    "is_platform",
    "bind_context",
    "submit_in_context",
    "ContextThreadPoolExecutor",
]

_T = TypeVar("_T")

#: The name of the cross-app context. No app may be called this.
PLATFORM: Final = "platform"

_app: contextvars.ContextVar[str | None] = contextvars.ContextVar("timber_app", default=None)
_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("timber_user", default=None)
_default_app: str | None = None
# Set by the kernel: validates an app name and returns it, or raises.
_validator: "callable[[str], str] | None" = None  # type: ignore[valid-type]
# Set by the kernel: called on entering the platform context (maps every app's classes).
_on_platform: Callable[[], None] | None = None


def _set_default(app_name: str | None, validator: object = None, on_platform: Callable[[], None] | None = None) -> None:
    global _default_app, _validator, _on_platform
    _default_app = app_name
    _validator = validator  # type: ignore[assignment]
    _on_platform = on_platform


def current_app() -> str:
    """Return the app the caller runs as (an app name, or ``PLATFORM``).

    Raise :class:`NotInitializedError` when no context is set and no kernel has
    been initialized with a default app.
    """
    name = _app.get() or _default_app
    if name is None and _validator is not None:  # a kernel exists, built with no default app
        raise NotInitializedError(
            "no app context: the kernel was initialized with no default app (initialize_timber(app_name=None)); "
            "run the code inside timber_core.app_context('<app>') or timber_core.platform_context()"
        )
    if name is None:
        raise NotInitializedError(
            "no app context: call timber_core.initialize_timber(app_name=...) first, "
            "or run the code inside timber_core.app_context('<app>')"
        )
    return name


def is_platform() -> bool:
    """Return True when the caller runs in the explicit cross-app context."""
    return current_app() == PLATFORM


def current_user() -> str | None:
    """Return the user the current block acts for, if one was set."""
    return _user.get()


@contextlib.contextmanager
def app_context(app_name: str) -> Iterator[str]:
    """Run the block as ``app_name``; restore the previous context afterwards.

    Raise :class:`ConfigurationError` for ``"platform"`` (use :func:`platform_context`).
    Once a kernel is initialized, also raise :class:`NotFoundError` when no app of that
    name is installed, :class:`PluginError` when it is left out (broken, in conflict,
    disabled), and ConfigurationError for ``"timber"``, the kernel, which is not an app.
    The first entry into an app maps its classes (and its dependencies') if the kernel was
    initialized for another app; :class:`SchemaError` when they cannot be mapped.
    """
    if app_name == PLATFORM:
        raise ConfigurationError(
            "app_context('platform') is not allowed: use timber_core.platform_context() "
            "for the explicit cross-app context"
        )
    if _validator is not None:
        app_name = _validator(app_name)
    token = _app.set(app_name)
    try:
        yield app_name
    finally:
        _app.reset(token)


@contextlib.contextmanager
def platform_context() -> Iterator[str]:
    """Run the block in the explicit cross-app context (analytics, unified search, GDPR).

    Once a kernel is initialized, the first entry maps every app's classes not mapped yet
    (docs/plugins.md, "What a process builds").
    """
    if _on_platform is not None:
        _on_platform()
    token = _app.set(PLATFORM)
    try:
        yield PLATFORM
    finally:
        _app.reset(token)


@contextlib.contextmanager
def user_context(user_id: str | None) -> Iterator[str | None]:
    """Run the block on behalf of ``user_id`` (used by row-level security).

    Inside it, a service call naming another user raises IsolationError; nest another
    ``user_context()`` to act for that user.
    """
    token = _user.set(user_id)
    try:
        yield user_id
    finally:
        _user.reset(token)


def set_context(app_name: str, user_id: str | None) -> None:
    """Set the running context's app and user for good, with nothing to restore.

    Only for a context made for one unit of work and dropped after it, e.g. a web request run
    in its own ``contextvars.copy_context()`` (timber_core.web.wsgi); elsewhere use
    :func:`app_context` and :func:`user_context`, which restore the previous values. Validates
    ``app_name`` like :func:`app_context`.
    """
    if app_name == PLATFORM:
        raise ConfigurationError("set_context('platform') is not allowed: use timber_core.platform_context()")
    if _validator is not None:
        app_name = _validator(app_name)
    _app.set(app_name)
    _user.set(user_id)


def bind_context(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Return ``fn`` bound to a copy of the caller's context (app, user), taken now.

    Pass the result as a thread's target or to an executor: each call runs in its own
    copy of that snapshot (so concurrent calls never share one), whatever thread runs it.
    A ``session_scope()`` open at the snapshot is carried too, and the other thread may
    not use it (TimberError: a Session is not thread-safe): start such threads outside
    the scope. A plain ``threading.Thread(target=fn)`` runs as the process default
    app with no user.
    """
    snapshot = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> _T:
        return snapshot.copy().run(fn, *args, **kwargs)

    return run


def submit_in_context(executor: Executor, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
    """``executor.submit(fn, *args, **kwargs)`` with ``fn`` running in the caller's context (app, user)."""
    return executor.submit(bind_context(fn), *args, **kwargs)


def _executor_class() -> type:
    from concurrent.futures import ThreadPoolExecutor

    class ContextThreadPoolExecutor(ThreadPoolExecutor):
        """A ThreadPoolExecutor whose ``submit`` (and ``map``) run each call in the submitter's context."""

        def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:  # type: ignore[override]
            return super().submit(bind_context(fn), *args, **kwargs)

    ContextThreadPoolExecutor.__module__ = __name__
    return ContextThreadPoolExecutor


def __getattr__(name: str) -> Any:
    # ContextThreadPoolExecutor is made on first use: concurrent.futures (and the logging it
    # imports) cost ~5 ms, which every `timber` command, `timber apps list` included, would pay.
    if name == "ContextThreadPoolExecutor":
        cls = globals()[name] = _executor_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
