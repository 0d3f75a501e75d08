"""``timber.common.utils.config.TimberConfig``: the kernel's configuration, with the document's class attributes.

The design document writes an app's configuration as a subclass with plain class
attributes and reads them on the class::

    class MyAppConfig(TimberConfig):
        APP_NAME = "myapp"
        MODEL_DIRS = ["./myapp/data/models"]

    initialize_timber(app_name=MyAppConfig.APP_NAME, model_config_dirs=MyAppConfig.MODEL_DIRS,
                      database_url=MyAppConfig.DATABASE_URL)

This is :class:`timber_core.config.TimberConfig` (same settings, same ``load()``), plus
``APP_NAME``, ``APP_VERSION`` and ``MODEL_DIRS`` (default: none), and a kernel setting read on
the class (``MyAppConfig.DATABASE_URL``) gives its value, read from the environment once
(``load()``), instead of the :class:`~timber_core.config.Setting` describing it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timber_core.config import Setting
from timber_core.config import TimberConfig as _KernelConfig

__all__ = ["TimberConfig", "Setting"]


class _ValuesOnTheClass(type):
    """Reading a Setting on the class answers the loaded value (the document reads config classes)."""

    def __getattribute__(cls, name: str) -> Any:
        value = super().__getattribute__(name)
        if isinstance(value, Setting) and not name.startswith("_"):
            return cls.load().as_dict()[name]  # type: ignore[attr-defined]
        return value


class TimberConfig(_KernelConfig, metaclass=_ValuesOnTheClass):
    """The kernel's :class:`~timber_core.config.TimberConfig` with the design document's identity attributes."""

    #: The app this configuration is for: ``initialize_timber(config=...)``'s ``app_name``.
    APP_NAME: ClassVar[str | None] = None
    #: The app's version (informative; the kernel reads the distribution's).
    APP_VERSION: ClassVar[str | None] = None
    #: Model directories added to the app: ``initialize_timber(config=...)``'s ``model_config_dirs``.
    MODEL_DIRS: ClassVar[list[str]] = []
