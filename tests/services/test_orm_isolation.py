"""The ORM wall: model boundaries, automatic session-type filters, refused writes (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select, update

import timber_core
from timber_core import app_context, platform_context, user_context
from timber_core.errors import IsolationError, NotFoundError
from timber_core.services.persistence import session_service


def test_get_model_refuses_another_apps_private_model_naming_its_owner(kernel: Any) -> None:
    with pytest.raises(IsolationError) as err:
        with app_context("grove"):
            timber_core.get_model("Order")
    assert str(err.value) == (
        "app 'grove' may not use model 'Order' (table 'orders'): it is private to app 'canopy'. "
        "Reach app canopy's data through its services, or run cross-app work in timber_core.platform_context()"
    )


def test_shared_models_are_open_to_every_app(kernel: Any) -> None:
    with app_context("grove"):
        assert timber_core.get_model("Session").__table__.name == "sessions"
        assert timber_core.get_model("User").__table__.name == "users"


def test_unknown_model_suggests_close_names(kernel: Any) -> None:
    with pytest.raises(NotFoundError, match=r"no model named 'Ordr' is declared by any loaded app\. Did you mean Order\?"):
        timber_core.get_model("Ordr")


def test_hand_written_orm_query_sees_only_own_session_types(kernel: Any, alice: str) -> None:
    session_service.create_session(alice, "trading")
    with app_context("grove"):
        session_service.create_session(alice, "research")
    Session = kernel.models["Session"]
    with user_context(alice), kernel.db.session_scope() as s:
        assert [r.session_type for r in s.query(Session).all()] == ["trading"]
        assert s.execute(select(Session.session_type)).scalars().all() == ["trading"]
    with platform_context(), user_context(alice), kernel.db.session_scope() as s:
        assert sorted(s.scalars(select(Session.session_type)).all()) == ["research", "trading"]


def test_relationship_lazy_load_is_filtered_too(kernel: Any, alice: str) -> None:
    session_service.create_session(alice, "trading")
    with app_context("grove"):
        session_service.create_session(alice, "research")
    User, Session = kernel.models["User"], kernel.models["Session"]
    with user_context(alice), kernel.db.session_scope() as s:
        user = s.get(User, alice)
        sessions = s.scalars(select(Session).where(Session.user_id == user.id)).all()
        assert [x.session_type for x in sessions] == ["trading"]


def test_orm_update_statement_cannot_touch_other_apps_rows(kernel: Any, alice: str) -> None:
    with app_context("grove"):
        theirs = session_service.create_session(alice, "research")
    Session = kernel.models["Session"]
    with user_context(alice), kernel.db.session_scope() as s:
        result = s.execute(update(Session).where(Session.id == theirs).values(status="hijacked"))
        assert result.rowcount == 0
    with app_context("grove"):
        assert session_service.get_session(theirs, user_id=alice).status == "active"


def test_flush_of_another_apps_session_type_is_refused(kernel: Any, alice: str) -> None:
    Session = kernel.models["Session"]
    with pytest.raises(IsolationError, match="app 'canopy' cannot create a session of type 'research': that type is owned by app 'grove'"):
        with kernel.db.session_scope() as s:
            s.add(Session(user_id=alice, session_type="research", app_name="grove"))
    with platform_context():
        assert session_service.get_user_sessions(alice) == []


def test_changing_own_session_to_another_apps_type_is_refused(kernel: Any, alice: str) -> None:
    mine = session_service.create_session(alice, "trading")
    Session = kernel.models["Session"]
    with pytest.raises(IsolationError, match="cannot change a session of type 'analysis'"):
        with user_context(alice), kernel.db.session_scope() as s:
            s.get(Session, mine).session_type = "analysis"
    assert session_service.get_session(mine, user_id=alice).session_type == "trading"


def test_orm_insert_statement_of_another_apps_type_is_refused(kernel: Any, alice: str) -> None:
    Session = kernel.models["Session"]
    with pytest.raises(IsolationError, match="cannot create a session of type 'analysis'"):
        with kernel.db.session_scope() as s:
            s.execute(insert(Session), [{"user_id": alice, "session_type": "analysis", "app_name": "grove"}])


def test_querying_another_apps_private_model_through_the_orm_is_refused(kernel: Any, alice: str) -> None:
    Order = kernel.models["Order"]  # obtained without the get_model check, as a careless app might
    with app_context("grove"), pytest.raises(IsolationError, match="app 'grove' may not query model 'Order'"):
        with kernel.db.session_scope() as s:
            s.execute(select(Order)).all()


def test_writing_another_apps_private_model_is_refused(kernel: Any, alice: str) -> None:
    Report = kernel.models["ResearchReport"]
    with pytest.raises(IsolationError, match="app 'canopy' may not create model 'ResearchReport'"):
        with kernel.db.session_scope() as s:
            s.add(Report(user_id=alice, title="stolen"))
