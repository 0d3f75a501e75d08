"""The loaded models of unchanged model files, kept in TIMBER_HOME (timber_core._schema_cache)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import timber_core
from timber_core.kernel import Kernel
from timber_kernel_testing import GOOD_YAML

pytestmark = pytest.mark.usefixtures("fresh_kernel")


def _start(tmp_path: Path, library: Path) -> Kernel:
    timber_core.shutdown()
    return timber_core.initialize_timber("library", model_config_dirs=[str(library)],
                                         database_url=f"sqlite:///{tmp_path / 'timber.db'}")


def _pickles(home: Path) -> list[Path]:
    return sorted((home / "cache").glob("schema-*.pickle"))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A copy of the library app's model files, which a test may change."""
    return Path(shutil.copytree(GOOD_YAML / "library", tmp_path / "library"))


@pytest.fixture
def home(timber_home: Path) -> Path:
    timber_home.mkdir()
    return timber_home


def test_a_clean_start_keeps_the_loaded_models_in_timber_home(tmp_path: Path, library: Path, home: Path) -> None:
    _start(tmp_path, library)
    assert [(p.name.startswith("schema-"), p.stat().st_mode & 0o777) for p in _pickles(home)] == [(True, 0o600)]


def test_a_start_on_unchanged_files_loads_the_same_models(tmp_path: Path, library: Path, home: Path) -> None:
    first = _start(tmp_path, library).schema.models
    second = _start(tmp_path, library).schema.models
    assert (second == first, len(_pickles(home))) == (True, 1)


def test_a_changed_model_file_is_read_again(tmp_path: Path, library: Path, home: Path) -> None:
    _start(tmp_path, library)
    authors = library / "z_authors.yaml"
    authors.write_text(authors.read_text().replace("description: A writer", "description: A novelist", 1))
    kernel = _start(tmp_path, library)
    assert (kernel.spec("Author").description, len(_pickles(home))) == ("A novelist", 2)


def test_an_unreadable_cache_is_ignored_and_the_yaml_read(tmp_path: Path, library: Path, home: Path) -> None:
    _start(tmp_path, library)
    _pickles(home)[0].write_bytes(b"not a pickle")
    kernel = _start(tmp_path, library)
    assert kernel.spec("Author").description == "A writer"


def test_no_cache_is_written_without_a_timber_home(tmp_path: Path, library: Path, timber_home: Path) -> None:
    _start(tmp_path, library)
    assert timber_home.exists() is False


def test_processes_starting_at_once_on_one_timber_home_all_start_and_leave_one_cache(
    tmp_path: Path, library: Path, home: Path
) -> None:
    code = ("import sys, timber_core; k = timber_core.initialize_timber('library', model_config_dirs=[sys.argv[1]], "
            "database_url=sys.argv[2]); print(sorted(k.models))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(library), f"sqlite:///{tmp_path / f'db{i}.sqlite'}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
             for i in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert ([p.returncode for p in procs], len({o for o, _ in outs}), len(_pickles(home)),
            sorted(p.name for p in (home / "cache").iterdir() if p.name.endswith(".tmp"))) == ([0, 0, 0, 0], 1, 1, [])
