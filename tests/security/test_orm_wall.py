"""The ORM wall against a hostile app: every way an ORM statement can reach another app's data
is refused (IsolationError) or filtered to nothing, alike on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, literal_column, select, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import joinedload

from timber_core import app_context, platform_context, user_context
from timber_core.errors import IsolationError
from timber_core.services.persistence import session_service, user_service

REFUSED_RS = (
    "app 'canopy' may not query model 'ResearchSession' (table 'research_sessions'): it is private to app "
    "'grove'. Reach app grove's data through its services, or run cross-app work in timber_core.platform_context()"
)


def _grove_data(kernel: Any) -> tuple[str, str, str]:
    """Alice, one Grove research session row (private table) and one Grove ``sessions`` row; return their ids."""
    alice = user_service.create_user("alice@example.com", "alice")
    RS = kernel.models["ResearchSession"]
    with app_context("grove"), user_context(alice):
        with kernel.db.session_scope() as s:
            row = RS(user_id=alice, symbol="ACME", notes="grove secret")
            s.add(row)
            s.flush()
            rs_id = row.id
        shared = session_service.create_session(alice, "research")
    return alice, rs_id, shared


def test_joinedload_of_a_relationship_to_another_apps_model_is_refused(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    User = wall_kernel.models["User"]
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(select(User).options(joinedload(User.grove_sessions))).unique().all()
    assert str(err.value) == REFUSED_RS


def test_literal_column_selected_from_another_apps_model_is_refused(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    RS = wall_kernel.models["ResearchSession"]
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(select(literal_column("notes")).select_from(RS)).all()
    assert str(err.value) == REFUSED_RS


def test_count_over_another_apps_model_is_refused(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    RS = wall_kernel.models["ResearchSession"]
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(select(func.count()).select_from(RS).where(RS.notes.like("grove%"))).scalar()
    assert str(err.value) == REFUSED_RS


def test_join_through_a_relationship_to_another_apps_model_is_refused(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    User, RS = wall_kernel.models["User"], wall_kernel.models["ResearchSession"]
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(select(User.id).join(User.grove_sessions).where(RS.notes == "grove secret")).all()
    assert str(err.value) == REFUSED_RS


def test_any_on_a_relationship_to_another_apps_model_is_refused(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    User, RS = wall_kernel.models["User"], wall_kernel.models["ResearchSession"]
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(select(User.id).where(User.grove_sessions.any(RS.notes.like("grove%")))).all()
    assert str(err.value) == REFUSED_RS


def test_orm_update_moving_an_own_session_into_another_apps_type_is_refused(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    mine = session_service.create_session(alice, "trading")
    Session = wall_kernel.models["Session"]
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(update(Session).where(Session.id == mine).values(session_type="research"))
    assert str(err.value) == (
        "app 'canopy' cannot change a session to type 'research': that type is owned by app 'grove'. "
        "App 'canopy' owns: paper_trading, trading"
    )
    assert session_service.get_session(mine, user_id=alice).session_type == "trading"


def test_upsert_on_the_shared_sessions_table_is_refused(wall_kernel: Any) -> None:
    alice, _, theirs = _grove_data(wall_kernel)
    Session = wall_kernel.models["Session"]
    if wall_kernel.db.dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    stmt = dialect_insert(Session).values(
        id=theirs, user_id=alice, session_type="trading", app_name="canopy", status="active"
    ).on_conflict_do_update(index_elements=["id"], set_={"status": "hijacked"})
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(stmt)
    assert str(err.value) == (
        "app 'canopy' may not upsert (INSERT ... ON CONFLICT) into shared table 'sessions' (model 'Session'): "
        "the conflicting row may belong to another app. Insert new rows and update your own with UPDATE"
    )
    with app_context("grove"):
        assert session_service.get_session(theirs, user_id=alice).status == "active"


def test_refreshing_another_apps_session_loaded_in_the_platform_context_finds_nothing(wall_kernel: Any) -> None:
    alice, _, theirs = _grove_data(wall_kernel)
    Session = wall_kernel.models["Session"]
    with platform_context(), user_context(alice), wall_kernel.db.session_scope() as s:
        loaded = s.get(Session, theirs)
    with pytest.raises(InvalidRequestError, match=r"^Could not refresh instance"):
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.add(loaded)
            s.refresh(loaded)


def test_expired_attribute_of_another_apps_session_does_not_load_in_an_app_context(wall_kernel: Any) -> None:
    from sqlalchemy.orm.exc import ObjectDeletedError

    alice, _, theirs = _grove_data(wall_kernel)
    Session = wall_kernel.models["Session"]
    with platform_context(), user_context(alice), wall_kernel.db.session_scope() as s:
        loaded = s.get(Session, theirs)
    with pytest.raises(ObjectDeletedError):
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.add(loaded)
            s.expire(loaded)
            loaded.status  # noqa: B018 - the lazy load is the attack


def test_orm_insert_values_of_an_own_type_is_allowed(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    Session = wall_kernel.models["Session"]
    with user_context(alice), wall_kernel.db.session_scope() as s:
        s.execute(insert(Session).values(id="s-own", user_id=alice, session_type="trading", app_name="canopy"))
    assert [r.id for r in session_service.get_user_sessions(alice)] == ["s-own"]


def test_orm_insert_values_of_another_apps_type_is_refused(wall_kernel: Any) -> None:
    alice, _, _ = _grove_data(wall_kernel)
    Session = wall_kernel.models["Session"]
    with pytest.raises(IsolationError) as err:
        with user_context(alice), wall_kernel.db.session_scope() as s:
            s.execute(insert(Session).values(user_id=alice, session_type="analysis", app_name="grove"))
    assert str(err.value) == (
        "app 'canopy' cannot create a session of type 'analysis': that type is owned by app 'grove'. "
        "App 'canopy' owns: paper_trading, trading"
    )
