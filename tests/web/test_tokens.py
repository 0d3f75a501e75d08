"""Access tokens: key rotation, expiry, unknown keys; where the key comes from on each database."""

from __future__ import annotations

import datetime as dt
import os
import stat
from typing import Any

import jwt
import pytest

import timber_core
from timber_core import auth
from timber_core.config import TimberConfig
from timber_core.errors import ConfigurationError

from .conftest import KEY_A, KEY_B, Apps, run


async def _sessions(apps: Apps, token: str) -> Any:
    async with apps.client("grove", token) as c:
        return await c.get("/sessions")


def _rekey(monkeypatch: pytest.MonkeyPatch, apps: Apps, keys: str) -> None:
    """Restart the apps with new TIMBER_SECRET_KEYS, as a deployment rotating its keys does."""
    monkeypatch.setenv("TIMBER_SECRET_KEYS", keys)
    apps.restart()


def _user_id(apps: Apps, token: str) -> str:
    return auth.verify_token(auth.signing_keys(apps.kernel), token)


def test_a_token_signed_by_the_old_key_verifies_after_rotation(sqlite_apps: Apps, monkeypatch: pytest.MonkeyPatch) -> None:
    _rekey(monkeypatch, sqlite_apps, KEY_A)
    old = run(sqlite_apps.token_for("ann@example.com", "ann"))
    _rekey(monkeypatch, sqlite_apps, f"{KEY_B},{KEY_A}")
    assert run(_sessions(sqlite_apps, old)).status_code == 200


def test_after_rotation_the_new_key_signs(sqlite_apps: Apps, monkeypatch: pytest.MonkeyPatch) -> None:
    _rekey(monkeypatch, sqlite_apps, f"{KEY_B},{KEY_A}")
    run(sqlite_apps.register("ann@example.com", "ann"))
    new = run(sqlite_apps.login("ann@example.com")).json()["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == auth.Keys((KEY_B,)).signing_kid
    _rekey(monkeypatch, sqlite_apps, KEY_B)  # the old key retired: the new token still verifies
    assert run(_sessions(sqlite_apps, new)).status_code == 200


def test_a_token_of_a_retired_key_is_401(sqlite_apps: Apps, monkeypatch: pytest.MonkeyPatch) -> None:
    _rekey(monkeypatch, sqlite_apps, KEY_A)
    old = run(sqlite_apps.token_for("ann@example.com", "ann"))
    _rekey(monkeypatch, sqlite_apps, KEY_B)
    response = run(_sessions(sqlite_apps, old))
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "AuthenticationError", "message": (
        "access token signed with an unknown key: log in again (POST /auth/token)")}}


def test_an_expired_token_is_401(sqlite_apps: Apps) -> None:
    run(sqlite_apps.register("ann@example.com", "ann"))
    uid = _user_id(sqlite_apps, run(sqlite_apps.login("ann@example.com")).json()["access_token"])
    keys = auth.signing_keys(sqlite_apps.kernel)
    expired = auth.issue_token(keys, uid, 60, now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))
    response = run(_sessions(sqlite_apps, expired))
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "AuthenticationError",
                                         "message": "access token expired: log in again (POST /auth/token)"}}


def test_a_token_lives_the_configured_lifetime(sqlite_apps: Apps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_TOKEN_LIFETIME", "120")  # read at the restart below
    _rekey(monkeypatch, sqlite_apps, KEY_A)
    token = run(sqlite_apps.token_for("ann@example.com", "ann"))
    claims = jwt.decode(token, KEY_A, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120


def test_without_keys_sqlite_generates_one_file_readable_by_the_owner_only(sqlite_apps: Apps) -> None:
    keys = auth.signing_keys(sqlite_apps.kernel)
    path = os.path.join(sqlite_apps.kernel.config.TIMBER_HOME, auth.KEY_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.signing_keys(sqlite_apps.kernel).signing == keys.signing  # read back, not made again
    with open(path) as f:
        assert f.read().strip() == keys.signing


def test_without_keys_postgresql_refuses_naming_the_setting(scratch_postgres: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMBER_SECRET_KEYS", raising=False)
    kernel = timber_core.initialize_timber(app_name=None, database_url=scratch_postgres, create_tables=True)
    try:
        with pytest.raises(ConfigurationError) as err:
            auth.signing_keys(kernel)
    finally:
        timber_core.shutdown()
    assert str(err.value).startswith("TIMBER_SECRET_KEYS is not set: on PostgreSQL every process")


def test_a_short_key_is_refused_naming_the_variable_not_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_SECRET_KEYS", f"{KEY_A},short")
    with pytest.raises(ConfigurationError) as err:
        TimberConfig()
    assert str(err.value) == (
        "environment variable TIMBER_SECRET_KEYS is malformed: key number 2 is shorter than "
        "32 characters; make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'")


def test_processes_starting_together_on_one_home_all_get_the_same_key(tmp_path: Any) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    home = tmp_path / "home"
    with ProcessPoolExecutor(max_workers=6, mp_context=multiprocessing.get_context("fork")) as pool:
        keys = list(pool.map(auth.home_key, [Path(home)] * 24))
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert os.listdir(home) == [auth.KEY_FILE]  # no temporary file left behind


def test_the_keys_are_hidden_from_the_configs_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_SECRET_KEYS", KEY_A)
    shown = repr(TimberConfig())
    assert "SECRET_KEYS='<hidden>'" in shown and KEY_A not in shown


def test_an_app_on_postgresql_without_keys_refuses_to_start(scratch_postgres: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from timber_core.web import create_app

    monkeypatch.delenv("TIMBER_SECRET_KEYS", raising=False)
    app = create_app("canopy", database_url=scratch_postgres, create_tables=True)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass
    try:
        with pytest.raises(ConfigurationError) as err:
            run(start())
    finally:
        timber_core.shutdown()
    assert str(err.value).startswith("TIMBER_SECRET_KEYS is not set")
