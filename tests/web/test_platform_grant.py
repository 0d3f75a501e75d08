"""The platform's server refuses to start on PostgreSQL when its login cannot take ``timber_platform``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import timber_core
from timber_core.errors import ConfigurationError
from timber_core.web.platform import check_platform_grant


@pytest.fixture
def app_only_login(scratch_postgres: str) -> Iterator[tuple[str, str]]:
    """A migrated scratch database and a NOINHERIT login granted the apps' roles but not timber_platform."""
    timber_core.initialize_timber(app_name=None, database_url=scratch_postgres, create_tables=True)
    timber_core.shutdown()
    role = f"timber_t_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(scratch_postgres).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOINHERIT'))
        conn.execute(text(f'GRANT timber_canopy, timber_grove TO "{role}"'))
    try:
        yield make_url(scratch_postgres).set(username=role).render_as_string(hide_password=False), role
    finally:
        timber_core.shutdown()
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_a_login_without_timber_platform_cannot_serve_the_platform(app_only_login: tuple[str, str]) -> None:
    url, role = app_only_login
    kernel = timber_core.initialize_timber(app_name=None, database_url=url)
    with pytest.raises(ConfigurationError) as refused:
        check_platform_grant(kernel)
    assert str(refused.value) == (
        f"the platform server cannot act as the platform: {role!r} cannot take the role timber_platform "
        f"(ConfigurationError); run `GRANT timber_platform TO {role};` or serve the platform with a login that has it")


def test_a_login_with_timber_platform_may_serve_the_platform(scratch_postgres: str) -> None:
    kernel = timber_core.initialize_timber(app_name=None, database_url=scratch_postgres, create_tables=True)
    try:
        assert check_platform_grant(kernel) is None
    finally:
        timber_core.shutdown()
