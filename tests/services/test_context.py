"""The app context: a contextvar per thread and per asyncio task; the platform context is explicit."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from timber_core import app_context, platform_context
from timber_core.context import current_app
from timber_core.errors import ConfigurationError, NotFoundError, PluginError


def test_default_context_is_the_initialized_app(sqlite_kernel: Any) -> None:
    assert current_app() == "canopy"


def test_app_context_switches_for_the_block_and_restores(sqlite_kernel: Any) -> None:
    with app_context("grove"):
        assert current_app() == "grove"
        with platform_context():
            assert current_app() == "platform"
        assert current_app() == "grove"
    assert current_app() == "canopy"


def test_threads_keep_their_own_context(sqlite_kernel: Any) -> None:
    seen: dict[str, str] = {}
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        with app_context("grove"):
            seen["worker"] = current_app()
            inside.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen["main"] = current_app()
    release.set()
    t.join()
    assert seen == {"worker": "grove", "main": "canopy"}


def test_asyncio_tasks_keep_their_own_context(sqlite_kernel: Any) -> None:
    async def as_app(name: str) -> str:
        with app_context(name):
            await asyncio.sleep(0.01)
            return current_app()

    async def main() -> list[str]:
        return list(await asyncio.gather(as_app("grove"), as_app("canopy"), as_app("grove")))

    assert asyncio.run(main()) == ["grove", "canopy", "grove"]


def test_unknown_app_context_names_the_installed_apps(sqlite_kernel: Any) -> None:
    with pytest.raises(NotFoundError, match=r"no app named 'orchard' is installed \(installed: canopy, grove\)"):
        with app_context("orchard"):
            pass


def test_platform_is_not_an_app_context(sqlite_kernel: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"use timber_core.platform_context\(\)"):
        with app_context("platform"):
            pass


def test_the_kernel_is_not_an_app_context(sqlite_kernel: Any) -> None:
    with pytest.raises(ConfigurationError) as err:
        with app_context("timber"):
            pass
    assert str(err.value) == (
        "app_context('timber') is not allowed: the kernel is not an app; use "
        "timber_core.platform_context() for cross-app work"
    )


def test_disabled_app_cannot_be_entered(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import timber_core

    monkeypatch.setenv("TIMBER_DISABLE_APPS", "grove")
    timber_core.initialize_timber("canopy", database_url=f"sqlite:///{tmp_path}/t.db")
    with pytest.raises(PluginError, match=r"app 'grove' \(timber-grove\) is disabled: left out by TIMBER_DISABLE_APPS"):
        with app_context("grove"):
            pass
