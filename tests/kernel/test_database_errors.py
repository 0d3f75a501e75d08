"""Library users get the CLI's short errors too: a database that cannot be reached is one TimberError."""

from __future__ import annotations

from pathlib import Path

import pytest

import timber_core
from timber_core.errors import ConfigurationError, DatabaseUnavailableError


def test_initialize_timber_on_a_refused_server_raises_database_unavailable(fresh_kernel: None) -> None:
    with pytest.raises(DatabaseUnavailableError) as err:
        timber_core.initialize_timber("grove", database_url="postgresql://postgres:secret@127.0.0.1:1/test")
    assert (str(err.value), err.value.url) == (
        "cannot connect to the database postgresql+psycopg://postgres:***@127.0.0.1:1/test: 127.0.0.1:1 refused "
        "the connection; start PostgreSQL there or point DATABASE_URL at a running server",
        "postgresql+psycopg://postgres:***@127.0.0.1:1/test",
    )


def test_an_sqlite_file_that_cannot_be_opened_is_named(tmp_path: Path, fresh_kernel: None) -> None:
    path = tmp_path / "no" / "such" / "dir" / "timber.db"
    with pytest.raises(DatabaseUnavailableError) as err:
        timber_core.initialize_timber("grove", database_url=f"sqlite:///{path}")
    assert str(err.value) == (
        f"cannot open the SQLite database {path}: unable to open database file; check the path in DATABASE_URL")


def test_initialize_timber_on_a_read_only_timber_home_names_it(
    read_only_dir: Path, monkeypatch: pytest.MonkeyPatch, fresh_kernel: None
) -> None:
    monkeypatch.setenv("TIMBER_HOME", str(read_only_dir))
    with pytest.raises(ConfigurationError) as err:
        timber_core.initialize_timber("grove")
    assert str(err.value) == (
        f"TIMBER_HOME {read_only_dir} is read-only: point TIMBER_HOME at a writable directory or set DATABASE_URL")
