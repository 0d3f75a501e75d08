"""Timber's one Alembic migration graph, with roles, grants and row-level security.

Importing this package is cheap (no SQLAlchemy, no Alembic): the CLI registers
its commands from :mod:`timber_core.migrations.commands`, which imports the rest
inside each command. Programmatic entry points live in
:mod:`timber_core.migrations.runner` (upgrade, downgrade, status, check) and
:mod:`timber_core.migrations.autogen` (create a revision for one app).
"""
