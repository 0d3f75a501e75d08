"""``timber new-app NAME``: the generated app installs, migrates, checks clean and passes its own tests.

The end-to-end tests generate app ``tally`` into the test's directory, install it for real
(``pip install -e``) into a throwaway environment (tests/_throwaway_env.py, as the tutorial's
test does), and run ``timber`` and the app's untouched tests there, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests._throwaway_env import base_env, make_env, require_build_backend
from timber_core import scaffold
from timber_core.cli import cli

ROOT = Path(__file__).resolve().parents[2]
APP = "tally"

#: Every file ``timber new-app tally`` writes, relative to the app's directory.
FILES = [
    "README.md",
    "pyproject.toml",
    "src/tally/__init__.py",
    "src/tally/commands.py",
    "src/tally/migrations/versions/tally_0001_initial.py",
    "src/tally/models/tally_models.yaml",
    "src/tally/plugin.py",
    "src/tally/service.py",
    "tests/test_tally.py",
]


def _new_app(*args: str) -> Result:
    return CliRunner().invoke(cli, ["new-app", *args])


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _run(env: dict[str, str], cwd: Path, *command: str) -> str:
    """Run ``command`` in the throwaway environment; fail with its output unless it exits 0; return stdout."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    return done.stdout


def _generated_app_works(tmp_path: Path, database_url: str | None) -> None:
    """Generate, install, list, migrate, check and test app tally on ``database_url`` (None: SQLite)."""
    require_build_backend()
    result = _new_app(APP, "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    app = tmp_path / APP
    env = base_env(make_env(tmp_path / "venv"), tmp_path / ".timber", database_url)

    _run(env, tmp_path, "pip", "install", "-e", str(app))
    listed = [line.split() for line in _run(env, tmp_path, "timber", "apps", "list").splitlines()]
    assert ["tally", "0.1.0", "timber-tally", "TallySession", "tally", "tally_own_sessions", "tally", "ok"] in listed
    assert _run(env, tmp_path, "timber", "migrate").startswith("migrated ")
    _run(env, tmp_path, "timber", "migrations", "check")  # exit 0: models, revisions and database agree
    tests = ["pytest", "-q", "-p", "no:cacheprovider"] + (["--timber-database-url", database_url] if database_url else [])
    summary = _run(env, app, *tests).strip().splitlines()[-1]
    assert summary.startswith("5 passed"), summary  # none skipped: Canopy and Grove are there to be refused


def test_a_generated_app_installs_migrates_and_passes_its_tests_on_sqlite(tmp_path: Path) -> None:
    _generated_app_works(tmp_path, None)


def test_a_generated_app_installs_migrates_and_passes_its_tests_on_postgresql(
    tmp_path: Path, scratch_postgres: str
) -> None:
    _generated_app_works(tmp_path, scratch_postgres)


def test_new_app_writes_the_distribution_into_timber_name_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _new_app(APP)
    assert (result.exit_code, result.output.splitlines()[0]) == (0, f"created app 'tally' in {tmp_path / 'timber-tally'}")
    assert (sorted(p.name for p in tmp_path.iterdir()), _files(tmp_path / "timber-tally")) == (["timber-tally"], FILES)


def test_new_app_uses_the_session_type_given(tmp_path: Path) -> None:
    assert _new_app(APP, "--dir", str(tmp_path), "--session-type", "tallying").exit_code == 0
    plugin = (tmp_path / APP / "src" / APP / "plugin.py").read_text(encoding="utf-8")
    migration = (tmp_path / APP / "src" / APP / "migrations" / "versions" / "tally_0001_initial.py").read_text(encoding="utf-8")
    assert 'return ["tallying"]' in plugin
    assert "tops.restrict_types('tally', 'sessions', 'session_type', ['tallying'])" in migration


def test_new_app_refuses_a_name_the_kernel_refuses_and_writes_nothing(tmp_path: Path) -> None:
    result = _new_app("Tally-App", "--dir", str(tmp_path))
    assert (result.exit_code, result.stderr) == (1, (
        "Error: the app name 'Tally-App' must be lowercase letters, digits and underscores, "
        "starting with a letter, at most 40 characters (e.g. my_app)\n"))
    assert list(tmp_path.iterdir()) == []


def test_new_app_refuses_the_kernels_reserved_name(tmp_path: Path) -> None:
    result = _new_app("timber", "--dir", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        1, "Error: the app name 'timber' is reserved for the kernel; choose another name\n")
    assert list(tmp_path.iterdir()) == []


def test_new_app_refuses_the_name_of_an_installed_app(tmp_path: Path) -> None:
    result = _new_app("canopy", "--dir", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        1, "Error: an app named 'canopy' is already installed (timber-canopy); choose another name\n")


def test_new_app_refuses_a_bad_session_type(tmp_path: Path) -> None:
    result = _new_app(APP, "--dir", str(tmp_path), "--session-type", "Tally Time")
    assert (result.exit_code, result.stderr) == (1, (
        "Error: the session type 'Tally Time' must be lowercase letters, digits and underscores, "
        "starting with a letter, at most 50 characters\n"))
    assert list(tmp_path.iterdir()) == []


def test_new_app_refuses_an_existing_non_empty_directory_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    (tmp_path / APP).mkdir()
    (tmp_path / APP / "notes.txt").write_text("mine", encoding="utf-8")
    result = _new_app(APP, "--dir", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        1, f"Error: {tmp_path / APP} already exists and is not empty; choose another --dir, or remove it\n")
    assert (sorted(p.name for p in tmp_path.iterdir()), _files(tmp_path / APP)) == ([APP], ["notes.txt"])


def test_new_app_fills_an_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / APP).mkdir()
    assert _new_app(APP, "--dir", str(tmp_path)).exit_code == 0
    assert _files(tmp_path / APP) == FILES


def test_new_app_leaves_nothing_behind_when_it_fails_midway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake: the child that writes the migration fails after the templates are written (no real
    # failure can be caused there on demand).
    monkeypatch.setattr(scaffold, "_RUN_TIMBER", "import sys; sys.exit('Error: the disk is full')")
    result = _new_app(APP, "--dir", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        1, "Error: could not write the initial migration: `timber migrate` failed: the disk is full\n")
    assert list(tmp_path.iterdir()) == []


def test_the_wheel_of_timber_core_ships_every_template(tmp_path: Path) -> None:
    require_build_backend()
    source = tmp_path / "timber-core"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("timber_core-*.whl")
    templates = source / "src" / "timber_core" / "scaffold_templates"
    wanted = sorted(f"timber_core/scaffold_templates/{p.relative_to(templates)}" for p in templates.rglob("*.tmpl"))
    shipped = sorted(n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("timber_core/scaffold_templates/"))
    assert (len(wanted), shipped) == (8, wanted)
