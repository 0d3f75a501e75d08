"""``from timber.common import initialize_timber, get_model``: the design document's entry points.

``get_model`` is :func:`timber_core.get_model`. ``initialize_timber`` is
:func:`timber_core.initialize_timber` that also takes the document's configuration class:

    class CanopyConfig(TimberConfig):          # timber.common.utils.config
        APP_NAME = "canopy"
        MODEL_DIRS = ["./canopy/data/models"]

    initialize_timber(config=CanopyConfig)     # app_name, model_config_dirs, database_url from it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from timber_core import (
    app_context,
    get_kernel,
    get_model,
    platform_context,
    shutdown,
    user_context,
)

if TYPE_CHECKING:  # pragma: no cover
    from timber_core.kernel import Kernel

__all__ = ["initialize_timber", "get_model", "get_kernel", "shutdown", "app_context", "platform_context",
           "user_context"]


def initialize_timber(
    app_name: str | None = None,
    model_config_dirs: list[str] | None = None,
    database_url: str | None = None,
    **settings: Any,
) -> Kernel:
    """Call :func:`timber_core.initialize_timber`, taking what is missing from ``config``.

    ``config`` may be a :class:`~timber_core.config.TimberConfig` subclass (as the design
    document passes it) or an instance. Its ``APP_NAME``, ``MODEL_DIRS`` and ``DATABASE_URL``
    fill ``app_name``, ``model_config_dirs`` and ``database_url`` when these are not given;
    given both, they must agree on the app (else ConfigurationError). The kernel receives the
    loaded configuration as its ``config`` setting. Every other setting passes through.
    """
    import timber_core

    config = settings.get("config")
    if config is not None:
        from timber_core.config import TimberConfig
        from timber_core.errors import ConfigurationError

        if isinstance(config, type) and issubclass(config, TimberConfig):
            config = config.load()
        if not isinstance(config, TimberConfig):
            raise ConfigurationError(
                f"initialize_timber(config=...) takes a TimberConfig subclass or instance "
                f"(timber.common.utils.config.TimberConfig); got {type(config).__name__} {config!r:.60}"
            )
        settings["config"] = config
        declared = getattr(config, "APP_NAME", None)
        if app_name is not None and declared is not None and declared != app_name:
            raise ConfigurationError(
                f"initialize_timber(app_name={app_name!r}) but {type(config).__name__}.APP_NAME is "
                f"{declared!r}: name one app (or leave app_name out to use the configuration's)"
            )
        app_name = app_name if app_name is not None else declared
        if model_config_dirs is None:
            model_config_dirs = list(getattr(config, "MODEL_DIRS", None) or []) or None
        if database_url is None:
            database_url = config.DATABASE_URL
    return timber_core.initialize_timber(app_name, model_config_dirs, database_url, **settings)
