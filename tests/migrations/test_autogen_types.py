"""``create-migration`` writes revisions that run on SQLite and PostgreSQL, whichever one generated them.

The fixture app ``typezoo`` (tests/fixtures/plugins/autogen_types) uses every column
type and option of the YAML model language (tests/fixtures/yaml/autogen_types/v1);
v2 changes it: a column of each type added, columns of several types and a table
removed, a table added, nullability, a length and indexes changed. Its revisions are
written to tmp_path.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

import timber_core
from timber_core.migrations import autogen, rendering, runner
from timber_core.migrations.doctor import skip_startup_check
from timber_core.schema.build import _sa_type
from timber_core.schema.spec import TypeSpec
from timber_core.schema.validate import TYPES

from ..conftest import postgres_url_or_skip

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PLUGIN = FIXTURES / "plugins" / "autogen_types"
MODELS = FIXTURES / "yaml" / "autogen_types"
APP = "typezoo"
V1_TABLES = ["zoo_animal_labels", "zoo_animals", "zoo_keepers", "zoo_labels"]
V2_TABLES = ["zoo_animals", "zoo_enclosures", "zoo_keepers", "zoo_labels"]
DIALECTS = ["sqlite", "postgresql"]

NewDatabase = Callable[[str], str]


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[NewDatabase]:
    """Return a function making an empty database of a dialect ('sqlite' or 'postgresql'); drop them after."""
    made: list[str] = []
    admin: Any = None

    def new(dialect: str) -> str:
        nonlocal admin
        name = f"timber_t_{uuid.uuid4().hex[:12]}"
        if dialect == "sqlite":
            return f"sqlite:///{tmp_path}/{name}.db"
        base = make_url(postgres_url_or_skip()).set(drivername="postgresql+psycopg")
        if admin is None:
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    yield new
    timber_core.shutdown()
    if admin is not None:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def typezoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Install the app ``typezoo``; return a function putting model version 'v1' or 'v2' in its model directory.

    Its revisions go to tmp_path/revisions.
    """
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(models))
    monkeypatch.setenv("TIMBER_FIXTURE_MIGRATIONS_DIR", str(tmp_path / "revisions"))
    monkeypatch.syspath_prepend(str(PLUGIN))
    importlib.invalidate_caches()

    def use(version: str) -> None:
        shutil.copy(MODELS / version / "zoo_models.yaml", models / "zoo_models.yaml")

    yield use
    sys.modules.pop("timber_fixture_autogen", None)


def kernel_for(url: str) -> Any:
    with skip_startup_check():
        return timber_core.initialize_timber(APP, database_url=url, create_tables=False)


def app_tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return sorted(t for t in inspect(engine).get_table_names() if t.startswith("zoo_"))
    finally:
        engine.dispose()


def generate(new_database: NewDatabase, use: Callable[[str], None], dialect: str) -> list[str]:
    """Generate typezoo's two revisions (v1, then v2) on a new database of ``dialect``; return their paths."""
    url = new_database(dialect)
    use("v1")
    kernel = kernel_for(url)
    runner.upgrade(kernel)  # create-migration needs the database at every head
    first = autogen.create_migration(kernel, "zoo", APP, rev_id="typezoo_0001")
    assert first is not None
    runner.upgrade(kernel)
    kernel.close()
    use("v2")
    kernel = kernel_for(url)
    second = autogen.create_migration(kernel, "zoo changes", APP, rev_id="typezoo_0002")
    assert second is not None
    kernel.close()
    return [first, second]


@pytest.mark.parametrize("applied_on", DIALECTS)
@pytest.mark.parametrize("generated_on", DIALECTS)
def test_revisions_generated_on_one_database_upgrade_check_downgrade_and_upgrade_on_each(
    generated_on: str, applied_on: str, new_database: NewDatabase, typezoo: Callable[[str], None]
) -> None:
    generate(new_database, typezoo, generated_on)
    url = new_database(applied_on)
    kernel = kernel_for(url)  # the v2 models
    runner.upgrade(kernel)
    assert {s.app: (s.current, s.pending) for s in runner.status(kernel)}[APP] == ("typezoo_0002", [])
    assert app_tables(url) == V2_TABLES
    assert runner.check(kernel) == []
    runner.downgrade(kernel, APP, "base")
    assert app_tables(url) == []
    runner.upgrade(kernel)
    assert app_tables(url) == V2_TABLES
    assert runner.check(kernel) == []
    kernel.close()


@pytest.mark.parametrize("applied_on", DIALECTS)
@pytest.mark.parametrize("generated_on", DIALECTS)
def test_downgrading_the_alter_revision_restores_the_first_revisions_schema(
    generated_on: str, applied_on: str, new_database: NewDatabase, typezoo: Callable[[str], None]
) -> None:
    first, second = generate(new_database, typezoo, generated_on)
    url = new_database(applied_on)
    kernel = kernel_for(url)
    runner.upgrade(kernel)
    runner.downgrade(kernel, APP, "typezoo_0001")
    kernel.close()
    # As if the alter had never been written: compare the database with the first revision's models.
    os.remove(second)
    typezoo("v1")
    kernel = kernel_for(url)
    assert app_tables(url) == V1_TABLES
    assert runner.check(kernel) == []
    kernel.close()


@pytest.mark.parametrize("generated_on", DIALECTS)
def test_a_revision_imports_only_what_it_uses(
    generated_on: str, new_database: NewDatabase, typezoo: Callable[[str], None]
) -> None:
    for path in generate(new_database, typezoo, generated_on):
        tree = ast.parse(Path(path).read_text())
        imported = {
            (alias.asname or alias.name).split(".")[0]
            for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        } - {"annotations"}
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        assert imported - used == set(), path
        assert imported == {"Sequence", "sa", "op", "tops", "postgresql"}, path


@pytest.mark.parametrize("checked_on", DIALECTS)
@pytest.mark.parametrize("generated_on", DIALECTS)
def test_create_migration_on_an_unchanged_model_writes_nothing_on_either_database(
    generated_on: str, checked_on: str, new_database: NewDatabase, typezoo: Callable[[str], None], tmp_path: Path
) -> None:
    generate(new_database, typezoo, generated_on)
    url = new_database(checked_on)
    kernel = kernel_for(url)
    runner.upgrade(kernel)
    assert autogen.create_migration(kernel, "nothing new", APP) is None
    kernel.close()
    assert sorted(p.name for p in (tmp_path / "revisions").glob("*.py")) == [
        "typezoo_0001_zoo.py", "typezoo_0002_zoo_changes.py"
    ]


COLUMN_TYPE = re.compile(r"sa\.Column\('(\w+)', (.*?\)), (?:autoincrement|nullable)")
ALTERED_TYPE = re.compile(r"alter_column\('(\w+)',\s+existing_type=(.*?\)),(?:\s+type_=(.*?\)),)?")


def rendered_types(source: str) -> list[tuple[str, ...]]:
    """Every column type a revision writes, with its column, in order."""
    return COLUMN_TYPE.findall(source) + ALTERED_TYPE.findall(source)


def test_sqlite_and_postgresql_render_every_column_type_the_same(
    new_database: NewDatabase, typezoo: Callable[[str], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    types = {}
    for dialect in DIALECTS:
        monkeypatch.setenv("TIMBER_FIXTURE_MIGRATIONS_DIR", str(tmp_path / dialect))
        # PostgreSQL reports a removed NUMERIC(5) column as NUMERIC(5, 0), the same type on both databases.
        types[dialect] = [rendered_types(Path(p).read_text().replace("precision=5, scale=0", "precision=5"))
                          for p in generate(new_database, typezoo, dialect)]
    assert types["sqlite"] == types["postgresql"]
    first, second = types["sqlite"]
    assert ("traits", "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')") in first
    assert sorted({t for _c, t in first}) == [
        "sa.BigInteger()", "sa.Boolean()", "sa.Date()", "sa.DateTime(timezone=True)", "sa.Float()",
        "sa.Integer()", "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')", "sa.Numeric()",
        "sa.Numeric(precision=10, scale=2)", "sa.Numeric(precision=5)", "sa.String(length=100)",
        "sa.String(length=36)", "sa.String(length=40)", "sa.String(length=50)", "sa.Text()", "sa.Uuid(as_uuid=False)",
    ]
    assert ("name", "sa.String(length=100)", "sa.String(length=150)") in second


def test_create_migration_refuses_a_revision_id_already_in_the_graph(
    new_database: NewDatabase, typezoo: Callable[[str], None], tmp_path: Path
) -> None:
    typezoo("v1")
    kernel = kernel_for(new_database("sqlite"))
    runner.upgrade(kernel)
    taken = kernel.apps.get("canopy").migrations_dir
    with pytest.raises(timber_core.errors.ConfigurationError) as err:
        autogen.create_migration(kernel, "zoo", APP, rev_id="canopy_0001")
    kernel.close()
    assert str(err.value) == (
        f"revision id 'canopy_0001' is already used by {os.path.join(taken, 'canopy_0001_initial_canopy_tables.py')}; choose "
        f"another --rev-id (e.g. <app>_<next number>) or leave it out for a random one"
    )
    assert list((tmp_path / "revisions").glob("*.py")) == []


SPECS = [
    TypeSpec("String", (20,)), TypeSpec("Text"), TypeSpec("Integer"), TypeSpec("BigInteger"), TypeSpec("Float"),
    TypeSpec("Numeric"), TypeSpec("Numeric", (7,)), TypeSpec("Numeric", (10, 2)), TypeSpec("Boolean"),
    TypeSpec("DateTime"), TypeSpec("Date"), TypeSpec("JSON"), TypeSpec("UUID"),
]


def test_the_type_samples_cover_the_model_language() -> None:
    assert {s.name for s in SPECS} == set(TYPES)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_each_type_renders_as_what_the_models_build_on_both_databases(spec: TypeSpec) -> None:
    built = _sa_type(spec)
    text_, imports = rendering.render_type(rendering.type_spec(built) or TypeSpec("none"))
    namespace: dict[str, Any] = {}
    exec("import sqlalchemy as sa\n" + "\n".join(sorted(imports)), namespace)
    rendered = eval(text_, namespace)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        assert rendered.compile(dialect=dialect) == built.compile(dialect=dialect), dialect.name


def test_a_revision_of_only_policy_changes_imports_neither_sqlalchemy_nor_op(tmp_path: Path) -> None:
    # Canopy gains the session type 'options': only its restrictive policy changes.
    with skip_startup_check():
        kernel = timber_core.initialize_timber("canopy", database_url=f"sqlite:///{tmp_path}/t.db",
                                               create_tables=False, session_types=["options"])
    canopy = kernel.apps.get("canopy")
    shutil.copytree(canopy.migrations_dir, tmp_path / "canopy", ignore=shutil.ignore_patterns("__pycache__"))
    canopy.migrations_dir = str(tmp_path / "canopy")
    runner.upgrade(kernel)
    path = autogen.create_migration(kernel, "options", "canopy", rev_id="canopy_0003")
    kernel.close()
    assert path is not None
    source = Path(path).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == [
        "from __future__ import annotations",
        "from collections.abc import Sequence",
        "from timber_core.migrations import ops as tops",
    ]
    body = source[source.index("def upgrade"):]
    assert [line.strip() for line in body.splitlines() if line.strip().startswith(("op.", "tops.", "sa."))] == [
        "tops.restrict_types('canopy', 'sessions', 'session_type', ['options', 'paper_trading', 'trading'])",
        "tops.restrict_types('canopy', 'sessions', 'session_type', ['paper_trading', 'trading'])",
    ]
