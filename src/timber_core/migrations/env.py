"""Timber's Alembic environment, driven by ``config.attributes`` (see :mod:`.config`).

``timber_kernel``: the kernel whose ``metadata`` is the target. ``connection``:
an open connection to run on (else one is made from ``sqlalchemy.url``).
``timber_app``: when set (``create-migration --app``), autogenerate sees only
that app's tables: those its models declare, and ``timber_app_tables``, those its
head revision says its migrations created (so a model removed from its YAML has
its table dropped). ``timber_security``: the snapshot text for the template.
Revisions render in batch mode so the same files run on SQLite, and column types
render through :func:`.rendering.render_item` as Timber's own types, so a revision
generated on either database runs on both.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from timber_core.migrations.rendering import render_item

config = context.config
kernel = config.attributes["timber_kernel"]
app = config.attributes.get("timber_app")
allowed = None if app is None else (
    {m.table_name for m in kernel.models_of(app)} | set(config.attributes.get("timber_app_tables", ()))
)
known = {t.name for t in kernel.metadata.sorted_tables}


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "table":
        if allowed is not None:
            return name in allowed
        return name in known  # tables no loaded app declares are not ours to drop
    return True


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return include_name(name, "table", None)
    return True


def _options() -> dict[str, Any]:
    opts: dict[str, Any] = dict(
        target_metadata=kernel.metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
        include_object=include_object,
    )
    if "timber_security" in config.attributes:
        opts["template_args"] = {"timber_security": config.attributes["timber_security"]}
    if "process_revision_directives" in config.attributes:
        opts["process_revision_directives"] = config.attributes["process_revision_directives"]
    return opts


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **_options())
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, **_options())
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
