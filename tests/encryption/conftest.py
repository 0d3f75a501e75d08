"""Fixtures for field encryption: the ``vault`` fixture app installed, keys in the environment, both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import timber_core
from timber_core.config import TimberConfig
from timber_core.encryption import generate_key
from tests._databases import database_url

PLUGINS = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"
#: Two fixed keys and a blind-index secret, so a test can say which key wrote a row.
OLD_KEY = generate_key()
NEW_KEY = generate_key()
BLIND_SECRET = "b" * 40


@pytest.fixture(autouse=True)
def vault_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install the ``vault`` fixture app (two encrypted columns) and turn encryption on with OLD_KEY."""
    monkeypatch.syspath_prepend(str(PLUGINS / "vault"))
    for name in ("DATABASE_URL", "TIMBER_ENCRYPTION_KEY_FILE", "TIMBER_APP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENABLE_ENCRYPTION", "true")
    monkeypatch.setenv("TIMBER_ENCRYPTION_KEYS", OLD_KEY)
    monkeypatch.setenv("TIMBER_BLIND_INDEX_KEY", BLIND_SECRET)
    timber_core.shutdown()
    yield
    timber_core.shutdown()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a SQLite file, or a scratch PostgreSQL database."""
    return database_url(request.param, request, tmp_path)


@pytest.fixture
def start(url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``start(keys=None)``: (re)initialize Timber as ``vault`` on ``url``, with TIMBER_ENCRYPTION_KEYS=keys if given."""

    def make(keys: str | None = None) -> Any:
        if keys is not None:
            monkeypatch.setenv("TIMBER_ENCRYPTION_KEYS", keys)
        TimberConfig.clear_cache()
        return timber_core.initialize_timber("vault", database_url=url, create_tables=True)

    return make
