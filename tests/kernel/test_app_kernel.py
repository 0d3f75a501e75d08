"""``timber_core.cli.app_kernel``: how an app's own ``timber`` command gets a kernel in its app's context."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import timber_core
from timber_core.cli import app_kernel


def test_app_kernel_runs_the_block_as_that_app_on_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_kernel: None
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TIMBER_APP", "canopy")
    with app_kernel("grove") as kernel:
        seen = (kernel.app_name, kernel.db.display_url, timber_core.get_model("ResearchSession").__tablename__)
    assert seen == ("grove", url, "research_sessions")


def test_app_kernel_of_an_app_that_is_not_installed_fails_the_command_with_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_kernel: None
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")

    @click.command()
    def orphan() -> None:
        with app_kernel("nosuchapp"):
            pass

    result = CliRunner().invoke(orphan, [])
    assert (result.exit_code, result.output) == (1, (
        "Error: no app named 'nosuchapp' is installed (installed: canopy, grove); install its distribution, "
        "or check TIMBER_APPS / TIMBER_DISABLE_APPS\n"))
