"""Password hashes: argon2, rehashed on login when the parameters change, unreadable from any app's context."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from timber_core import app_context, auth, platform_context
from timber_core.errors import IsolationError, ValidationError

from .conftest import PASSWORD, Apps, run


def _stored_hash(apps: Apps) -> str:
    with platform_context(), apps.kernel.db.connection() as conn:
        return str(conn.execute(text("SELECT password_hash FROM user_credentials")).scalar_one())


def test_the_password_is_stored_as_an_argon2id_hash(apps: Apps) -> None:
    run(apps.register("ann@example.com", "ann"))
    stored = _stored_hash(apps)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_an_apps_raw_sql_cannot_read_the_hashes(apps: Apps) -> None:
    run(apps.register("ann@example.com", "ann"))
    with pytest.raises(Exception) as err:
        with app_context("canopy"), apps.kernel.db.connection() as conn:
            conn.execute(text("SELECT password_hash FROM user_credentials")).all()
    if apps.kernel.db.dialect == "sqlite":
        assert isinstance(err.value, IsolationError)
        assert "may not read table 'user_credentials'" in str(err.value)
    else:
        assert "permission denied for table user_credentials" in str(err.value)


def test_a_hash_of_older_parameters_is_replaced_at_login(sqlite_apps: Apps) -> None:
    run(sqlite_apps.register("ann@example.com", "ann"))
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with platform_context(), sqlite_apps.kernel.db.connection() as conn:
        conn.execute(text("UPDATE user_credentials SET password_hash = :h"), {"h": weak})
    assert run(sqlite_apps.login("ann@example.com")).status_code == 200
    renewed = _stored_hash(sqlite_apps)
    assert renewed != weak and not PasswordHasher().check_needs_rehash(renewed)


def test_a_password_under_8_characters_is_422_and_creates_no_user(sqlite_apps: Apps) -> None:
    from timber_core.services.persistence import user_service

    response = run(sqlite_apps.register_with_password("ann@example.com", "ann", "short"))
    assert response.status_code == 422
    assert response.json() == {"error": {"type": "ValidationError",
                                         "message": "body.password: String should have at least 8 characters"}}
    with app_context("canopy"):
        assert user_service.get_user_by_email("ann@example.com") is None


def test_the_auth_module_refuses_a_short_password_too() -> None:
    with pytest.raises(ValidationError) as err:
        auth.hash_password("short")
    assert str(err.value) == "password: must be at least 8 characters"
