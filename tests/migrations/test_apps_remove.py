"""`timber apps remove NAME`: every trace of one app goes, the other apps' data stays byte for byte.

The fixture app ``removeme`` (tests/fixtures/plugins/remove_me) has two session types, an RLS
policy on ``sessions``, a vector-enabled table, a second table referencing it and its own
revision. Each test writes data through every path (its own tables, shared
sessions, notifications, events, vector points and outbox rows) beside Canopy's and Grove's,
then removes it, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import importlib
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect, text

import timber_core
from timber_core import cli as cli_module
from timber_core.config import TimberConfig
from timber_core.context import app_context
from timber_core.services.persistence import notification_service, session_service, tracker_service, user_service
from tests._databases import database_url

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "tests" / "fixtures" / "plugins"
REMOVE_ME = PLUGINS / "remove_me"
SOURCE_PATHS = [ROOT / "src", ROOT / "plugins" / "canopy" / "src", ROOT / "plugins" / "grove" / "src"]
CLI = "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"
TYPES = {"tidying", "sweeping"}
OWN_TABLES = {"removeme_notes", "removeme_tags"}
GARDEN = "Planted tomatoes and basil in the back garden this weekend"
SOUP = "Slow-cooked lentil soup with cumin and smoked paprika"
APPLE = "Apple's quarterly results beat analyst estimates on strong iPhone and services revenue"


@pytest.fixture(scope="module")
def offline_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from timber_core.vectors.embeddings import prepare_offline_model_dir

    return prepare_offline_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, offline_model_dir: str) -> Iterator[None]:
    """The removeme app installed (on sys.path), vector drains left to the test, the offline model."""
    monkeypatch.setenv("TIMBER_EMBEDDING_MODEL_PATH", offline_model_dir)
    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")
    for name in ("TIMBER_EMBEDDING_MODELS", "QDRANT_URL", "ENABLE_VECTOR_SEARCH", "TIMBER_APP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(REMOVE_ME))
    timber_core.shutdown()  # the CLI discovers the apps once per process: forget the discovery
    yield


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path, installed: None) -> str:
    return database_url(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path, installed: None) -> str:
    return f"sqlite:///{tmp_path}/timber.db"


def start(url: str, app: str = "canopy") -> Any:
    TimberConfig.clear_cache()
    return timber_core.initialize_timber(app, database_url=url, create_tables=True)


def populate(kernel: Any) -> None:
    """Write removeme's, Canopy's and Grove's data through every path; drain some, leave some in the outbox."""
    alice = user_service.create_user("alice@example.com", "alice")
    bob = user_service.create_user("bob@example.com", "bob")
    Note, Tag = kernel.models["RemovemeNote"], kernel.models["RemovemeTag"]
    with app_context("removeme"):
        tidy = session_service.create_session(alice, "tidying", {"room": "kitchen"})
        session_service.create_session(bob, "sweeping")
        notification_service.create_notification(alice, "reminder", "Tidy the kitchen", "before Sunday")
        tracker_service.track_event(alice, "tidied", {"room": "kitchen"})
        tracker_service.track_event(bob, "swept", {})
        with kernel.db.session_scope() as s:
            note = Note(user_id=alice, session_id=tidy, body=GARDEN)
            s.add(note)
            s.flush()
            s.add(Tag(note_id=note.id, label="home"))
    with app_context("canopy"):
        orders = kernel.services["orders"]
        trading = orders.start_trading_session(alice, "momentum")
        orders.create_order(alice, "AAPL", "limit", 10, 187.5, session_id=trading, notes=APPLE)
        notification_service.create_notification(alice, "order", "Order placed", data={"symbol": "AAPL"})
    with app_context("grove"):
        kernel.services["reports"].start_research(bob, "MSFT", SOUP)
        notification_service.create_notification(bob, "research", "Research started")
    kernel.vectors.drain()  # every app's points into the store
    with app_context("removeme"), kernel.db.session_scope() as s:
        s.add(Note(user_id=bob, body=SOUP))  # left in the outbox
    with app_context("grove"):
        kernel.services["reports"].start_research(alice, "AAPL", APPLE)  # left in the outbox too


def removeme_row(table: str, row: dict[str, Any]) -> bool:
    """Whether a row of a shared table belongs to removeme (the way each kernel table records its app)."""
    return (row.get("session_type") in TYPES or row.get("app_name") == "removeme" or row.get("app") == "removeme")


def dump(url: str) -> dict[str, list[str]]:
    """Every table's rows, each as the repr of its (column, value) pairs, sorted on every column."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            tables: dict[str, list[str]] = {}
            for table in sorted(insp.get_table_names()):
                cols = [c["name"] for c in insp.get_columns(table)]
                order = ", ".join(f'"{c}"' for c in cols)
                rows = conn.execute(text(f'SELECT * FROM "{table}" ORDER BY {order}'))
                tables[table] = [repr(sorted(r._mapping.items())) for r in rows]
            return tables
    finally:
        engine.dispose()


def rows_of(url: str, table: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    finally:
        engine.dispose()


def points() -> dict[str, list[tuple[str, str]]]:
    """Every point of the embedded vector store, by collection: (id, payload as sorted JSON)."""
    from timber_core.vectors.factory import open_store

    store = open_store(None, os.path.join(os.environ["TIMBER_HOME"], "vectors"))
    try:
        return {c: sorted((pid, json.dumps(p, sort_keys=True)) for pid, p in store.scan(c)) for c in store.collections()}
    finally:
        store.close()


def others(url: str) -> dict[str, list[str]]:
    """The dump without removeme's tables, its rows of the shared tables, or alembic_version (checked apart)."""
    result = {}
    for table, rows in dump(url).items():
        if table in OWN_TABLES or table == "alembic_version":
            continue
        full = {repr(sorted(r.items())): r for r in rows_of(url, table)}
        result[table] = [r for r in rows if not removeme_row(table, full[r])]
    return result


def remove(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, ["apps", "remove", *args], env={"DATABASE_URL": url})


def populated(url: str) -> None:
    kernel = start(url)
    try:
        populate(kernel)
    finally:
        kernel.close()


def test_remove_takes_every_trace_of_the_app_and_leaves_the_others_byte_for_byte(url: str) -> None:
    populated(url)
    before, before_points = others(url), points()
    assert {t: len(before[t]) for t in ("users", "sessions", "notifications", "events", "timber_vector_outbox",
                                        "orders", "research_sessions")} == {
        "users": 2, "sessions": 3, "notifications": 2, "events": 3, "timber_vector_outbox": 1, "orders": 1,
        "research_sessions": 2}
    assert {t for t in dump(url) if t.startswith("removeme")} == OWN_TABLES
    assert sorted(before_points) == ["orders", "removeme_notes", "research_sessions"]
    assert sum(removeme_row(t, r) for t in ("sessions", "notifications", "events", "timber_vector_outbox")
               for r in rows_of(url, t)) == 2 + 1 + 2 + 1

    result = remove(url, "removeme", "--yes")

    assert result.exit_code == 0, result.output
    assert "  rows to delete from shared tables: events (2 rows), notifications (1 row), sessions (2 rows), " \
           "timber_vector_outbox (1 row) (session types: sweeping, tidying)\n" in result.stdout
    assert "  vector collections to drop: removeme_notes (1 point)\n" in result.stdout
    after = dump(url)
    assert not {t for t in after if t.startswith("removeme")}
    assert [r for t in after if t not in ("alembic_version",) for r in rows_of(url, t) if removeme_row(t, r)] == []
    assert sorted(r["version_num"] for r in rows_of(url, "alembic_version")) == [
        "canopy_0002", "grove_0002", "timber_0005"]
    assert others(url) == before
    assert points() == {c: p for c, p in before_points.items() if c != "removeme_notes"}


def test_on_postgresql_the_role_is_kept_with_nothing_of_it_left_in_the_database_and_its_sql_printed(
        installed: None, scratch_postgres: str) -> None:
    populated(scratch_postgres)

    result = remove(scratch_postgres, "removeme", "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(
        "its role timber_removeme is kept: roles belong to the whole PostgreSQL server. Once no database on it "
        "uses app 'removeme', drop the role as a superuser: run the first statement in each database where the "
        "app was installed, then the second once:\n"
        '  DROP OWNED BY "timber_removeme";\n'
        '  DROP ROLE "timber_removeme";\n')
    engine = create_engine(scratch_postgres)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = 'timber_removeme'")).scalar() == 1
            # Nothing in this database depends on the role any more: no grant, no policy, no owned object.
            assert conn.execute(text(
                "SELECT count(*) FROM pg_shdepend d JOIN pg_database db ON db.oid = d.dbid "
                "WHERE db.datname = current_database() AND d.refobjid = 'timber_removeme'::regrole")).scalar() == 0
            assert [r[0] for r in conn.execute(text(
                "SELECT policyname FROM pg_policies WHERE policyname LIKE '%removeme%'"))] == []
    finally:
        engine.dispose()


def test_after_remove_and_uninstall_every_command_and_the_other_apps_work(url: str) -> None:
    populated(url)
    assert remove(url, "removeme", "--yes").exit_code == 0
    sys.path.remove(str(REMOVE_ME))  # uninstalled
    importlib.invalidate_caches()

    env = {k: v for k, v in os.environ.items() if k not in ("TIMBER_APPS", "TIMBER_DISABLE_APPS")}
    env.update(DATABASE_URL=url, PYTHONPATH=os.pathsep.join(str(p) for p in SOURCE_PATHS))
    commands = [["migrate"], ["migrations", "check"]] + ([["doctor"]] if url.startswith("postgresql") else [])
    for args in commands:
        done = subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert (args, done.returncode) == (args, 0), done.stderr
        assert "removeme" not in done.stdout + done.stderr
    kernel = start(url)
    try:
        assert [a.name for a in kernel.apps.loaded()] == ["timber", "canopy", "grove"]
        with app_context("canopy"):
            assert len(kernel.services["orders"].get_user_orders(user_service.get_user_by_email("alice@example.com").id)) == 1
    finally:
        kernel.close()


def test_a_removal_interrupted_after_the_downgrade_is_completed_by_the_next_run(url: str) -> None:
    from timber_core.migrations.runner import downgrade

    populated(url)
    before, before_points = others(url), points()
    kernel = start(url, "removeme")
    try:
        downgrade(kernel, "removeme", "base")  # the first step alone, as if killed right after it
    finally:
        kernel.close()

    result = remove(url, "removeme", "--yes")

    assert result.exit_code == 0, result.output
    assert "  revisions to downgrade: none\n  tables to drop: none\n" in result.stdout
    assert "deleted its rows from the shared tables: events 2, notifications 1, sessions 2, " \
           "timber_vector_outbox 1\ndropped its vector collections: removeme_notes\n" in result.stdout
    assert others(url) == before
    assert points() == {c: p for c, p in before_points.items() if c != "removeme_notes"}
    assert "nothing of app 'removeme' is left in" in remove(url, "removeme", "--yes").stdout


def test_dry_run_prints_the_plan_as_json_and_changes_nothing(sqlite_url: str) -> None:
    populated(sqlite_url)
    before, before_points = dump(sqlite_url), points()

    result = remove(sqlite_url, "removeme", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "app": "removeme", "distribution": "timber-removeme", "version": "0.1.0",
        "database": sqlite_url, "session_types": ["sweeping", "tidying"], "revisions": ["removeme_0001"],
        "tables": {"removeme_notes": 2, "removeme_tags": 1},
        "shared_rows": {"events": 2, "notifications": 1, "sessions": 2, "timber_vector_outbox": 1},
        "collections": {"removeme_notes": 1}, "role": None, "refusals": [], "role_sql": [],
    }
    assert (dump(sqlite_url), points()) == (before, before_points)


def test_answering_no_at_the_prompt_changes_nothing(sqlite_url: str) -> None:
    populated(sqlite_url)
    before, before_points = dump(sqlite_url), points()
    env = dict(os.environ, DATABASE_URL=sqlite_url,
               PYTHONPATH=os.pathsep.join(str(p) for p in [REMOVE_ME, *SOURCE_PATHS]))
    primary, secondary = pty.openpty()  # a terminal on stdin: the command asks
    try:
        proc = subprocess.Popen([sys.executable, "-c", CLI, "apps", "remove", "removeme"], stdin=secondary,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        os.close(secondary)
        os.write(primary, b"n\n")
        out, err = proc.communicate(timeout=300)
    finally:
        os.close(primary)

    assert proc.returncode == 0, err
    assert out.endswith(f"Remove app 'removeme''s data from {sqlite_url}? [y/N]: nothing changed\n")
    assert (dump(sqlite_url), points()) == (before, before_points)


def test_without_a_terminal_and_without_yes_it_refuses_and_changes_nothing(sqlite_url: str) -> None:
    populated(sqlite_url)
    before = dump(sqlite_url)

    result = remove(sqlite_url, "removeme")

    assert (result.exit_code, result.stdout, result.stderr) == (1, "", (
        "Error: cannot ask for confirmation (stdin is not a terminal): run `timber apps remove removeme --yes` "
        "to remove it, or add --dry-run to only see what would go\n"))
    assert dump(sqlite_url) == before


def test_an_unknown_app_is_an_error_naming_the_installed_ones(sqlite_url: str) -> None:
    result = remove(sqlite_url, "nosuch", "--yes")

    assert (result.exit_code, result.stderr) == (1, (
        "Error: no app named 'nosuch' is installed (installed: canopy, grove, removeme); `timber apps remove` "
        "needs the app still installed: its migrations take its tables down\n"))


@pytest.mark.parametrize(("case", "reason"), [
    ("remove_me_addon", "app 'tidyaddon' depends on it (`depends` in its timber_app_info): remove app 'tidyaddon' "
                        "first (`timber apps remove tidyaddon`) and uninstall it"),
    ("remove_me_revdep", "the applied revisions of app 'sweeper' (at sweeper_0001) depend on its revisions: "
                         "remove app 'sweeper' first (`timber apps remove sweeper`)"),
])
def test_removal_is_refused_while_another_app_depends_on_it(url: str, case: str, reason: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS / case))
    populated(url)
    before, before_points = dump(url), points()

    result = remove(url, "removeme", "--yes")

    assert (result.exit_code, result.stderr) == (1, f"Error: app 'removeme' cannot be removed: {reason}\n")
    assert (dump(url), points()) == (before, before_points)


def test_an_app_without_revisions_has_its_tables_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS / "journal"))
    timber_core.shutdown()
    url = f"sqlite:///{tmp_path}/timber.db"
    kernel = start(url, "journal")
    try:
        alice = user_service.create_user("alice@example.com", "alice")
        with kernel.db.session_scope() as s:
            s.add(kernel.models["JournalEntry"](user_id=alice, body="dear diary"))
        tracker_service.track_event(alice, "wrote", {})
    finally:
        kernel.close()

    result = remove(url, "journal", "--yes")

    assert result.exit_code == 0, result.output
    assert "dropped its tables: journal_entries\ndeleted its rows from the shared tables: events 1\n" in result.stdout
    assert "journal_entries" not in dump(url)
    assert rows_of(url, "events") == []


def test_removing_from_a_database_that_never_had_the_app_says_nothing_is_left(sqlite_url: str) -> None:
    result = remove(sqlite_url, "removeme", "--yes")

    assert result.exit_code == 0, result.output
    assert f"nothing of app 'removeme' is left in {sqlite_url}\n" in result.stdout
    assert dump(sqlite_url) == {}
