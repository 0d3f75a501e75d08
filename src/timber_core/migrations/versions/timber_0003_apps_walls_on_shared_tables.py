"""apps' walls on the shared tables: users, events, notifications, outbox by role, advisory locks

Until now an app could, with raw SQL on its own login, delete any user (cascading into every
app's tables) or change anyone's email; read, change and delete other apps' events; forge
notifications in another app's name; and, by setting ``timber.app``, queue vector-outbox work
as another app. This revision (PostgreSQL only; nothing on SQLite):

* ``users``: RLS enabled and forced. Apps read every account and may create accounts, but
  cannot delete one (a platform operation: it cascades into every app) and may update only
  ``email``, ``username``, ``updated_at`` of the acting user's own row (``timber.user_id``).
* ``events``: RLS; an app sees, writes and deletes only rows stamped with its own app.
* ``notifications``: RLS; readable by their user from any app; created and deleted only by the
  app stamped on them; only the read state (``is_read``, ``read_at``, ``updated_at``) of the
  acting user's own notifications can be changed, by any app.
* The outbox's insert policy is recreated with the app taken from the role (``current_user``,
  ``timber_<app>``) instead of the ``timber.app`` setting, which raw SQL can set.
* PostgreSQL's advisory-lock functions are taken from PUBLIC and granted to ``timber_platform``
  and ``timber_owner``: an app holding the drain's or the migrations' key would stall them.

See docs/isolation.md.

Revision ID: timber_0003
Revises: timber_0002
Create Date: 2026-11-27 08:10:00.000000

"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from timber_core.migrations import ops as tops


revision: str = 'timber_0003'
down_revision: str | Sequence[str] | None = 'timber_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What this app's roles, grants and policies are once this revision is applied;
#: ``timber create-migration`` diffs the registry against it (see timber_core.migrations.security).
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
    tops.users_self_update('users', 'id', ['email', 'username', 'updated_at'])
    tops.apps_own_rows('events', 'app_name')
    tops.user_reads_app_writes('notifications', 'app_name', 'user_id', ['is_read', 'read_at', 'updated_at'])
    tops.apps_insert_own('timber_vector_outbox', 'app')
    tops.platform_advisory_locks()


def downgrade() -> None:
    tops.public_advisory_locks()
    if op.get_context().dialect.name == 'postgresql':
        # timber_0002's policy: the app taken from the timber.app setting.
        op.execute('DROP POLICY IF EXISTS "timber_apps_insert_own" ON "timber_vector_outbox"')
        op.execute(
            'CREATE POLICY "timber_apps_insert_own" ON "timber_vector_outbox" AS PERMISSIVE FOR INSERT '
            'TO "timber_apps" WITH CHECK ("app" = (SELECT NULLIF(current_setting(\'timber.app\', true), \'\')))'
        )
    tops.unguard('notifications', 'UPDATE')
    tops.unguard('events', 'SELECT, INSERT, UPDATE, DELETE')
    tops.unguard('users', 'UPDATE, DELETE')
