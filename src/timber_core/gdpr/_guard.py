"""What every GDPR call checks first: the feature is on, the caller is the platform, the hooks' answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..context import PLATFORM, current_app
from ..errors import ConfigurationError, IsolationError, PluginError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["require_platform", "check_user_id", "ask_apps"]


def require_platform(kernel: Kernel, call: str) -> None:
    """Raise ConfigurationError when ``ENABLE_GDPR`` is off, IsolationError outside ``platform_context()``."""
    if not kernel.config.ENABLE_GDPR:
        raise ConfigurationError(f"{call}: GDPR tooling is disabled (ENABLE_GDPR=false); set ENABLE_GDPR=true in "
                                 f"the environment of the process that exports or erases")
    app = current_app()
    if app != PLATFORM:
        raise IsolationError(f"{call} reads and changes every app's rows: run it in timber_core.platform_context(), "
                             f"not as app {app!r}")


def check_user_id(user_id: Any, call: str) -> str:
    """Return ``user_id`` if it is a non-empty string; raise ValidationError otherwise."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValidationError(f"{call}: user_id must be a user's id (non-empty text), not {user_id!r}")
    return user_id


def ask_apps(kernel: Kernel, hook: str, **kwargs: Any) -> dict[str, Any]:
    """Call ``hook`` for each loaded app; return ``{app: answer}`` of the apps that answered.

    A hook that raises stops the caller: PluginError naming the app, the hook and the error.
    """
    from ..plugins import call_hook

    loaded = kernel.apps.loaded()
    answers: dict[str, Any] = {}
    for app in loaded:
        try:
            answer = call_hook(kernel.plugin_manager, app, loaded, hook, kernel=kernel, **kwargs)
        except Exception as exc:  # an app's own bug: name it, change nothing
            raise PluginError(f"app {app.name!r} ({app.distribution}): {hook}() raised {type(exc).__name__}: "
                              f"{exc}; nothing was changed") from exc
        if answer is not None:
            answers[app.name] = answer
    return answers
