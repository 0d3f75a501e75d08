"""Hostile or broken input becomes one clear TimberError naming where and what to do, with nothing half-done.

Search text that is not valid Unicode, YAML alias bombs, models past the databases' limits,
absurd worker intervals, and a kernel downgrade that would take every app down with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

import timber_core
from tests.services.conftest import sqlite_kernel  # noqa: F401 - the fixture
from tests.vectors.conftest import embedder, model_env, offline_model_dir, start  # noqa: F401 - the fixtures
from timber_core.migrations import commands as migration_commands
from timber_core.vectors import commands as vector_commands
from timber_core.errors import ValidationError
from timber_core.schema import load_schema, parse_file
from timber_core.services.vector import vector_service

# -- 9. text that cannot be encoded as UTF-8 ------------------------------------------------------


def test_a_search_query_with_a_lone_surrogate_is_a_validation_error_naming_the_query(sqlite_kernel: Any) -> None:  # noqa: F811
    with timber_core.app_context("grove"), pytest.raises(ValidationError) as err:
        vector_service.search("apple \ud800 earnings", "research_sessions")
    assert str(err.value) == (
        "search: query is not valid Unicode text: it holds a lone surrogate '\\ud800' at index 6, which cannot be "
        "encoded as UTF-8; decode the text from its bytes with errors='replace' before searching")


def test_a_unified_search_query_with_a_lone_surrogate_is_a_validation_error(sqlite_kernel: Any) -> None:  # noqa: F811
    with timber_core.platform_context(), pytest.raises(ValidationError) as err:
        vector_service.unified_search("alice", "\udfff")
    assert str(err.value) == (
        "unified_search: query is not valid Unicode text: it holds a lone surrogate '\\udfff' at index 0, which "
        "cannot be encoded as UTF-8; decode the text from its bytes with errors='replace' before searching")


def test_the_embedder_embeds_a_lone_surrogate_as_replacement_characters(embedder: Any) -> None:  # noqa: F811
    assert embedder.embed(["a \ud800 b"]) == embedder.embed(["a \ufffd\ufffd\ufffd b"])


@pytest.fixture
def grove_vectors(model_env: str, tmp_path: Path) -> Iterator[Any]:  # noqa: F811
    k = start(f"sqlite:///{tmp_path}/timber.db")
    yield k
    k.close()


@pytest.fixture
def writer(grove_vectors: Any) -> str:
    from timber_core.services.persistence import user_service

    return user_service.create_user("writer@example.com", "writer")


BAD_NOTES = "CAST(X'4170706c6520eda080206561726e696e67732062656174206578706563746174696f6e73' AS TEXT)"


def _research_with_raw_notes(kernel: Any, user: str, raw_notes_sql: str, good_notes: str) -> tuple[str, str]:
    """Two research rows in one transaction; raw SQL gives the first notes that are not valid UTF-8."""
    ResearchSession = kernel.models["ResearchSession"]
    with timber_core.app_context("grove"), timber_core.user_context(user), kernel.db.session_scope() as s:
        bad, good = ResearchSession(user_id=user, symbol="AAPL", notes="placeholder"), \
            ResearchSession(user_id=user, symbol="MSFT", notes=good_notes)
        s.add_all([bad, good])
        s.flush()
        s.execute(text(f"UPDATE research_sessions SET notes = {raw_notes_sql} WHERE id = :id"), {"id": bad.id})
        return bad.id, good.id


def test_a_stored_text_with_a_lone_surrogate_is_indexed_with_replacement_characters(
        grove_vectors: Any, writer: str) -> None:
    bad, good = _research_with_raw_notes(grove_vectors, writer, BAD_NOTES, "Microsoft cloud revenue grows")
    with timber_core.platform_context(), grove_vectors.db.connection() as conn:
        pending = conn.execute(select(grove_vectors.vectors.table.c.row_id)).all()
    points = grove_vectors.vectors.store.retrieve("research_sessions", [bad, good])
    assert pending == []
    assert {k: v["content"] for k, v in points.items()} == {
        bad: "Apple \ufffd\ufffd\ufffd earnings beat expectations", good: "Microsoft cloud revenue grows"}


def test_a_stored_text_with_a_lone_surrogate_does_not_stop_reindex_or_verify(grove_vectors: Any, writer: str) -> None:
    from timber_core.vectors.drain import reindex
    from timber_core.vectors.verify import compare

    _research_with_raw_notes(grove_vectors, writer, BAD_NOTES, "Microsoft cloud revenue grows")
    with timber_core.platform_context():
        written = reindex(grove_vectors.vectors, ["ResearchSession"])
        drift = compare(grove_vectors.vectors, grove_vectors.vectors.model("ResearchSession"))
    assert (written, drift.clean, drift.rows) == ({"research_sessions": 2}, True, 2)


# -- 10. YAML alias bombs, and bounded excerpts of values in messages -----------------------------

def _bomb(depth: int) -> str:
    lines = ['version: "1.0"', 'l0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, depth):
        lines.append(f"l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    lines += ["models:", "  - name: Bomb", "    table_name: bombs", "    columns:",
              "      - {name: id, type: String(36), primary_key: true}",
              f"      - {{name: boom, type: *a{depth - 1}}}", ""]
    return "\n".join(lines)


@pytest.mark.parametrize("depth", [5, 9])
def test_a_yaml_alias_bomb_is_refused_at_the_alias_that_passes_the_budget(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(depth), encoding="utf-8")
    model_file, problems = parse_file(str(path), "orchard")
    assert (model_file, [str(p) for p in problems]) == (None, [
        f"{path}:6: app 'orchard', field 'file': alias *a3 would expand the file past 10000 YAML nodes "
        f"(aliases nested like a 'billion laughs' bomb); write the values out instead of nesting aliases"])


def test_a_few_aliases_within_the_budget_still_work(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text("\n".join([
        "models:", "  - name: Thing", "    table_name: things", "    columns:",
        "      - &key {name: id, type: String(36), primary_key: true}",
        "  - name: Other", "    table_name: others", "    columns:", "      - *key", ""]), encoding="utf-8")
    model_file, problems = parse_file(str(path), "orchard")
    assert (problems, [[c.name for c in m.columns] for m in model_file.models]) == ([], [["id"], ["id"]])


def test_an_alias_to_its_own_anchor_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text('version: "1.0"\nloop: &me [1, *me]\nmodels: []\n', encoding="utf-8")
    assert [str(p) for p in parse_file(str(path), "orchard")[1]] == [
        f"{path}:2: app 'orchard', field 'file': alias *me refers to the node that contains it; YAML that refers "
        f"to itself cannot describe a model"]


HUGE = "x" * 1_000_000
#: Where a value is echoed back in a message: (field, YAML of a model with the huge value there).
ECHOED = {
    "model name": "- {name: %s, table_name: t, columns: [{name: id, type: Integer, primary_key: true}]}",
    "column type": "- {name: M, table_name: t, columns: [{name: id, type: '%s', primary_key: true}]}",
    "primary_key": "- {name: M, table_name: t, columns: [{name: id, type: Integer, primary_key: '%s'}]}",
    "default": "- {name: M, table_name: t, columns: [{name: id, type: Integer, primary_key: true, default: '%s'}]}",
    "foreign_key": "- {name: M, table_name: t, columns: [{name: id, type: Integer, primary_key: true, "
                   "foreign_key: '%s'}]}",
    "ondelete": "- {name: M, table_name: t, columns: [{name: id, type: Integer, primary_key: true, "
                "foreign_key: a.b, ondelete: '%s'}]}",
    "relationship type": "- {name: M, table_name: t, columns: [{name: id, type: Integer, primary_key: true}], "
                         "relationships: [{name: r, model: M, type: '%s'}]}",
    "description": "- {name: M, table_name: t, description: ['%s'], columns: [{name: id, type: Integer, "
                   "primary_key: true}]}",
}


@pytest.mark.parametrize("where", sorted(ECHOED))
def test_a_huge_value_is_echoed_as_a_short_excerpt(tmp_path: Path, where: str) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("models:\n" + ECHOED[where] % HUGE + "\n", encoding="utf-8")
    problems = [str(p) for p in parse_file(str(path), "orchard")[1]]
    assert problems and max(len(p) for p in problems) < 600


def test_a_huge_depends_entry_is_echoed_as_a_short_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "dep.yaml"
    path.write_text(f"depends: ['{HUGE}']\nmodels: []\n", encoding="utf-8")
    problems = [str(p) for p in parse_file(str(path), "orchard")[1]]
    assert problems and max(len(p) for p in problems) < 600


# -- 11. the limits of the target databases ------------------------------------------------------

def _model(tmp_path: Path, body: str, name: str = "models.yaml") -> Path:
    directory = tmp_path / "orchard"
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path


def _schema_problems(tmp_path: Path) -> list[str]:
    return [str(p) for p in load_schema([("orchard", str(tmp_path / "orchard"))]).problems]


def test_a_model_with_more_columns_than_postgresql_allows_is_refused_at_its_columns(tmp_path: Path) -> None:
    columns = "".join(f"\n      - {{name: c{i}, type: Integer}}" for i in range(10_000))
    path = _model(tmp_path, "models:\n  - name: Wide\n    table_name: wide\n    columns:"
                            "\n      - {name: id, type: Integer, primary_key: true}" + columns + "\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:4: app 'orchard', field 'Wide.columns': has 10003 columns (with the implicit created_at and "
        f"updated_at); PostgreSQL allows at most 1600 in one table (SQLite 2000): split the model"]


def test_1598_columns_and_the_two_timestamps_are_accepted(tmp_path: Path) -> None:
    columns = "".join(f"\n      - {{name: c{i}, type: Integer}}" for i in range(1597))
    _model(tmp_path, "models:\n  - name: Wide\n    table_name: wide\n    columns:"
                     "\n      - {name: id, type: Integer, primary_key: true}" + columns + "\n")
    assert _schema_problems(tmp_path) == []


LONG_TABLE = "t" * 40
LONG_COLUMN = "c" * 30


@pytest.mark.parametrize(("column", "kind", "generated"), [
    ("index: true", "index", f"ix_{LONG_TABLE}_{LONG_COLUMN}"),
    ("unique: true", "unique constraint", f"uq_{LONG_TABLE}_{LONG_COLUMN}"),
    ("foreign_key: users.id", "foreign key", f"fk_{LONG_TABLE}_{LONG_COLUMN}_users"),
])
def test_a_generated_constraint_name_past_63_characters_is_refused_at_its_column(
        tmp_path: Path, column: str, kind: str, generated: str) -> None:
    path = _model(tmp_path, f"models:\n  - name: Long\n    table_name: {LONG_TABLE}\n    columns:\n"
                            f"      - {{name: id, type: String(36), primary_key: true}}\n"
                            f"      - {{name: {LONG_COLUMN}, type: String(36), {column}}}\n")
    problems = [p for p in _schema_problems(tmp_path) if "is not declared" not in p]
    assert problems == [
        f"{path}:6: app 'orchard', field 'Long.columns.{LONG_COLUMN}': the {kind} name Timber generates, "
        f"{generated!r}, is {len(generated)} characters long; PostgreSQL truncates names past 63: shorten the "
        f"table or column name"]


def test_a_generated_index_name_past_63_characters_is_refused_at_its_index(tmp_path: Path) -> None:
    path = _model(tmp_path, f"models:\n  - name: Long\n    table_name: {LONG_TABLE}\n    columns:\n"
                            f"      - {{name: id, type: String(36), primary_key: true}}\n"
                            f"      - {{name: {LONG_COLUMN}, type: String(36)}}\n"
                            f"    indexes:\n      - {{columns: [{LONG_COLUMN}, id]}}\n")
    generated = f"ix_{LONG_TABLE}_{LONG_COLUMN}_id"
    assert _schema_problems(tmp_path) == [
        f"{path}:8: app 'orchard', field 'Long.indexes': the index name Timber generates, {generated!r}, is "
        f"{len(generated)} characters long; PostgreSQL truncates names past 63: give the index a shorter `name:`"]


def test_a_primary_key_name_past_63_characters_is_refused_at_the_model(tmp_path: Path) -> None:
    table = "p" * 61
    path = _model(tmp_path, f"models:\n  - name: Long\n    table_name: {table}\n    columns:\n"
                            f"      - {{name: id, type: String(36), primary_key: true}}\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:3: app 'orchard', field 'Long.table_name': the primary key name Timber generates, "
        f"'pk_{table}', is 64 characters long; PostgreSQL truncates names past 63: shorten the table name"]


def test_an_index_over_more_than_32_columns_is_refused(tmp_path: Path) -> None:
    cols = [f"c{i}" for i in range(33)]
    path = _model(tmp_path, "models:\n  - name: Many\n    table_name: many\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n"
                            + "".join(f"      - {{name: {c}, type: Integer}}\n" for c in cols)
                            + f"    indexes:\n      - {{name: ix_many_all, columns: [{', '.join(cols)}]}}\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:40: app 'orchard', field 'Many.indexes.ix_many_all': has 33 columns; PostgreSQL indexes take at "
        f"most 32: index fewer columns"]


@pytest.mark.parametrize(("type_", "message"), [
    ("String(10485761)", "'String(10485761)': the length must be at most 10485760 (PostgreSQL's limit); use Text"),
    ("Numeric(1001, 2)", "'Numeric(1001, 2)': the precision must be at most 1000 (PostgreSQL's limit)"),
])
def test_a_type_past_postgresqls_limits_is_refused(tmp_path: Path, type_: str, message: str) -> None:
    path = _model(tmp_path, f"models:\n  - name: Big\n    table_name: big\n    columns:\n"
                            f"      - {{name: id, type: Integer, primary_key: true}}\n"
                            f"      - {{name: v, type: '{type_}'}}\n")
    assert _schema_problems(tmp_path) == [f"{path}:6: app 'orchard', field 'Big.columns.v.type': {message}"]


def test_column_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    path = _model(tmp_path, "models:\n  - name: Cased\n    table_name: cased\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n"
                            "      - {name: Price, type: Integer}\n      - {name: price, type: Integer}\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:7: app 'orchard', field 'Cased.columns.price': differs from column 'Price' (line 6) only in case; "
        f"SQLite would refuse both in one table: rename one"]


def test_table_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    path = _model(tmp_path, "models:\n  - name: Upper\n    table_name: Things\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n"
                            "  - name: Lower\n    table_name: things\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:6: app 'orchard', field 'table_name': table 'things' differs from table 'Things' (declared at "
        f"{path}:2 by app 'orchard') only in case; SQLite would refuse both: rename one"]


def test_a_table_name_sqlite_reserves_is_refused(tmp_path: Path) -> None:
    path = _model(tmp_path, "models:\n  - name: Stat\n    table_name: sqlite_stat9\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:3: app 'orchard', field 'Stat.table_name': 'sqlite_stat9' starts with 'sqlite_', which SQLite "
        f"reserves for itself; choose another name"]


# -- 12. the worker's interval -------------------------------------------------------------------

def cli() -> click.Group:
    """The ``timber`` commands under test, as the real CLI registers them."""
    group = click.Group("timber")
    migration_commands.register(group)
    vector_commands.register(group)
    return group


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "-1", "0", "86401", "soon"])
def test_an_absurd_worker_interval_is_a_usage_error_naming_the_option(value: str) -> None:
    result = CliRunner().invoke(cli(), ["vectors", "worker", "--interval", value])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", (
        "Usage: timber vectors worker [OPTIONS]\nTry 'timber vectors worker --help' for help.\n\n"
        f"Error: Invalid value for '--interval': {value!r} is not a number of seconds from 0.01 to 86400.\n"))


# -- 13. a downgrade that would take other apps down with it -------------------------------------

def _timber(*args: str, tmp_path: Path) -> Any:
    return CliRunner().invoke(cli(), list(args), env={"DATABASE_URL": f"sqlite:///{tmp_path}/timber.db"})


def _current(tmp_path: Path) -> dict[str, str | None]:
    status = _timber("migrations", "status", "--json", tmp_path=tmp_path)
    return {s["app"]: s["current"] for s in json.loads(status.stdout)}


def test_downgrading_the_kernel_to_base_while_apps_are_applied_is_refused_naming_them(tmp_path: Path) -> None:
    assert _timber("migrate", tmp_path=tmp_path).exit_code == 0
    before = _current(tmp_path)
    result = _timber("downgrade", "--app", "timber", "base", tmp_path=tmp_path)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", (
        "Error: ConfigurationError: downgrade --app timber base would also take down app 'canopy' (at canopy_0002) and app 'grove' "
        "(at grove_0002): their revisions depend on what it removes. Take them down first (`timber downgrade "
        "--app canopy base`, `timber downgrade --app grove base`), or pass --all to take them down with it\n"))
    assert _current(tmp_path) == before


def test_downgrading_the_kernel_to_base_after_every_app_is_down_is_allowed(tmp_path: Path) -> None:
    assert _timber("migrate", tmp_path=tmp_path).exit_code == 0
    for app in ("canopy", "grove"):
        assert _timber("downgrade", "--app", app, "base", tmp_path=tmp_path).exit_code == 0
    result = _timber("downgrade", "--app", "timber", "base", tmp_path=tmp_path)
    assert (result.exit_code, result.stdout) == (0, "downgraded app 'timber' to base\n")
    assert set(_current(tmp_path).values()) == {None}


def test_downgrading_the_kernel_with_all_takes_the_dependent_apps_down_too(tmp_path: Path) -> None:
    assert _timber("migrate", tmp_path=tmp_path).exit_code == 0
    result = _timber("downgrade", "--app", "timber", "base", "--all", tmp_path=tmp_path)
    assert (result.exit_code, result.stdout) == (
        0, "downgraded app 'timber' to base, and with it app 'canopy' and app 'grove'\n")
    assert set(_current(tmp_path).values()) == {None}


def test_downgrading_one_app_leaves_the_others_alone_without_all(tmp_path: Path) -> None:
    assert _timber("migrate", tmp_path=tmp_path).exit_code == 0
    result = _timber("downgrade", "--app", "grove", "base", tmp_path=tmp_path)
    assert (result.exit_code, result.stdout) == (0, "downgraded app 'grove' to base\n")
    assert _current(tmp_path)["canopy"] == "canopy_0002"


def test_an_index_name_used_by_two_tables_is_refused_naming_both(tmp_path: Path) -> None:
    path = _model(tmp_path, "models:\n  - name: One\n    table_name: one\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n"
                            "    indexes:\n      - {name: ix_shared, columns: [id]}\n"
                            "  - name: Two\n    table_name: two\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n"
                            "    indexes:\n      - {name: ix_shared, columns: [id]}\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:13: app 'orchard', field 'Two.indexes.ix_shared': index 'ix_shared' is also the name of an index "
        f"of table 'one' ({path}:7, app 'orchard'); index and table names are unique in the whole database: "
        f"rename one"]


def test_an_index_named_like_a_table_is_refused(tmp_path: Path) -> None:
    path = _model(tmp_path, "models:\n  - name: One\n    table_name: one\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n"
                            "    indexes:\n      - {name: two, columns: [id]}\n"
                            "  - name: Two\n    table_name: two\n    columns:\n"
                            "      - {name: id, type: Integer, primary_key: true}\n")
    assert _schema_problems(tmp_path) == [
        f"{path}:7: app 'orchard', field 'One.indexes.two': index 'two' is also the name of table 'two' "
        f"({path}:8, app 'orchard'); index and table names are unique in the whole database: rename one"]
