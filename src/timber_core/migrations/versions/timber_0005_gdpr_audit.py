"""gdpr audit: the kernel-only table timber_gdpr_audit

``timber_core.gdpr.erase_user`` records each erasure here, in the same transaction as the
erasure itself: who asked, when, the mode, the rows erased per app, then (once the vector
points and cache entries are gone) how many points and when it completed. It holds no
personal data of the erased user: no user id, email or name, so the record survives the
erasure it describes. The table is not a registry model (no app can ``get_model`` it).

Grants (PostgreSQL): owned by ``timber_owner``; nothing to PUBLIC, nothing to ``timber_apps``;
``timber_platform`` only (``tops.platform_only``, as ``user_credentials``). SQLite: the wall
(timber_core.sqlite_wall) refuses an app's context any read or write of it. See docs/services.md.

Revision ID: timber_0005
Revises: timber_0004
Create Date: 2026-11-27 13:00:00.000000

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from timber_core.migrations import ops as tops


revision: str = 'timber_0005'
down_revision: str | Sequence[str] | None = 'timber_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What this app's roles, grants and policies are once this revision is applied;
#: ``timber create-migration`` diffs the registry against it (see timber_core.migrations.security).
#: Unchanged from timber_0004: ``timber_gdpr_audit`` is no registry model, so the registry's
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
    op.create_table('timber_gdpr_audit',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('requested_by', sa.String(length=255), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    # JSONB on PostgreSQL: it has equality and ordering (json has neither), so dumps can sort rows.
    sa.Column('rows', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('vector_points', sa.Integer(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timber_gdpr_audit')),
    comment="GDPR erasures: who asked, when, rows per app; no personal data of the erased user"
    )
    tops.platform_only('timber_gdpr_audit')


def downgrade() -> None:
    op.drop_table('timber_gdpr_audit')
