"""One error style for every ``timber`` command: a short line naming what failed and the fix.

Each command that needs the database is run, as a user runs it, against a database that
refuses (a closed loopback port), one that does not exist, a login that does not exist, a
server that never answers, and a read-only ``TIMBER_HOME``. The full traceback only with
``timber --traceback`` or ``TIMBER_DEBUG=1``.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from timber_kernel_testing import ROOT, run_timber

#: Every command that opens the database (``apps list``, ``models list`` and ``check`` never do).
DATABASE_COMMANDS: dict[str, list[str]] = {
    "migrate": ["migrate"],
    "downgrade": ["downgrade", "--app", "grove", "base"],
    "create-migration": ["create-migration", "nothing", "--app", "grove"],
    "migrations status": ["migrations", "status"],
    "migrations check": ["migrations", "check"],
    "doctor": ["doctor"],
    "vectors sync": ["vectors", "sync"],
    "vectors worker --once": ["vectors", "worker", "--once"],
    "vectors status": ["vectors", "status"],
    "vectors reindex": ["vectors", "reindex"],
    "gdpr export": ["gdpr", "export", "someone"],
    "gdpr erase --yes": ["gdpr", "erase", "someone", "--yes"],
}

#: A loopback port nothing listens on: the connection is refused at once.
REFUSED_URL = "postgresql://postgres@127.0.0.1:1/test"
REFUSED_LINE = (
    "Error: cannot connect to the database postgresql+psycopg://postgres@127.0.0.1:1/test: "
    "127.0.0.1:1 refused the connection; start PostgreSQL there or point DATABASE_URL at a running server\n"
)


def _server() -> str:
    """Return host:port of the server of TIMBER_TEST_DATABASE_URL (skip, saying why, when unset)."""
    from sqlalchemy.engine import make_url

    from tests.conftest import postgres_url_or_skip

    url = make_url(postgres_url_or_skip())
    return f"{url.host}:{url.port or 5432}"


def _run(command: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return run_timber(*extra, *DATABASE_COMMANDS[command], env=env)


@pytest.mark.parametrize("command", sorted(DATABASE_COMMANDS))
def test_a_refused_connection_is_one_line_naming_host_port_and_the_fix(command: str) -> None:
    result = _run(command, {"DATABASE_URL": REFUSED_URL})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", REFUSED_LINE)


@pytest.mark.parametrize("command", sorted(DATABASE_COMMANDS))
def test_a_missing_database_is_one_line_naming_it_and_the_fix(command: str) -> None:
    server = _server()
    url = f"postgresql://postgres@{server}/timber_no_such_database"
    result = _run(command, {"DATABASE_URL": url})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", (
        f"Error: cannot connect to the database postgresql+psycopg://postgres@{server}/timber_no_such_database: "
        f"the server at {server} has no database 'timber_no_such_database'; create it or fix the database "
        "name in DATABASE_URL\n"
    ))


@pytest.mark.parametrize("command", sorted(DATABASE_COMMANDS))
def test_a_rejected_login_is_one_line_naming_it_with_the_password_hidden(command: str) -> None:
    server = _server()
    url = f"postgresql://timber_no_such_login:secret@{server}/test"
    result = _run(command, {"DATABASE_URL": url})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", (
        f"Error: cannot connect to the database postgresql+psycopg://timber_no_such_login:***@{server}/test: "
        f"the server at {server} rejected the login 'timber_no_such_login' "
        "(role \"timber_no_such_login\" does not exist); fix the user or password in DATABASE_URL\n"
    ))


def test_the_error_documented_in_cli_md_is_the_one_printed() -> None:
    documented = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").splitlines(keepends=True)
    assert REFUSED_LINE in documented


def test_traceback_option_prints_the_traceback_before_the_error_line() -> None:
    result = _run("vectors status", {"DATABASE_URL": REFUSED_URL}, "--traceback")
    lines = result.stderr.splitlines(keepends=True)
    assert (result.returncode, result.stdout, lines[0], lines[-1]) == (
        1, "", "Traceback (most recent call last):\n", REFUSED_LINE)


def test_timber_debug_prints_the_traceback_before_the_error_line() -> None:
    result = _run("migrate", {"DATABASE_URL": REFUSED_URL, "TIMBER_DEBUG": "1"})
    lines = result.stderr.splitlines(keepends=True)
    assert (result.returncode, result.stdout, lines[0], lines[-1]) == (
        1, "", "Traceback (most recent call last):\n", REFUSED_LINE)


def test_a_server_that_never_answers_times_out_naming_host_port_and_the_setting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:  # accepts (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = run_timber("migrate", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/test",
                                            "TIMBER_CONNECT_TIMEOUT": "1"}, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", (
        f"Error: cannot connect to the database postgresql+psycopg://postgres@127.0.0.1:{port}/test: "
        f"127.0.0.1:{port} did not answer within 2 s (TIMBER_CONNECT_TIMEOUT=1, raised to libpq's minimum of 2); "
        "check that the host and port are right and reachable, or raise TIMBER_CONNECT_TIMEOUT\n"
    ))


def test_downgrade_accepts_a_relative_revision_like_minus_one(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/timber.db"}
    assert run_timber("migrate", env=env).returncode == 0
    result = run_timber("downgrade", "--app", "grove", "-1", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "downgraded app 'grove' to -1\n", "")
    status = run_timber("migrations", "status", "--json", env=env)
    assert {s["app"]: s["current"] for s in json.loads(status.stdout)} == {
        "timber": "timber_0005", "canopy": "canopy_0002", "grove": "grove_0001"}


def test_downgrade_still_refuses_an_unknown_option() -> None:
    result = run_timber("downgrade", "--app", "grove", "--bogus")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", (
        "Usage: timber downgrade [OPTIONS] REVISION\nTry 'timber downgrade --help' for help.\n\n"
        "Error: No such option: --bogus\n"
    ))


# -- a read-only TIMBER_HOME -------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(DATABASE_COMMANDS))
def test_a_read_only_timber_home_is_one_line_naming_it_and_the_fix(command: str, read_only_dir: Path) -> None:
    result = _run(command, {"TIMBER_HOME": str(read_only_dir)})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", (
        f"Error: TIMBER_HOME {read_only_dir} is read-only: point TIMBER_HOME at a writable directory "
        "or set DATABASE_URL\n"
    ))


def test_a_timber_home_that_cannot_be_created_is_one_line_naming_it_and_the_fix(read_only_dir: Path) -> None:
    home = read_only_dir / "home"
    result = run_timber("migrate", env={"TIMBER_HOME": str(home)})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", (
        f"Error: TIMBER_HOME {home} cannot be created (Read-only file system): point TIMBER_HOME at a "
        "writable directory or set DATABASE_URL\n"
    ))


def test_a_read_only_timber_home_for_the_vector_store_names_it_and_qdrant_url(
    read_only_dir: Path, scratch_postgres: str, tmp_path: Path
) -> None:
    migrated = run_timber("migrate", env={"DATABASE_URL": scratch_postgres, "TIMBER_HOME": str(tmp_path / "home")})
    assert migrated.returncode == 0, migrated.stderr
    result = run_timber("vectors", "reindex", env={"DATABASE_URL": scratch_postgres, "TIMBER_HOME": str(read_only_dir)})
    errors = [line for line in result.stderr.splitlines() if not line.startswith("timber doctor: Warning: ")]
    assert (result.returncode, result.stdout, errors) == (1, "", [
        f"Error: VectorSearchError: the embedded vector store {read_only_dir / 'vectors' / 'index.sqlite3'} cannot"
        f" open: {read_only_dir} is not writable; point TIMBER_HOME at a writable directory or set QDRANT_URL"
    ])
