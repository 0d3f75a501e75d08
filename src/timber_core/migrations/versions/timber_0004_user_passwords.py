"""user passwords: the kernel-only table user_credentials

The web layer (timber_core.web, docs/web.md) logs users in with a password. Password hashes
live in their own table, ``user_credentials`` (one row per user who has a password), not in
``users``, which every app reads: a table no app is granted is simpler to wall than one column
of a table every app reads. The table is not a registry model (no app can ``get_model`` it);
the kernel's auth code (timber_core.auth) reads and writes it in ``platform_context()`` only.

Grants (PostgreSQL): owned by ``timber_owner``; nothing to PUBLIC, nothing to ``timber_apps``;
``timber_platform`` only. SQLite: the wall (timber_core.sqlite_wall) refuses an app's context
any read or write of it. See docs/isolation.md.

Revision ID: timber_0004
Revises: timber_0003
Create Date: 2026-11-27 11:30:00.000000

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from timber_core.migrations import ops as tops


revision: str = 'timber_0004'
down_revision: str | Sequence[str] | None = 'timber_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What this app's roles, grants and policies are once this revision is applied;
#: ``timber create-migration`` diffs the registry against it (see timber_core.migrations.security).
#: Unchanged from timber_0003: ``user_credentials`` is no registry model, so the registry's
#: security state does not name it (its grants are this revision's, below).
timber_security = {   'advisory_locks': 'platform',
    'app': 'timber',
    'policies': {},
    'restrict': {},
    'rls_tables': {'sessions': 'session_type'},
    'role': None,
    'tables': {   'events': {'guard': ['apps_own_rows', 'app_name'], 'shared': True},
                  'notifications': {   'guard': [   'user_reads_app_writes',
                                                    'app_name',
                                                    'user_id',
                                                    ['is_read', 'read_at', 'updated_at']],
                                       'shared': True},
                  'sessions': {'shared': True},
                  'timber_vector_outbox': {'apps_insert_own': 'app', 'shared': True},
                  'users': {   'guard': ['users_self_update', 'id', ['email', 'username', 'updated_at']],
                               'shared': True}}}


def upgrade() -> None:
    op.create_table('user_credentials',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_credentials_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_credentials')),
    comment="Password hashes (argon2), readable only by the platform role"
    )
    tops.platform_only('user_credentials')


def downgrade() -> None:
    op.drop_table('user_credentials')
