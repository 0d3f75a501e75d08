"""``initialize_timber(app_name=None)``: a kernel with no default app context (what the migration commands use)."""

from __future__ import annotations

from pathlib import Path

import pytest

import timber_core
from timber_core.errors import ConfigurationError, NotFoundError, NotInitializedError
from timber_core.kernel import Kernel

pytestmark = pytest.mark.usefixtures("fresh_kernel")

NO_CONTEXT = ("no app context: the kernel was initialized with no default app (initialize_timber(app_name=None)); "
              "run the code inside timber_core.app_context('<app>') or timber_core.platform_context()")


def _init(tmp_path: Path, **kwargs: object) -> Kernel:
    return timber_core.initialize_timber(database_url=f"sqlite:///{tmp_path / 'timber.db'}", **kwargs)


def test_a_kernel_without_app_loads_every_app_and_is_published(tmp_path: Path) -> None:
    kernel = _init(tmp_path)
    assert (kernel.app_name, [a.name for a in kernel.apps.loaded()]) == (None, ["timber", "canopy", "grove"])
    assert timber_core.get_kernel() is kernel


def test_a_kernel_without_app_refuses_models_outside_a_context_naming_the_fix(tmp_path: Path) -> None:
    _init(tmp_path)
    with pytest.raises(NotInitializedError) as info:
        timber_core.get_model("Order")
    assert str(info.value) == NO_CONTEXT


def test_a_kernel_without_app_serves_code_inside_an_app_context(tmp_path: Path) -> None:
    _init(tmp_path)
    with timber_core.app_context("canopy"):
        assert timber_core.get_model("Order").__tablename__ == "orders"


def test_a_kernel_without_app_still_validates_app_context_names(tmp_path: Path) -> None:
    _init(tmp_path)
    with pytest.raises(NotFoundError, match=r"^no app named 'ledger' is installed"):
        with timber_core.app_context("ledger"):
            pass


def test_a_kernel_without_app_serves_platform_context(tmp_path: Path) -> None:
    from timber_core.services.persistence import user_service

    _init(tmp_path)
    with timber_core.platform_context():
        user = user_service.create_user("ada@example.com", "ada")
        assert user_service.get_user(user).email == "ada@example.com"


def test_a_kernel_without_app_refuses_model_config_dirs_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        _init(tmp_path, model_config_dirs=[str(tmp_path)])
    assert str(info.value) == ("initialize_timber(model_config_dirs=..., session_types=...) defines or extends an "
                               "app: name it with app_name")


def test_an_app_kernel_after_a_kernel_without_app_runs_as_that_app_again(tmp_path: Path) -> None:
    _init(tmp_path)
    kernel = timber_core.initialize_timber("grove", database_url=f"sqlite:///{tmp_path / 'timber.db'}")
    from timber_core.context import current_app

    assert (kernel.app_name, current_app()) == ("grove", "grove")
