"""``BaseService``: its one constructor (the kernel, or nothing for the current kernel) and ``get_model``."""

from __future__ import annotations

from typing import Any

import pytest

import timber_core
from timber_core import app_context
from timber_core.db import DatabaseManager
from timber_core.errors import IsolationError, NotFoundError
from timber_core.models.base import db_manager
from timber_core.services.base import BaseService


class ReportLike(BaseService):
    """An app service as an author writes it: no constructor of its own."""


def test_a_service_built_with_a_kernel_uses_that_kernel_and_its_database(sqlite_kernel: Any) -> None:
    service = ReportLike(sqlite_kernel)
    assert (service.kernel, service.db) == (sqlite_kernel, sqlite_kernel.db)


def test_the_registry_builds_a_service_with_its_kernel(sqlite_kernel: Any) -> None:
    orders = sqlite_kernel.services["orders"]
    assert (type(orders).__name__, orders.kernel, orders.db) == ("OrderService", sqlite_kernel, sqlite_kernel.db)


def test_a_service_built_without_a_kernel_follows_the_current_kernel(sqlite_kernel: Any, tmp_path: Any) -> None:
    service = ReportLike()
    assert service.kernel is sqlite_kernel
    again = timber_core.initialize_timber("grove", database_url=f"sqlite:///{tmp_path}/again.db")
    try:
        assert service.kernel is again
        with service.db.session_scope() as session:
            assert session.bind.url.database == f"{tmp_path}/again.db"
    finally:
        again.close()


def test_a_service_runs_on_another_database_of_its_kernel_given_as_db(sqlite_kernel: Any, tmp_path: Any) -> None:
    other = DatabaseManager(f"sqlite:///{tmp_path}/timber.db")
    other.kernel = sqlite_kernel
    try:
        service = ReportLike(sqlite_kernel, db=other)
        assert (service.kernel, service.db) == (sqlite_kernel, other)
    finally:
        other.dispose()


def test_a_service_given_something_else_than_a_kernel_says_what_it_takes(sqlite_kernel: Any) -> None:
    with pytest.raises(TypeError) as err:
        ReportLike("sqlite:///x.db")
    assert str(err.value) == (
        "ReportLike() takes the Kernel the service belongs to (what a timber_services() factory receives), "
        "or nothing for the current kernel; got str 'sqlite:///x.db'"
    )


def test_a_service_given_a_db_that_is_not_a_database_manager_says_what_it_takes(sqlite_kernel: Any) -> None:
    with pytest.raises(TypeError) as err:
        ReportLike(sqlite_kernel, db=sqlite_kernel)
    assert str(err.value) == "ReportLike(db=...) takes a timber_core.db.DatabaseManager; got Kernel"


def test_a_service_given_a_database_manager_is_deprecated_and_uses_its_kernel(sqlite_kernel: Any) -> None:
    with pytest.warns(DeprecationWarning) as warned:
        service = ReportLike(sqlite_kernel.db)
    assert str(warned[0].message) == (
        "ReportLike(db) with a DatabaseManager is deprecated: pass the kernel, ReportLike(kernel) "
        "(or ReportLike(kernel, db=db) to run on another database)"
    )
    assert (service.kernel, service.db) == (sqlite_kernel, sqlite_kernel.db)


def test_a_service_given_db_manager_is_deprecated_and_follows_the_current_kernel(sqlite_kernel: Any) -> None:
    with pytest.warns(DeprecationWarning, match=r"^ReportLike\(db_manager\) is deprecated: use ReportLike\(\)"):
        service = ReportLike(db_manager)
    assert service.kernel is sqlite_kernel


def test_get_model_returns_a_model_of_the_calling_app(sqlite_kernel: Any) -> None:
    service = ReportLike(sqlite_kernel)
    with app_context("grove"):
        assert service.get_model("ResearchReport") is sqlite_kernel.models["ResearchReport"]
        assert service.get_model("Session") is sqlite_kernel.models["Session"]


def test_get_model_refuses_another_apps_private_model_naming_its_owner(sqlite_kernel: Any) -> None:
    service = ReportLike(sqlite_kernel)
    with pytest.raises(IsolationError) as err, app_context("grove"):
        service.get_model("Order")
    assert str(err.value) == (
        "app 'grove' may not use model 'Order' (table 'orders'): it is private to app 'canopy'. "
        "Reach app canopy's data through its services, or run cross-app work in timber_core.platform_context()"
    )


def test_get_model_of_an_unknown_model_suggests_close_names(sqlite_kernel: Any) -> None:
    with pytest.raises(NotFoundError, match=r"^no model named 'Ordr' is declared by any loaded app\. Did you mean Order\?"):
        ReportLike(sqlite_kernel).get_model("Ordr")


def test_the_private_get_model_is_gone() -> None:
    assert not hasattr(BaseService, "_get_model")
