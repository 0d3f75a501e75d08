"""``timber.common``: the design document's names are the kernel's objects (docs/design-samples.md)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import timber_core
import timber_core.services.base
import timber_core.services.persistence
import timber_core.services.vector
from timber_core.config import TimberConfig as KernelConfig
from timber_core.errors import ConfigurationError


def test_common_names_are_the_kernels_objects() -> None:
    import timber.common
    from timber.common.models.base import db_manager
    from timber.common.services import persistence, vector

    assert (timber.common.get_model, timber.common.app_context, timber.common.platform_context) == (
        timber_core.get_model, timber_core.app_context, timber_core.platform_context)
    assert (persistence.session_service, persistence.notification_service, persistence.tracker_service) == (
        timber_core.services.persistence.session_service, timber_core.services.persistence.notification_service,
        timber_core.services.persistence.tracker_service)
    assert vector.vector_service is timber_core.services.vector.vector_service
    assert db_manager is timber_core.models.base.db_manager


def test_common_base_service_and_config_subclass_the_kernels() -> None:
    from timber.common.services.base import BaseService
    from timber.common.utils.config import TimberConfig

    assert issubclass(BaseService, timber_core.services.base.BaseService)
    assert issubclass(TimberConfig, KernelConfig)
    assert TimberConfig.settings() == KernelConfig.settings()


def test_config_class_attribute_reads_the_settings_value_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from timber.common.utils.config import TimberConfig

    class Config(TimberConfig):
        APP_NAME = "canopy"

    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    assert (Config.DATABASE_URL, Config.DB_POOL_SIZE, Config.APP_NAME, Config.MODEL_DIRS) == (
        "sqlite:///x.db", 3, "canopy", [])
    assert Config.load().DATABASE_URL == "sqlite:///x.db"


def test_initialize_with_config_class_takes_app_dirs_and_database_from_it(tmp_path: Path) -> None:
    from timber.common import initialize_timber
    from timber.common.utils.config import TimberConfig

    (tmp_path / "models").mkdir()

    class Config(TimberConfig):
        APP_NAME = "canopy"
        MODEL_DIRS = [str(tmp_path / "models")]
        DATABASE_URL = f"sqlite:///{tmp_path}/from-config.db"  # a plain value overrides the setting

    kernel = initialize_timber(config=Config)
    try:
        assert (kernel.app_name, kernel.db.engine.url.database, type(kernel.config)) == (
            "canopy", f"{tmp_path}/from-config.db", Config)
    finally:
        timber_core.shutdown()


def test_initialize_with_config_refuses_an_app_name_that_disagrees(tmp_path: Path) -> None:
    from timber.common import initialize_timber
    from timber.common.utils.config import TimberConfig

    class GroveConfig(TimberConfig):
        APP_NAME = "grove"

    with pytest.raises(ConfigurationError) as err:
        initialize_timber(app_name="canopy", config=GroveConfig)
    assert str(err.value) == ("initialize_timber(app_name='canopy') but GroveConfig.APP_NAME is 'grove': name one app "
                              "(or leave app_name out to use the configuration's)")


def test_initialize_with_config_refuses_what_is_not_a_timber_config() -> None:
    from timber.common import initialize_timber

    class Settings:
        APP_NAME = "canopy"

    with pytest.raises(ConfigurationError) as err:
        initialize_timber(config=Settings)
    assert str(err.value).startswith("initialize_timber(config=...) takes a TimberConfig subclass or instance "
                                     "(timber.common.utils.config.TimberConfig); got type ")


def test_base_service_built_with_db_manager_follows_the_kernel_without_warning(tmp_path: Path) -> None:
    from timber.common.models.base import db_manager
    from timber.common.services.base import BaseService

    class OrderService(BaseService):
        pass

    kernel = timber_core.initialize_timber(app_name="canopy", database_url=f"sqlite:///{tmp_path}/t.db")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            service = OrderService(db_manager)
        assert (service.kernel, service._get_model("Order")) == (kernel, kernel.models["Order"])
    finally:
        timber_core.shutdown()
