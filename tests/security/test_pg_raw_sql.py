"""Raw SQL from a hostile app on its own login: what the database refuses, and how.

Canopy's code, logged in as ``timber_test_canopy`` (NOINHERIT, member of ``timber_canopy``
only), tries to read, change or forge Grove's data and the platform's. Each test is one
attack and asserts PostgreSQL's exact refusal: the SQLSTATE and message, or that the
statement touched no row (RLS filters silently) and nothing changed.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

import timber_core
from timber_core import app_context
from timber_core.db import DatabaseManager
from timber_core.errors import ConfigurationError
from timber_core.migrations.lock import MIGRATION_LOCK_KEY
from timber_core.services.persistence import NotificationService, TrackerService, UserService
from timber_core.vectors.runtime import ADVISORY_LOCK_KEY

from .conftest import ALICE, BOB, refusal, run

DENIED_USERS = ("42501", "permission denied for table users")


def _user(dbs: dict[str, DatabaseManager], uid: str) -> tuple[Any, ...]:
    return tuple(run(dbs["platform"], "platform", None, "SELECT id, email FROM users WHERE id = :u", u=uid)[0])


def _count(dbs: dict[str, DatabaseManager], table: str, where: str = "true") -> int:
    return int(run(dbs["platform"], "platform", None, f"SELECT count(*) FROM {table} WHERE {where}")[0][0])


# -- users: shared for reading, never deleted by an app, changed only by their own user -----------


def test_an_app_cannot_delete_another_user(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "DELETE FROM users WHERE id = :u", u=BOB) == DENIED_USERS
    # Nothing cascaded into Grove's tables.
    assert _count(dbs, "sessions", f"user_id = '{BOB}' AND app_name = 'grove'") == 1


def test_an_app_cannot_delete_even_the_acting_user(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "DELETE FROM users WHERE id = :u", u=ALICE) == DENIED_USERS


def test_an_app_cannot_update_another_users_row(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "UPDATE users SET email = 'mine@evil' WHERE id = :u", u=BOB) == 0
    assert _user(dbs, BOB) == (BOB, f"{BOB}@x")


def test_an_app_cannot_update_a_user_without_a_user_context(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", None, "UPDATE users SET email = email") == 0


def test_an_app_updates_the_acting_users_own_row(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["canopy"]
    assert run(db, "canopy", ALICE, "UPDATE users SET email = 'alice@new', updated_at = now() WHERE id = :u",
               u=ALICE) == 1
    assert run(db, "canopy", ALICE, "UPDATE users SET email = :e WHERE id = :u", e=f"{ALICE}@x", u=ALICE) == 1


def test_an_app_cannot_change_a_users_id(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "UPDATE users SET id = 'z' WHERE id = :u", u=ALICE) == DENIED_USERS


def test_an_app_still_reads_every_user(dbs: dict[str, DatabaseManager]) -> None:
    rows = run(dbs["grove"], "grove", ALICE, "SELECT id FROM users WHERE id IN (:a, :b) ORDER BY id", a=ALICE, b=BOB)
    assert [r[0] for r in rows] == [ALICE, BOB]


def test_the_user_service_creates_and_looks_up_users_as_an_app(dbs: dict[str, DatabaseManager]) -> None:
    users = UserService(db=dbs["grove"])
    with app_context("grove"):
        uid = users.create_user("carol@x", "carol")
        assert users.get_user(uid).email == "carol@x"
        assert users.get_user_by_email(f"{BOB}@x").id == BOB


def test_an_app_cannot_lock_other_users_rows(dbs: dict[str, DatabaseManager]) -> None:
    # FOR UPDATE needs the UPDATE policy too: only the acting user's own row can be locked.
    rows = run(dbs["canopy"], "canopy", ALICE, "SELECT id FROM users WHERE id IN (:a, :b) FOR UPDATE", a=ALICE, b=BOB)
    assert [r[0] for r in rows] == [ALICE]


def test_the_platform_still_deletes_users_cascading_into_every_app(dbs: dict[str, DatabaseManager]) -> None:
    db = dbs["platform"]
    run(db, "platform", None, "INSERT INTO users (id, email, username, created_at, updated_at) "
        "VALUES ('gone', 'gone@x', 'gone', now(), now())")
    run(db, "platform", None, "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, "
        "updated_at) VALUES ('s-gone', 'gone', 'research', 'grove', 'active', now(), now())")
    run(db, "platform", None, "INSERT INTO notifications (id, user_id, app_name, notification_type, title, is_read, "
        "created_at, updated_at) VALUES ('n-gone', 'gone', 'grove', 'x', 'x', false, now(), now())")
    assert run(db, "platform", None, "DELETE FROM users WHERE id = 'gone'") == 1
    assert _count(dbs, "sessions", "user_id = 'gone'") + _count(dbs, "notifications", "user_id = 'gone'") == 0


# -- events: each app its own --------------------------------------------------------------------


def test_an_app_cannot_read_another_apps_events(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "SELECT id, event_data FROM events WHERE app_name = 'grove'") == []


def test_an_app_cannot_update_another_apps_events(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "UPDATE events SET event_type = 'x' WHERE app_name = 'grove'") == 0
    assert _count(dbs, "events", "app_name = 'grove' AND event_type = 'viewed'") == 2


def test_an_app_cannot_delete_another_apps_events(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "DELETE FROM events WHERE app_name = 'grove'") == 0
    assert _count(dbs, "events", "app_name = 'grove'") == 2


def test_an_app_cannot_insert_an_event_in_another_apps_name(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "INSERT INTO events (id, user_id, app_name, event_type, "
                   "created_at, updated_at) VALUES ('e-forged', :u, 'grove', 'x', now(), now())", u=ALICE) == (
        "42501", 'new row violates row-level security policy for table "events"')


def test_an_app_cannot_move_its_event_to_another_app(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "UPDATE events SET app_name = 'grove' WHERE id = 'e-alice-canopy'") == (
        "42501", 'new row violates row-level security policy for table "events"')


def test_setting_timber_app_does_not_open_another_apps_events(dbs: dict[str, DatabaseManager]) -> None:
    rows = run(dbs["canopy"], "canopy", ALICE, "SELECT set_config('timber.app', 'grove', true), "
               "(SELECT count(*) FROM events WHERE app_name = 'grove')")
    assert rows == [("grove", 0)]


def test_the_tracker_service_reads_and_writes_the_apps_own_events(dbs: dict[str, DatabaseManager]) -> None:
    tracker = TrackerService(db=dbs["grove"])
    with app_context("grove"):
        eid = tracker.track_event(ALICE, "searched", {"q": "acme"})
        assert [e.id for e in tracker.get_user_events(ALICE, "searched")] == [eid]


# -- notifications: read by their user from any app; written only by the app that sent them --------


def test_an_app_reads_the_users_notifications_from_every_app(dbs: dict[str, DatabaseManager]) -> None:
    rows = run(dbs["canopy"], "canopy", ALICE, "SELECT id FROM notifications WHERE id LIKE 'n-%' ORDER BY id")
    assert [r[0] for r in rows] == ["n-alice-canopy", "n-alice-grove"]


def test_an_app_cannot_read_another_users_notifications(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "SELECT id FROM notifications WHERE user_id = :u", u=BOB) == []


def test_an_app_cannot_insert_a_notification_in_another_apps_name(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "INSERT INTO notifications (id, user_id, app_name, "
                   "notification_type, title, is_read, created_at, updated_at) VALUES ('n-forged', :u, 'grove', "
                   "'x', 'Grove says hi', false, now(), now())", u=ALICE) == (
        "42501", 'new row violates row-level security policy for table "notifications"')


def test_an_app_cannot_delete_another_apps_notifications(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "DELETE FROM notifications WHERE app_name = 'grove'") == 0
    assert _count(dbs, "notifications", "app_name = 'grove'") == 2


def test_an_app_cannot_rewrite_a_notification(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "UPDATE notifications SET title = 'Phish' "
                   "WHERE id = 'n-alice-grove'") == ("42501", "permission denied for table notifications")


def test_an_app_cannot_restamp_its_notification_as_another_apps(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "UPDATE notifications SET app_name = 'grove' "
                   "WHERE id = 'n-alice-canopy'") == ("42501", "permission denied for table notifications")


def test_an_app_cannot_mark_another_users_notifications_read(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "UPDATE notifications SET is_read = true WHERE user_id = :u", u=BOB) == 0


def test_the_notification_service_creates_and_marks_read_for_the_user(dbs: dict[str, DatabaseManager]) -> None:
    notes = NotificationService(db=dbs["canopy"])
    with app_context("canopy"):
        nid = notes.create_notification(BOB, "order_filled", "Filled")
        assert notes.mark_read(nid, BOB) is True
        assert [n.id for n in notes.get_user_notifications(BOB) if n.id == nid] == [nid]


# -- app identity is the role, not a setting --------------------------------------------------------


def test_setting_timber_app_does_not_let_an_app_queue_outbox_work_as_another(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SELECT set_config('timber.app', 'grove', true); "
                   "INSERT INTO timber_vector_outbox (id, app, model, row_id, op, attempts, created_at, updated_at) "
                   "VALUES ('ob-forged', 'grove', 'ResearchReport', 'r1', 'upsert', 0, now(), now())") == (
        "42501", 'new row violates row-level security policy for table "timber_vector_outbox"')


def test_setting_timber_app_does_not_let_an_app_send_notifications_as_another(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SELECT set_config('timber.app', 'grove', true); "
                   "INSERT INTO notifications (id, user_id, app_name, notification_type, title, is_read, created_at, "
                   f"updated_at) VALUES ('n-forged2', '{ALICE}', 'grove', 'x', 'Hi', false, now(), now())") == (
        "42501", 'new row violates row-level security policy for table "notifications"')


def test_an_app_queues_outbox_work_in_its_own_name(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["canopy"], "canopy", ALICE, "INSERT INTO timber_vector_outbox (id, app, model, row_id, op, "
               "attempts, created_at, updated_at) VALUES ('ob-own', 'canopy', 'Order', 'o1', 'upsert', 0, now(), "
               "now())") == 1


# -- advisory locks belong to the platform ---------------------------------------------------------


@pytest.mark.parametrize("call", [f"pg_advisory_lock({ADVISORY_LOCK_KEY})", f"pg_try_advisory_lock({ADVISORY_LOCK_KEY})",
                                  f"pg_advisory_xact_lock({MIGRATION_LOCK_KEY})", "pg_advisory_lock_shared(1, 2)",
                                  f"pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})", "pg_advisory_unlock_all()"],
                         ids=lambda c: c.split("(")[0])
def test_an_app_cannot_take_advisory_locks(dbs: dict[str, DatabaseManager], call: str) -> None:
    name = call.split("(")[0]
    assert refusal(dbs["canopy"], "canopy", ALICE, f"SELECT {call}") == (
        "42501", f"permission denied for function {name}")


def test_the_platform_takes_the_drain_lock(dbs: dict[str, DatabaseManager]) -> None:
    assert run(dbs["platform"], "platform", None, f"SELECT pg_try_advisory_xact_lock({ADVISORY_LOCK_KEY})") == [(True,)]


# -- attacks that already failed before the wall was raised (regressions) ---------------------------


def test_set_role_to_another_app_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SET ROLE timber_grove") == (
        "42501", 'permission denied to set role "timber_grove"')


def test_session_level_set_config_role_to_another_app_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SELECT set_config('role', 'timber_grove', false)") == (
        "42501", 'permission denied to set role "timber_grove"')


def test_set_session_authorization_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SET SESSION AUTHORIZATION timber_test_grove") == (
        "42501", 'permission denied to set session authorization "timber_test_grove"')


def test_another_apps_private_table_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SELECT * FROM research_sessions") == (
        "42501", "permission denied for table research_sessions")


@pytest.mark.parametrize("sql", ["SELECT * FROM timber_vector_outbox", "DELETE FROM timber_vector_outbox"],
                         ids=["read", "delete"])
def test_the_outbox_cannot_be_read_or_emptied_by_an_app(dbs: dict[str, DatabaseManager], sql: str) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, sql) == (
        "42501", "permission denied for table timber_vector_outbox")


def test_reading_server_files_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SELECT pg_read_file('/etc/passwd')") == (
        "42501", "permission denied for function pg_read_file")


def test_copy_to_program_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "COPY (SELECT 1) TO PROGRAM 'touch /tmp/timber-pwned'") == (
        "42501", "must be superuser or have privileges of the pg_execute_server_program role to COPY to or "
                 "from an external program")


def test_altering_a_policy_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "ALTER POLICY timber_canopy_types ON sessions USING (true)") == (
        "42501", "must be owner of table sessions")


def test_truncating_a_shared_table_is_refused(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "TRUNCATE sessions") == (
        "42501", "permission denied for table sessions")


def test_turning_row_security_off_does_not_bypass_it(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SET row_security = off; SELECT * FROM sessions") == (
        "42501", 'query would be affected by row-level security policy for table "sessions"')


# -- the startup check ----------------------------------------------------------------------------


def test_the_startup_check_refuses_a_database_where_rls_on_users_is_off(
    dbs: dict[str, DatabaseManager], migrated: Any
) -> None:
    engine = create_engine(migrated)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE users NO FORCE ROW LEVEL SECURITY"))
    try:
        with pytest.raises(ConfigurationError) as err:
            timber_core.initialize_timber("canopy", database_url=migrated)
        assert str(err.value).endswith(
            "  - Error: [rls] row-level security on kernel table 'users' is enabled but not forced, so apps are "
            "not held to their own rows there. Fix: run `timber migrate` (timber_0003 sets it up; docs/isolation.md)"
        )
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE users FORCE ROW LEVEL SECURITY"))
        engine.dispose()


# -- password hashes (timber_0004): granted to the platform role only -------------------------------
DENIED_CREDENTIALS = ("42501", "permission denied for table user_credentials")


def test_an_app_cannot_read_password_hashes(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["canopy"], "canopy", ALICE, "SELECT password_hash FROM user_credentials") == DENIED_CREDENTIALS


def test_an_app_cannot_write_a_password_hash(dbs: dict[str, DatabaseManager]) -> None:
    assert refusal(dbs["grove"], "grove", ALICE, "UPDATE user_credentials SET password_hash = 'x'") == DENIED_CREDENTIALS
