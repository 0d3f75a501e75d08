"""A process pays for its own app: the classes of other apps are mapped when code first enters them.

``initialize_timber(app_name="canopy")`` builds every Table but maps only the kernel's, Canopy's
and its dependencies' classes; Grove's are mapped on first entry into ``app_context("grove")``,
``platform_context()`` or a read of one of its models (docs/plugins.md, "What a process builds").
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import timber_core
from timber_core import app_context, platform_context
from timber_core.errors import IsolationError, SchemaError
from timber_core.kernel import Kernel

pytestmark = pytest.mark.usefixtures("fresh_kernel")

GROVE_MODELS = {"ResearchSession", "ResearchReport"}
UNMAPPABLE = ("app 'unmappable', field 'relationships': SQLAlchemy cannot configure the models of app 'unmappable', "
              "so it cannot be entered in this process (the other apps can): Could not determine join condition")


def _init(tmp_path: Path, app_name: str | None) -> Kernel:
    return timber_core.initialize_timber(app_name, database_url=f"sqlite:///{tmp_path / 'timber.db'}")


def _mapped(kernel: Kernel) -> set[str]:
    return set(kernel.models.mapped())


def _user(kernel: Kernel) -> Any:
    return kernel.models["User"]


def test_a_kernel_for_canopy_maps_neither_grove_classes_nor_its_backrefs_on_user(tmp_path: Path) -> None:
    kernel = _init(tmp_path, "canopy")
    assert (_mapped(kernel) & GROVE_MODELS, hasattr(_user(kernel), "grove_sessions"),
            hasattr(_user(kernel), "canopy_sessions")) == (set(), False, True)


def test_a_kernel_for_canopy_still_knows_every_model_name_and_table(tmp_path: Path) -> None:
    kernel = _init(tmp_path, "canopy")
    assert ("ResearchSession" in kernel.models, kernel.spec("ResearchSession").table_name,
            "research_sessions" in kernel.metadata.tables, _mapped(kernel) & GROVE_MODELS) == (
        True, "research_sessions", True, set())


def test_entering_grove_maps_its_classes_and_backrefs_and_its_queries_work(tmp_path: Path) -> None:
    kernel = _init(tmp_path, "canopy")
    with kernel.db.session_scope() as session:  # as Canopy: User is shared
        session.add(_user(kernel)(id="u" * 36, email="u@x", username="u"))
    before = _mapped(kernel) & GROVE_MODELS
    with app_context("grove"), kernel.db.session_scope() as session:
        research = timber_core.get_model("ResearchSession")
        session.add(research(user_id="u" * 36, notes="grove"))
        session.flush()
        found = [(r.notes, r.user.username) for r in session.query(research)]
    assert (before, found, hasattr(_user(kernel), "grove_sessions"), _mapped(kernel) >= GROVE_MODELS) == (
        set(), [("grove", "u")], True, True)


def test_reading_an_unmapped_model_by_name_maps_its_app(tmp_path: Path) -> None:
    kernel = _init(tmp_path, "canopy")
    cls = kernel.models["ResearchReport"]
    assert (cls.__tablename__, _mapped(kernel) >= GROVE_MODELS, hasattr(_user(kernel), "grove_sessions")) == (
        "research_reports", True, True)


def test_canopy_is_refused_grove_private_model_without_mapping_it(tmp_path: Path) -> None:
    kernel = _init(tmp_path, "canopy")
    with pytest.raises(IsolationError):
        timber_core.get_model("ResearchSession")
    assert _mapped(kernel) & GROVE_MODELS == set()


def test_a_kernel_without_app_maps_every_class(tmp_path: Path) -> None:
    kernel = _init(tmp_path, None)
    assert (_mapped(kernel) == set(kernel.models), hasattr(_user(kernel), "grove_sessions")) == (True, True)


def test_the_platform_context_maps_every_class(tmp_path: Path) -> None:
    kernel = _init(tmp_path, "canopy")
    with platform_context():
        pass
    assert (_mapped(kernel) == set(kernel.models), hasattr(_user(kernel), "grove_sessions")) == (True, True)


def test_an_app_is_mapped_with_the_apps_it_depends_on(tmp_path: Path, install_fixture: Any) -> None:
    install_fixture("journal")
    install_fixture("dependent")
    kernel = _init(tmp_path, "addon")
    journal = {m.name for m in kernel.models_of("journal")}
    assert (journal <= _mapped(kernel), _mapped(kernel) & GROVE_MODELS) == (True, set())


def test_two_threads_entering_an_unmapped_app_map_it_once(tmp_path: Path) -> None:
    kernel = _init(tmp_path, "canopy")
    barrier = threading.Barrier(2)
    seen: list[type] = []
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            barrier.wait(timeout=30)
            with app_context("grove"):
                seen.append(timber_core.get_model("ResearchSession"))
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=enter) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    mappers = [m for m in kernel.base.registry.mappers if m.class_.__name__ == "ResearchSession"]
    assert (errors, len(seen), seen[0] is seen[1], len(mappers)) == ([], 2, True, 1)


def test_an_app_that_cannot_be_mapped_raises_on_entry_and_leaves_the_others_working(
    tmp_path: Path, install_fixture: Any
) -> None:
    install_fixture("unmappable")
    kernel = _init(tmp_path, "canopy")
    with pytest.raises(SchemaError) as info, app_context("unmappable"):
        pass
    with app_context("grove"), kernel.db.session_scope() as session:
        rows = session.query(timber_core.get_model("ResearchSession")).count()
    with app_context("canopy"), kernel.db.session_scope() as session:
        users = session.query(_user(kernel)).count()
    assert (UNMAPPABLE in str(info.value), rows, users, hasattr(_user(kernel), "unmappable_handovers")) == (
        True, 0, 0, False)


def test_an_app_that_cannot_be_mapped_raises_the_same_error_on_each_entry(
    tmp_path: Path, install_fixture: Any
) -> None:
    install_fixture("unmappable")
    _init(tmp_path, "canopy")
    messages = []
    for _ in range(2):
        with pytest.raises(SchemaError) as info, app_context("unmappable"):
            pass
        messages.append(str(info.value))
    assert messages[0] == messages[1] and UNMAPPABLE in messages[0]


def test_the_platform_context_maps_the_apps_that_can_be_and_skips_one_that_cannot(
    tmp_path: Path, install_fixture: Any
) -> None:
    install_fixture("unmappable")
    kernel = _init(tmp_path, "canopy")
    with platform_context(), kernel.db.session_scope() as session:
        rows = session.query(kernel.models["ResearchSession"]).count()
    assert (rows, set(kernel.models) - _mapped(kernel)) == (0, {"Handover"})


def test_a_vector_indexed_model_of_an_app_mapped_late_records_its_index_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from timber_core.config import TimberConfig
    from timber_core.vectors.outbox import outbox_table

    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")  # the work stays in the outbox, where the test reads it
    TimberConfig.clear_cache()
    kernel = _init(tmp_path, "canopy")
    with platform_context(), kernel.db.session_scope() as session:
        session.add(_user(kernel)(id="u" * 36, email="u@x", username="u"))
    with app_context("grove"), kernel.db.session_scope() as session:
        row = timber_core.get_model("ResearchSession")(user_id="u" * 36, notes="bonds ladder")
        session.add(row)
        session.flush()
        row_id = row.id
    table = outbox_table(kernel)
    with platform_context(), kernel.db.connection() as conn:
        work = conn.execute(select(table.c.app, table.c.model, table.c.row_id, table.c.op)).all()
    assert work == [("grove", "ResearchSession", row_id, "upsert")]


def test_the_walls_refuse_canopy_grove_table_before_and_after_grove_is_mapped(tmp_path: Path) -> None:
    from sqlalchemy import select, text

    kernel = _init(tmp_path, "canopy")
    refused = []
    for _ in ("before", "after"):
        for statement in (text("SELECT * FROM research_sessions"), select(kernel.metadata.tables["research_sessions"])):
            with pytest.raises(IsolationError) as info, kernel.db.connection() as conn:
                conn.execute(statement)
            refused.append(("research_sessions" in str(info.value), _mapped(kernel) >= GROVE_MODELS))
        with app_context("grove"):
            pass
    assert refused == [(True, False), (True, False), (True, True), (True, True)]


def test_the_platform_context_warns_once_of_an_app_that_cannot_be_mapped(
    tmp_path: Path, install_fixture: Any, caplog: pytest.LogCaptureFixture
) -> None:
    install_fixture("unmappable")
    _init(tmp_path, "canopy")
    caplog.set_level("WARNING", logger="timber")
    for _ in range(3):
        with platform_context():
            pass
    warned = [m for m in caplog.messages if m.startswith("timber: app 'unmappable' cannot be mapped")]
    assert len(warned) == 1 and UNMAPPABLE in warned[0]
