"""``timber_core.shutdown()``: the public reset of every process-level state (docs/testing.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

import timber_core
from timber_core.config import TimberConfig
from timber_core.context import current_app
from timber_core.errors import NotInitializedError
from timber_core.services.persistence import user_service


def test_shutdown_forgets_the_kernel(tmp_path: Path) -> None:
    timber_core.initialize_timber("grove", database_url=f"sqlite:///{tmp_path}/a.db")
    timber_core.shutdown()
    with pytest.raises(NotInitializedError) as info:
        timber_core.get_kernel()
    assert str(info.value) == ("Timber is not initialized: call timber_core.initialize_timber(app_name=...) "
                               "before using models or services")


def test_shutdown_forgets_the_default_app_context(tmp_path: Path) -> None:
    timber_core.initialize_timber("grove", database_url=f"sqlite:///{tmp_path}/a.db")
    timber_core.shutdown()
    with pytest.raises(NotInitializedError) as info:
        current_app()
    assert str(info.value).startswith("no app context: call timber_core.initialize_timber(app_name=...) first")


def test_shutdown_forgets_the_validator_of_app_names(tmp_path: Path) -> None:
    timber_core.initialize_timber("grove", database_url=f"sqlite:///{tmp_path}/a.db")
    timber_core.shutdown()
    with timber_core.app_context("an-app-of-the-next-kernel") as name:  # the old kernel's apps no longer judge it
        assert name == "an-app-of-the-next-kernel"


def test_shutdown_leaves_the_shared_services_refusing_until_the_next_kernel(tmp_path: Path) -> None:
    timber_core.initialize_timber("grove", database_url=f"sqlite:///{tmp_path}/a.db")
    user_service.create_user("ada@example.com", "ada")
    timber_core.shutdown()
    with pytest.raises(NotInitializedError):
        user_service.create_user("bob@example.com", "bob")
    timber_core.initialize_timber("grove", database_url=f"sqlite:///{tmp_path}/b.db")
    try:
        assert user_service.get_user_by_email("ada@example.com") is None  # the new kernel's database
    finally:
        timber_core.shutdown()


def test_shutdown_makes_the_configuration_read_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    assert TimberConfig.load().DB_POOL_SIZE == 3
    monkeypatch.setenv("DB_POOL_SIZE", "4")
    assert TimberConfig.load().DB_POOL_SIZE == 3  # read once, then cached
    timber_core.shutdown()
    assert TimberConfig.load().DB_POOL_SIZE == 4


def test_shutdown_makes_the_cli_discover_the_apps_again(install_fixture: Callable[[str], Path]) -> None:
    from timber_core.cli import cli

    assert "portfolio" not in CliRunner().invoke(cli, ["apps", "list"]).output
    install_fixture("portfolio")
    assert "portfolio" not in CliRunner().invoke(cli, ["apps", "list"]).output  # discovered once per process
    timber_core.shutdown()
    assert "portfolio" in CliRunner().invoke(cli, ["apps", "list"]).output


def test_shutdown_closes_the_kernels_connections(scratch_postgres: str) -> None:
    kernel = timber_core.initialize_timber("grove", database_url=scratch_postgres, create_tables=True)
    name = kernel.db.engine.url.database
    with kernel.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    admin = create_engine(scratch_postgres.replace(f"/{name}", "/postgres"))
    count = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :n")
    try:
        with admin.connect() as conn:
            assert conn.execute(count, {"n": name}).scalar() > 0
        timber_core.shutdown()
        # A server backend leaves pg_stat_activity a moment after its client hangs up: poll, bounded.
        deadline, left = time.monotonic() + 10, None
        while left != 0 and time.monotonic() < deadline:
            with admin.connect() as conn:
                left = conn.execute(count, {"n": name}).scalar()
            if left:
                time.sleep(0.05)
        assert left == 0
    finally:
        admin.dispose()


def test_shutdown_without_a_kernel_does_nothing() -> None:
    timber_core.shutdown()
    timber_core.shutdown()
    with pytest.raises(NotInitializedError):
        timber_core.get_kernel()
