"""``timber_core.testing``, the pytest plugin for app authors, run on test files of its own (pytester).

Each test writes a small test module using the plugin, runs pytest on it in a subprocess (an
in-process run would drop the modules it imported, SQLAlchemy and YAML among them) and
checks the outcome: on SQLite, and on PostgreSQL through ``--timber-database-url``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import postgres_url_or_skip

pytest_plugins = ["pytester"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_args(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The command-line arguments choosing the database of the inner run (none: SQLite)."""
    args = [] if request.param == "sqlite" else ["--timber-database-url", postgres_url_or_skip()]
    monkeypatch.delenv("TIMBER_TEST_DATABASE_URL", raising=False)
    return args


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_app=source)
    # Without hypothesis's plugin: its late import in the terminal summary trips CPython 3.11.7's
    # "AST constructor recursion depth mismatch" (gh-106905), an error unrelated to Timber.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


# -- the sandbox and timber_home -----------------------------------------------------------------


def test_every_test_runs_with_timber_home_in_its_tmp_path_and_the_hub_offline(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import os, pathlib

def test_sandbox(tmp_path):
    assert os.environ["TIMBER_HOME"] == str(tmp_path / ".timber")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert (pathlib.Path(os.environ["TIMBER_EMBEDDING_MODEL_PATH"]) / "model.onnx").is_file()
""")
    result.assert_outcomes(passed=1)


def test_timber_home_is_the_tmp_timber_home_set_in_the_environment(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import os

def test_home(timber_home, tmp_path):
    assert timber_home == tmp_path / ".timber"
    assert os.environ["TIMBER_HOME"] == str(timber_home)
""")
    result.assert_outcomes(passed=1)


def test_a_kernel_without_a_database_url_writes_under_timber_home_only(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import timber_core

def test_embedded(timber_home):
    kernel = timber_core.initialize_timber("grove")
    try:
        assert kernel.db.engine.url.database == str(timber_home / "timber.db")
    finally:
        timber_core.shutdown()
""")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".timber").exists()


# -- timber_database_url -----------------------------------------------------------------------------


def test_timber_database_url_is_a_sqlite_file_in_timber_home_by_default(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIMBER_TEST_DATABASE_URL", raising=False)
    result = run(pytester, """
def test_url(timber_database_url, timber_home):
    assert timber_database_url == f"sqlite:///{timber_home}/test.db"
""")
    result.assert_outcomes(passed=1)


def _database_exists(server: str, name: str) -> bool:
    engine = create_engine(server.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}).scalar() == 1
    finally:
        engine.dispose()


SCRATCH = """
import pathlib
from sqlalchemy import create_engine, text

def test_scratch(timber_database_url):
    engine = create_engine(timber_database_url)
    with engine.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar()
        assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar() == 0
    engine.dispose()
    assert name.startswith("timber_t_")
    (pathlib.Path(__file__).parent / "database.txt").write_text(name)
"""


def test_timber_database_url_option_gives_a_scratch_postgres_database_dropped_after_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = postgres_url_or_skip()
    monkeypatch.delenv("TIMBER_TEST_DATABASE_URL", raising=False)
    result = run(pytester, SCRATCH, "--timber-database-url", server)
    result.assert_outcomes(passed=1)
    assert not _database_exists(server, (pytester.path / "database.txt").read_text())


def test_timber_test_database_url_in_the_environment_is_the_default_of_the_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = postgres_url_or_skip()
    monkeypatch.setenv("TIMBER_TEST_DATABASE_URL", server)
    result = run(pytester, SCRATCH)
    result.assert_outcomes(passed=1)
    assert not _database_exists(server, (pytester.path / "database.txt").read_text())


def test_an_unreachable_postgres_server_fails_the_test_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIMBER_TEST_DATABASE_URL", raising=False)
    result = run(pytester, "def test_url(timber_database_url):\n    pass\n",
                 "--timber-database-url", "postgresql://nobody@127.0.0.1:1/none")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot create a scratch database on postgresql+psycopg://nobody@127.0.0.1:1/none "
                                 "(--timber-database-url / TIMBER_TEST_DATABASE_URL): *"])


# -- timber_kernel_factory and timber_kernel ---------------------------------------------------------


def test_timber_kernel_factory_initializes_the_app_on_the_tests_database_then_shuts_down(
    pytester: pytest.Pytester, database_args: list[str]
) -> None:
    result = run(pytester, """
import pytest
import timber_core
from timber_core.errors import NotInitializedError

def test_a_factory(timber_kernel_factory, timber_database_url):
    kernel = timber_kernel_factory("grove", echo=True)
    assert (kernel.app_name, timber_core.get_kernel() is kernel) == ("grove", True)
    assert kernel.db.engine.url.render_as_string(hide_password=False).split("/")[-1] == timber_database_url.split("/")[-1]
    assert kernel.db.engine.echo is True
    assert "users" in kernel.db.engine.dialect.get_table_names(kernel.db.engine.connect())

def test_b_nothing_is_left_after_the_factorys_test():
    with pytest.raises(NotInitializedError):
        timber_core.get_kernel()
""", *database_args)
    result.assert_outcomes(passed=2)


def test_timber_kernel_uses_the_app_of_the_closest_timber_app_marker(
    pytester: pytest.Pytester, database_args: list[str]
) -> None:
    result = run(pytester, """
import pytest

pytestmark = pytest.mark.timber_app("grove")

def test_module(timber_kernel):
    assert timber_kernel.app_name == "grove"

@pytest.mark.timber_app("canopy")
class TestClass:
    def test_class(self, timber_kernel):
        assert timber_kernel.app_name == "canopy"

    @pytest.mark.timber_app("grove")
    def test_function(self, timber_kernel):
        assert timber_kernel.app_name == "grove"
""", *database_args)
    result.assert_outcomes(passed=3)


def test_timber_kernel_uses_the_timber_app_ini_option_without_a_marker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntimber_app = canopy\n")
    result = run(pytester, """
def test_ini(timber_kernel):
    assert timber_kernel.app_name == "canopy"
""")
    result.assert_outcomes(passed=1)


def test_timber_kernel_without_an_app_is_an_error_naming_both_ways(pytester: pytest.Pytester) -> None:
    result = run(pytester, "def test_no_app(timber_kernel):\n    pass\n")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        '*the timber_kernel fixture needs an app: mark the test, class or module with '
        '@pytest.mark.timber_app("<app>"), or set timber_app = <app> in the pytest ini options'
    ])


def test_the_timber_app_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import pytest

@pytest.mark.timber_app("grove")
def test_marked():
    pass
""", "--strict-markers")
    result.assert_outcomes(passed=1)


# -- make_user -----------------------------------------------------------------------------------------


def test_make_user_creates_users_with_unique_defaults_or_the_given_names(
    pytester: pytest.Pytester, database_args: list[str]
) -> None:
    result = run(pytester, """
import pytest
from timber_core.services.persistence import user_service

pytestmark = pytest.mark.timber_app("grove")

def test_users(timber_kernel, make_user):
    first, second = make_user(), make_user()
    assert first != second
    ada = make_user("ada@example.com", "ada")
    row = user_service.get_user(ada)
    assert (row.email, row.username) == ("ada@example.com", "ada")
    assert user_service.get_user(first).email == user_service.get_user(first).username + "@example.com"
""", *database_args)
    result.assert_outcomes(passed=1)


# -- assert_refused_across_apps ---------------------------------------------------------------------------


def test_assert_refused_across_apps_passes_when_every_other_app_is_refused(
    pytester: pytest.Pytester, database_args: list[str]
) -> None:
    result = run(pytester, """
import pytest
import timber_core
from timber_core.testing import assert_refused_across_apps

pytestmark = pytest.mark.timber_app("canopy")

def test_private_model(timber_kernel):
    assert_refused_across_apps(timber_core.get_model, "Order", owner="canopy")
""", *database_args)
    result.assert_outcomes(passed=1)


def test_assert_refused_across_apps_accepts_the_databases_refusal_of_raw_sql(
    pytester: pytest.Pytester, database_args: list[str]
) -> None:
    # SQLite's wall raises IsolationError; PostgreSQL refuses with SQLSTATE 42501 (ProgrammingError).
    result = run(pytester, """
import pytest
from sqlalchemy import text
from timber_core.testing import assert_refused_across_apps

pytestmark = pytest.mark.timber_app("canopy")

def count_orders(kernel):
    with kernel.db.connection() as conn:
        return conn.execute(text("SELECT count(*) FROM orders")).scalar()

def test_raw_sql(timber_kernel):
    assert_refused_across_apps(count_orders, timber_kernel, owner="canopy")
""", *database_args)
    result.assert_outcomes(passed=1)


def test_assert_refused_across_apps_fails_naming_the_app_that_was_not_refused(
    pytester: pytest.Pytester, database_args: list[str]
) -> None:
    result = run(pytester, """
import pytest
from timber_core.testing import assert_refused_across_apps

pytestmark = pytest.mark.timber_app("canopy")

def answer():
    return 42

def test_shared(timber_kernel):
    assert_refused_across_apps(answer, owner="canopy")
""", *database_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*answer was not refused in app 'grove' (owner 'canopy'): it returned 42"])


def test_assert_refused_across_apps_fails_on_an_error_other_than_a_refusal(
    pytester: pytest.Pytester, database_args: list[str]
) -> None:
    result = run(pytester, """
import pytest
from timber_core.testing import assert_refused_across_apps

pytestmark = pytest.mark.timber_app("canopy")

def broken():
    raise ValueError("not an isolation error")

def test_broken(timber_kernel):
    assert_refused_across_apps(broken, owner="canopy")
""", *database_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*broken in app 'grove' (owner 'canopy') raised ValueError, not IsolationError: not an isolation error"])


def test_assert_refused_across_apps_fails_when_no_other_app_is_loaded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIMBER_TEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("TIMBER_APPS", "canopy")
    result = run(pytester, """
import pytest
import timber_core
from timber_core.testing import assert_refused_across_apps

pytestmark = pytest.mark.timber_app("canopy")

def test_alone(timber_kernel):
    assert_refused_across_apps(timber_core.get_model, "Order", owner="canopy")
""")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert_refused_across_apps(get_model): no loaded app other than 'canopy' to try it "
                                 "from; install or enable a second app"])
