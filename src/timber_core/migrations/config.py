"""The programmatic Alembic configuration: no ``alembic.ini`` needed from users.

``script_location`` is this package (its ``env.py`` and ``script.py.mako``);
``version_locations`` are the kernel's ``versions/`` plus every loaded app's
``timber_migrations_dir()``, so every installed app is one branch of one graph.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TextIO

from alembic.config import Config
from alembic.script import ScriptDirectory

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["make_config", "script_directory", "version_locations", "HERE"]

HERE = os.path.dirname(os.path.abspath(__file__))


def version_locations(kernel: Kernel) -> list[str]:
    """Return the revision directories of every loaded app that has one, kernel first (created if missing)."""
    dirs: list[str] = []
    for app in kernel.apps.loaded():
        if app.migrations_dir:
            path = os.path.abspath(app.migrations_dir)
            os.makedirs(path, exist_ok=True)
            if path not in dirs:
                dirs.append(path)
    return dirs


def make_config(kernel: Kernel, *, connection: Any = None, output: TextIO | None = None, **attributes: Any) -> Config:
    """Return an Alembic Config for ``kernel``'s graph.

    ``connection`` (a SQLAlchemy Connection in a transaction) is used by ``env.py``
    when given; ``output`` receives offline SQL (``--sql``). Extra ``attributes``
    reach ``env.py`` through ``config.attributes``.
    """
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", HERE)
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(version_locations(kernel)))
    cfg.set_main_option("sqlalchemy.url", kernel.db.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["timber_kernel"] = kernel
    if connection is not None:
        cfg.attributes["connection"] = connection
    cfg.attributes.update(attributes)
    return cfg


def script_directory(kernel: Kernel) -> ScriptDirectory:
    """Return the graph of every loaded app's revisions."""
    return ScriptDirectory.from_config(make_config(kernel))
