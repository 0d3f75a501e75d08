"""Per-user rows on an app's private table (``owned_by``): only the acting user's rows, on every wall.

The fixture app ``diary`` (tests/fixtures/plugins/diary, copied to a temporary directory so its
generated revisions never land in the tree) declares ``owned_by: user_id`` on ``diary_entries``.
Alice and Bob each have one entry. Diary's own code, with raw SQL on its own PostgreSQL login or on
Timber's SQLite connection, and through the ORM, must see and write only the acting user's rows,
and none without a user context; the platform context sees all. ``migrations check`` and
``create-migration`` carry the option into the app's revisions and back out.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

import timber_core
from timber_core import app_context, platform_context, user_context
from timber_core.db import DatabaseManager
from timber_core.errors import IsolationError
from timber_core.migrations import autogen, runner
from timber_core.migrations.doctor import skip_startup_check
from timber_core.schema.validate import parse_file
from tests.postgres.conftest import _ensure_login, pg_database  # noqa: F401  (fixture)

from .conftest import refusal

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "plugins" / "diary"
ALICE, BOB = "a" * 36, "b" * 36
DIARY_LOGIN = "timber_test_diary"
OWNED = "    owned_by: user_id\n"


def _install(root: Path, mp: pytest.MonkeyPatch, *, owned: bool = True) -> Path:
    """Copy the diary app to ``root`` and put it on sys.path; return its model file.

    A copy imported earlier (the module-scoped PostgreSQL fixture's) is forgotten first, or the
    plugin's hooks would still point at that copy's models and revisions.
    """
    _forget_diary()
    shutil.copytree(FIXTURE, root)
    yaml = root / "diary_app" / "models" / "diary_models.yaml"
    if not owned:
        yaml.write_text(yaml.read_text().replace(OWNED, ""))
    mp.syspath_prepend(str(root))
    importlib.invalidate_caches()
    return yaml


def _forget_diary() -> None:
    for name in [m for m in sys.modules if m == "diary_app" or m.startswith("diary_app.")]:
        del sys.modules[name]


def _seed(conn: Any, now: str) -> None:
    for uid, entry in ((ALICE, "e-alice"), (BOB, "e-bob")):
        conn.execute(text(f"INSERT INTO users (id, email, username, created_at, updated_at) "
                          f"VALUES (:u, :e, :u, {now}, {now})"), {"u": uid, "e": f"{uid}@x"})
        conn.execute(text(f"INSERT INTO diary_entries (id, user_id, body, created_at, updated_at) "
                          f"VALUES (:i, :u, 'dear diary', {now}, {now})"), {"i": entry, "u": uid})


def run(db: DatabaseManager, user: str | None, sql: str, app: str = "diary", **params: Any) -> Any:
    """Run ``sql`` on ``db`` as ``app`` (``platform`` for the platform) for ``user``; rows (sorted) or rowcount."""
    ctx = platform_context() if app == "platform" else app_context(app)
    with ctx, user_context(user), db.connection() as conn:
        result = conn.execute(text(sql), params)
        return sorted(tuple(r) for r in result.all()) if result.returns_rows else result.rowcount


def _entries(db: DatabaseManager) -> list[tuple[Any, ...]]:
    return run(db, None, "SELECT id, user_id, body FROM diary_entries", app="platform")


def _orm_ids(kernel: Any, user: str | None) -> list[str]:
    entry = kernel.models["DiaryEntry"]
    with app_context("diary"), user_context(user), kernel.db.session_scope() as s:
        return sorted(e.id for e in s.query(entry).all())


UNTOUCHED = [("e-alice", ALICE, "dear diary"), ("e-bob", BOB, "dear diary")]


# -- the YAML option -----------------------------------------------------------------------------


def _problems(tmp_path: Path, model: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text("models:\n  - name: Entry\n    table_name: entries\n" + model + "    columns:\n"
                    "      - {name: id, type: String(36), primary_key: true}\n"
                    "      - {name: user_id, type: String(36), foreign_key: users.id}\n"
                    "      - {name: writer, type: String(36)}\n")
    return [str(p) for p in parse_file(str(path), "diary")[1]]


def test_owned_by_naming_no_column_is_refused_with_its_place(tmp_path: Path) -> None:
    assert _problems(tmp_path, "    owned_by: owner\n") == [
        f"{tmp_path / 'm.yaml'}:4: app 'diary', field 'Entry.owned_by': names no column of Entry: declare a column "
        f"'owner' with foreign_key: users.id, or name one of: id, user_id, writer"
    ]


def test_owned_by_a_column_not_referencing_users_is_refused(tmp_path: Path) -> None:
    assert _problems(tmp_path, "    owned_by: writer\n") == [
        f"{tmp_path / 'm.yaml'}:4: app 'diary', field 'Entry.owned_by': column 'writer' must reference the users "
        f"(foreign_key: users.id); it has no foreign_key"
    ]


def test_owned_by_on_a_shared_model_is_refused(tmp_path: Path) -> None:
    assert _problems(tmp_path, "    shared: true\n    owned_by: user_id\n") == [
        f"{tmp_path / 'm.yaml'}:5: app 'diary', field 'Entry.owned_by': is only allowed on an app's private model; "
        f"a shared model's rows are restricted by typed_by and the kernel's policies"
    ]


# -- SQLite: the wall on Timber's own connection, and the ORM ----------------------------------------


@pytest.fixture
def diary_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The diary app on a SQLite file, Alice's and Bob's entries written by the platform."""
    _install(tmp_path / "site", monkeypatch)
    kernel = timber_core.initialize_timber("diary", database_url=f"sqlite:///{tmp_path}/timber.db")
    with platform_context(), kernel.db.connection() as conn:
        _seed(conn, "'2026-01-01'")
    yield kernel
    kernel.close()
    _forget_diary()


SQLITE_REFUSAL = ("SQLite wall: app 'diary' may write into table 'diary_entries' only rows whose 'user_id' is the "
                  "acting user (user_context()); no row without one")


def test_sqlite_raw_select_returns_only_the_acting_users_rows(diary_sqlite: Any) -> None:
    assert run(diary_sqlite.db, ALICE, "SELECT id, user_id FROM diary_entries") == [("e-alice", ALICE)]


def test_sqlite_raw_update_of_another_users_row_changes_nothing(diary_sqlite: Any) -> None:
    assert run(diary_sqlite.db, ALICE, "UPDATE diary_entries SET body = 'read you' WHERE id = 'e-bob'") == 0
    assert _entries(diary_sqlite.db) == UNTOUCHED


def test_sqlite_raw_delete_of_another_users_row_deletes_nothing(diary_sqlite: Any) -> None:
    assert run(diary_sqlite.db, ALICE, "DELETE FROM diary_entries") == 1
    assert _entries(diary_sqlite.db) == [UNTOUCHED[1]]


def test_sqlite_raw_insert_of_a_row_owned_by_another_user_is_refused(diary_sqlite: Any) -> None:
    with pytest.raises(IsolationError) as err:
        run(diary_sqlite.db, ALICE, "INSERT INTO diary_entries (id, user_id, body, created_at, updated_at) "
            "VALUES ('forged', :u, 'x', '2026-01-01', '2026-01-01')", u=BOB)
    assert str(err.value) == SQLITE_REFUSAL
    assert _entries(diary_sqlite.db) == UNTOUCHED


def test_sqlite_raw_update_giving_an_own_row_to_another_user_is_refused(diary_sqlite: Any) -> None:
    with pytest.raises(IsolationError) as err:
        run(diary_sqlite.db, ALICE, "UPDATE diary_entries SET user_id = :u WHERE id = 'e-alice'", u=BOB)
    assert str(err.value) == SQLITE_REFUSAL


def test_sqlite_upsert_onto_another_users_row_changes_nothing(diary_sqlite: Any) -> None:
    assert run(diary_sqlite.db, ALICE, "INSERT INTO diary_entries (id, user_id, body, created_at, updated_at) "
               "VALUES ('e-bob', :u, 'mine', '2026-01-01', '2026-01-01') ON CONFLICT (id) DO UPDATE SET body = 'mine'",
               u=ALICE) == 0
    assert _entries(diary_sqlite.db) == UNTOUCHED


def test_sqlite_insert_or_replace_cannot_delete_another_users_row(diary_sqlite: Any) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="UNIQUE constraint failed: diary_entries.id"):
        run(diary_sqlite.db, ALICE, "INSERT OR REPLACE INTO diary_entries (id, user_id, body, created_at, updated_at) "
            "VALUES ('e-bob', :u, 'mine', '2026-01-01', '2026-01-01')", u=ALICE)
    assert _entries(diary_sqlite.db) == UNTOUCHED


def test_sqlite_raw_sql_without_a_user_context_sees_and_writes_nothing(diary_sqlite: Any) -> None:
    assert run(diary_sqlite.db, None, "SELECT id FROM diary_entries") == []
    assert run(diary_sqlite.db, None, "DELETE FROM diary_entries") == 0
    with pytest.raises(IsolationError) as err:
        run(diary_sqlite.db, None, "INSERT INTO diary_entries (id, user_id, body, created_at, updated_at) "
            "VALUES ('nobody', :u, 'x', '2026-01-01', '2026-01-01')", u=ALICE)
    assert str(err.value) == SQLITE_REFUSAL


def test_sqlite_reading_the_main_table_past_the_view_is_refused(diary_sqlite: Any) -> None:
    with pytest.raises(IsolationError) as err:
        run(diary_sqlite.db, ALICE, "SELECT id FROM main.diary_entries")
    assert str(err.value) == (
        "SQLite wall: app 'diary' may read table 'diary_entries' only through Timber's filtered view: write "
        "'diary_entries', not 'main.diary_entries', and no subquery or join on main.diary_entries in a write"
    )


def test_sqlite_the_filter_follows_the_user_on_one_pooled_connection(diary_sqlite: Any) -> None:
    seen = [run(diary_sqlite.db, user, "SELECT id FROM diary_entries") for user in (ALICE, BOB, ALICE)]
    assert seen == [[("e-alice",)], [("e-bob",)], [("e-alice",)]]


def test_sqlite_the_platform_context_sees_every_row(diary_sqlite: Any) -> None:
    assert run(diary_sqlite.db, ALICE, "SELECT id FROM diary_entries", app="platform") == [("e-alice",), ("e-bob",)]


def test_sqlite_orm_query_returns_only_the_acting_users_rows(diary_sqlite: Any) -> None:
    assert (_orm_ids(diary_sqlite, ALICE), _orm_ids(diary_sqlite, None)) == (["e-alice"], [])


# -- the ORM wall on its own (SQLite wall removed) ------------------------------------------------------


@pytest.fixture
def orm_only(diary_sqlite: Any) -> Any:
    """The diary kernel with the SQLite wall uninstalled: only the ORM wall stands."""
    diary_sqlite.sqlite_wall.uninstall()
    assert run(diary_sqlite.db, ALICE, "SELECT id FROM diary_entries") == [("e-alice",), ("e-bob",)]
    return diary_sqlite


def test_orm_wall_filters_queries_to_the_acting_user(orm_only: Any) -> None:
    assert (_orm_ids(orm_only, ALICE), _orm_ids(orm_only, BOB), _orm_ids(orm_only, None)) == (
        ["e-alice"], ["e-bob"], [])


def test_orm_wall_refuses_to_create_a_row_for_another_user(orm_only: Any) -> None:
    entry = orm_only.models["DiaryEntry"]
    with pytest.raises(IsolationError) as err:
        with app_context("diary"), user_context(ALICE), orm_only.db.session_scope() as s:
            s.add(entry(id="forged", user_id=BOB, body="x"))
    assert str(err.value) == (
        f"app 'diary' may not create a row of model 'DiaryEntry' (table 'diary_entries') owned by {BOB!r}: its rows "
        f"are owned_by 'user_id' and the acting user is {ALICE!r}. Act for the row's user (user_context(user_id)), "
        f"or run cross-user work in timber_core.platform_context()"
    )
    assert _entries(orm_only.db) == UNTOUCHED


def test_orm_wall_bulk_update_does_not_reach_another_users_rows(orm_only: Any) -> None:
    from sqlalchemy import update

    entry = orm_only.models["DiaryEntry"]
    with app_context("diary"), user_context(ALICE), orm_only.db.session_scope() as s:
        assert s.execute(update(entry).values(body="mine")).rowcount == 1
    assert _entries(orm_only.db) == [("e-alice", ALICE, "mine"), UNTOUCHED[1]]


# -- PostgreSQL: the app's own login, raw SQL and ORM --------------------------------------------------


@pytest.fixture(scope="module")
def diary_pg(pg_database: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    """A database at every head with diary's generated first revision applied, its login, and the seed."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("diary") / "site"
        _install(root, mp)
        with skip_startup_check():
            kernel = timber_core.initialize_timber("diary", database_url=pg_database, create_tables=False)
        runner.upgrade(kernel)
        revision = autogen.create_migration(kernel, "diary entries", "diary", rev_id="diary_0001")
        runner.upgrade(kernel)
        kernel.close()
        admin = create_engine(pg_database)
        with admin.begin() as conn:
            _ensure_login(conn, DIARY_LOGIN, "timber_diary")
            _ensure_login(conn, "timber_test_platform", "timber_platform")
            _seed(conn, "now()")
        admin.dispose()
        login = pg_database.set(username=DIARY_LOGIN, password=None)
        with skip_startup_check():
            kernel = timber_core.initialize_timber("diary", database_url=login, create_tables=False)
        platform = DatabaseManager(pg_database.set(username="timber_test_platform", password=None))
        yield {"url": pg_database, "revision": Path(str(revision)), "kernel": kernel, "db": kernel.db,
               "platform": platform}
        platform.dispose()
        kernel.close()
        _forget_diary()


def _q(url: URL, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _pg_entries(pg: dict[str, Any]) -> list[tuple[Any, ...]]:
    return run(pg["platform"], None, "SELECT id, user_id, body FROM diary_entries", app="platform")


POLICY = "((user_id)::text = ( SELECT NULLIF(current_setting('timber.user_id'::text, true), ''::text) AS \"nullif\"))"


def test_pg_first_revision_renders_the_per_user_policy(diary_pg: dict[str, Any]) -> None:
    source = diary_pg["revision"].read_text()
    assert "tops.user_owned_rows('diary', 'diary_entries', 'user_id')" in source
    assert "'diary_entries': {'owned_by': 'user_id', 'shared': False}" in source
    assert _q(diary_pg["url"], "SELECT policyname, permissive, roles::text, cmd, qual, with_check FROM pg_policies "
                               "WHERE tablename = 'diary_entries' ORDER BY 1") == [
        ("timber_owned_by_user", "PERMISSIVE", "{timber_diary}", "ALL", POLICY, POLICY),
        ("timber_platform_all", "PERMISSIVE", "{timber_platform}", "ALL", "true", "true"),
    ]
    assert _q(diary_pg["url"], "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                               "WHERE relname = 'diary_entries'") == [(True, True)]


def test_pg_raw_select_returns_only_the_acting_users_rows(diary_pg: dict[str, Any]) -> None:
    assert run(diary_pg["db"], ALICE, "SELECT id, user_id FROM diary_entries") == [("e-alice", ALICE)]


def test_pg_raw_update_of_another_users_row_changes_nothing(diary_pg: dict[str, Any]) -> None:
    assert run(diary_pg["db"], ALICE, "UPDATE diary_entries SET body = 'read you' WHERE id = 'e-bob'") == 0
    assert _pg_entries(diary_pg) == UNTOUCHED


def test_pg_raw_delete_of_another_users_row_deletes_nothing(diary_pg: dict[str, Any]) -> None:
    assert run(diary_pg["db"], ALICE, "DELETE FROM diary_entries WHERE id = 'e-bob'") == 0
    assert _pg_entries(diary_pg) == UNTOUCHED


RLS_REFUSAL = ("42501", 'new row violates row-level security policy for table "diary_entries"')


def test_pg_raw_insert_of_a_row_owned_by_another_user_is_refused(diary_pg: dict[str, Any]) -> None:
    assert refusal(diary_pg["db"], "diary", ALICE, "INSERT INTO diary_entries (id, user_id, body, created_at, "
                   "updated_at) VALUES ('forged', :u, 'x', now(), now())", u=BOB) == RLS_REFUSAL


def test_pg_raw_update_giving_an_own_row_to_another_user_is_refused(diary_pg: dict[str, Any]) -> None:
    assert refusal(diary_pg["db"], "diary", ALICE, "UPDATE diary_entries SET user_id = :u WHERE id = 'e-alice'",
                   u=BOB) == RLS_REFUSAL


def test_pg_raw_sql_without_a_user_context_sees_and_writes_nothing(diary_pg: dict[str, Any]) -> None:
    assert run(diary_pg["db"], None, "SELECT id FROM diary_entries") == []
    assert run(diary_pg["db"], None, "DELETE FROM diary_entries") == 0
    assert refusal(diary_pg["db"], "diary", None, "INSERT INTO diary_entries (id, user_id, body, created_at, "
                   "updated_at) VALUES ('nobody', :u, 'x', now(), now())", u=ALICE) == RLS_REFUSAL


def test_pg_the_platform_context_sees_every_row(diary_pg: dict[str, Any]) -> None:
    assert run(diary_pg["platform"], ALICE, "SELECT id FROM diary_entries", app="platform") == [
        ("e-alice",), ("e-bob",)]


def test_pg_orm_query_returns_only_the_acting_users_rows(diary_pg: dict[str, Any]) -> None:
    kernel = diary_pg["kernel"]
    assert (_orm_ids(kernel, ALICE), _orm_ids(kernel, BOB), _orm_ids(kernel, None)) == (["e-alice"], ["e-bob"], [])


# -- migrations: check, create-migration, downgrade ----------------------------------------------------


def _policies(url: str) -> list[tuple[Any, ...]]:
    return _q(_url(url), "SELECT policyname FROM pg_policies WHERE tablename = 'diary_entries' ORDER BY 1")


def _url(url: str) -> URL:
    from sqlalchemy.engine import make_url

    return make_url(url)


def _kernel(url: str) -> Any:
    with skip_startup_check():
        return timber_core.initialize_timber("diary", database_url=url, create_tables=False)


def _tops(path: str | None) -> tuple[list[str], list[str]]:
    """The ``tops.`` calls of a revision's upgrade and of its downgrade."""
    import re

    source = Path(str(path)).read_text()
    up, down = source.split("def downgrade()")
    return re.findall(r"tops\.\w+\(.*\)", up.split("def upgrade()")[1]), re.findall(r"tops\.\w+\(.*\)", down)


@pytest.fixture
def diary_migrated(scratch_postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A database at every head, diary installed without owned_by and its first revision applied; its YAML."""
    yaml = _install(tmp_path / "site", monkeypatch, owned=False)
    kernel = _kernel(scratch_postgres)
    runner.upgrade(kernel)
    autogen.create_migration(kernel, "diary entries", "diary", rev_id="diary_0001")
    runner.upgrade(kernel)
    kernel.close()
    yield yaml
    _forget_diary()


CHECK_ADDED = ("app 'diary': roles/policies differ from its migrations (user_owned_rows('diary', 'diary_entries', "
               "'user_id')): run `timber create-migration \"...\" --app diary`")


def test_check_reports_owned_by_added_without_a_revision(scratch_postgres: str, diary_migrated: Path) -> None:
    diary_migrated.write_text(diary_migrated.read_text().replace("    table_name: diary_entries\n",
                                                                 "    table_name: diary_entries\n" + OWNED))
    assert runner.check(_kernel(scratch_postgres)) == [CHECK_ADDED]


def test_create_migration_adds_the_policy_and_downgrade_removes_it(scratch_postgres: str,
                                                                    diary_migrated: Path) -> None:
    diary_migrated.write_text(diary_migrated.read_text().replace("    table_name: diary_entries\n",
                                                                 "    table_name: diary_entries\n" + OWNED))
    kernel = _kernel(scratch_postgres)
    path = autogen.create_migration(kernel, "entries per user", "diary", rev_id="diary_0002")
    assert path == str(diary_migrated.parents[1] / "migrations" / "versions" / "diary_0002_entries_per_user.py")
    assert _tops(path) == (["tops.user_owned_rows('diary', 'diary_entries', 'user_id')"],
                           ["tops.drop_user_owned_rows('diary_entries')"])
    runner.upgrade(kernel)
    assert runner.check(kernel) == []
    assert _policies(scratch_postgres) == [("timber_owned_by_user",), ("timber_platform_all",)]
    runner.downgrade(kernel, "diary", "diary_0001")
    assert _policies(scratch_postgres) == []
    assert _q(_url(scratch_postgres), "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                                      "WHERE relname = 'diary_entries'") == [(False, False)]


def test_removing_owned_by_generates_the_reverse(scratch_postgres: str, diary_migrated: Path) -> None:
    plain = diary_migrated.read_text()
    diary_migrated.write_text(plain.replace("    table_name: diary_entries\n", "    table_name: diary_entries\n" + OWNED))
    kernel = _kernel(scratch_postgres)
    autogen.create_migration(kernel, "entries per user", "diary", rev_id="diary_0002")
    runner.upgrade(kernel)
    diary_migrated.write_text(plain)
    kernel = _kernel(scratch_postgres)
    assert runner.check(kernel) == [
        "app 'diary': roles/policies differ from its migrations (drop_user_owned_rows('diary_entries',)): run "
        "`timber create-migration \"...\" --app diary`"
    ]
    path = autogen.create_migration(kernel, "entries shared again", "diary", rev_id="diary_0003")
    assert _tops(path) == (["tops.drop_user_owned_rows('diary_entries')"],
                           ["tops.user_owned_rows('diary', 'diary_entries', 'user_id')"])
    runner.upgrade(kernel)
    assert _policies(scratch_postgres) == []


def test_doctor_reports_an_owned_by_table_whose_policy_is_missing(scratch_postgres: str,
                                                                  diary_migrated: Path) -> None:
    from timber_core.migrations import doctor

    diary_migrated.write_text(diary_migrated.read_text().replace("    table_name: diary_entries\n",
                                                                 "    table_name: diary_entries\n" + OWNED))
    kernel = _kernel(scratch_postgres)
    autogen.create_migration(kernel, "entries per user", "diary", rev_id="diary_0002")
    runner.upgrade(kernel)
    assert [f for f in doctor.run_doctor(kernel) if f.severity == "error"] == []
    admin = create_engine(_url(scratch_postgres))
    with admin.begin() as conn:
        conn.execute(text('DROP POLICY "timber_owned_by_user" ON diary_entries'))
        conn.execute(text("ALTER TABLE diary_entries NO FORCE ROW LEVEL SECURITY"))
    admin.dispose()
    assert [str(f) for f in doctor.run_doctor(kernel) if f.severity == "error"] == [
        "Error: [rls] row-level security on table 'diary_entries' of app 'diary' is enabled but not forced; the model "
        "declares owned_by 'user_id', which needs it enabled and forced. Fix: run `timber migrate`; "
        "if it persists, `timber create-migration \"owned_by\" --app diary`",
        "Error: [policies] table 'diary_entries' of app 'diary' declares owned_by 'user_id' but has no PERMISSIVE "
        "policy 'timber_owned_by_user' for timber_diary. Fix: run `timber migrate`; if it persists, "
        "`timber create-migration \"owned_by\" --app diary`",
    ]
