"""Grove as a Timber app: its plugin, its models, and ReportService (the design document's API)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

import timber_core
from timber_core.errors import IsolationError
from timber_core.kernel import Kernel
from timber_core.testing import assert_refused_across_apps

pytestmark = pytest.mark.timber_app("grove")


@pytest.fixture
def kernel(timber_kernel: Kernel) -> Kernel:
    """The Grove kernel of ``timber_core.testing``, on a fresh SQLite or PostgreSQL database."""
    return timber_kernel


def _research_session(kernel: Kernel, user_id: str) -> str:
    research = kernel.models["ResearchSession"]
    with kernel.db.session_scope() as session:
        row = research(user_id=user_id, symbol="AAPL", notes="margins")
        session.add(row)
        session.flush()
        return str(row.id)


def test_grove_owns_research_and_analysis(kernel: Kernel) -> None:
    assert kernel.apps.session_types_of("grove") == frozenset({"research", "analysis"})


def test_research_report_has_the_fields_report_service_uses(kernel: Kernel) -> None:
    columns = kernel.models["ResearchReport"].__table__.c
    assert [c.name for c in columns] == [
        "id", "user_id", "session_id", "title", "content", "category", "is_published", "published_at", "created_at",
        "updated_at",
    ]
    assert (columns.is_published.default.arg, columns.published_at.nullable) == (False, True)


def test_research_session_notes_are_declared_for_vector_search(kernel: Kernel) -> None:
    vs = kernel.spec("ResearchSession").vector_search
    assert vs is not None and (vs.enabled, vs.content_field) == (True, "notes")


def test_create_report_returns_the_new_reports_id_unpublished(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    session_id = _research_session(kernel, user_id)
    report_id = kernel.services["reports"].create_report(user_id, session_id, "Q3 margins", "Margins grew.")
    assert isinstance(report_id, str) and len(report_id) == 36
    with kernel.db.session_scope() as session:
        report = session.get(kernel.models["ResearchReport"], report_id)
        assert (report.title, report.content, report.session_id) == ("Q3 margins", "Margins grew.", session_id)
        assert (report.is_published, report.published_at) == (False, None)


def test_publish_report_sets_is_published_and_published_at(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    reports = kernel.services["reports"]
    report_id = reports.create_report(user_id, _research_session(kernel, user_id), "Q3", "Text")
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert reports.publish_report(report_id, user_id) is True
    with kernel.db.session_scope() as session:
        report = session.get(kernel.models["ResearchReport"], report_id)
        published_at = report.published_at.replace(tzinfo=None)
        assert report.is_published is True
        assert before - dt.timedelta(seconds=1) <= published_at <= dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def test_publish_report_of_another_user_returns_false_and_changes_nothing(kernel: Kernel, make_user: Callable[..., str]) -> None:
    ada, bob = make_user("ada@example.com", "ada"), make_user("bob@example.com", "bob")
    reports = kernel.services["reports"]
    report_id = reports.create_report(ada, _research_session(kernel, ada), "Q3", "Text")
    assert reports.publish_report(report_id, bob) is False
    with kernel.db.session_scope() as session:
        assert session.get(kernel.models["ResearchReport"], report_id).is_published is False


def test_publish_report_of_an_unknown_report_returns_false(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    assert kernel.services["reports"].publish_report("00000000-0000-0000-0000-000000000000", user_id) is False


def test_canopy_cannot_create_grove_reports(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user("ada@example.com", "ada")
    with timber_core.app_context("canopy"), pytest.raises(IsolationError) as info:
        kernel.services["reports"].create_report(user_id, None, "Q3", "Text")
    assert "app 'canopy' may not use model 'ResearchReport'" in str(info.value)


def test_no_other_app_may_publish_grove_reports(kernel: Kernel, make_user: Callable[..., str]) -> None:
    user_id = make_user()
    report_id = kernel.services["reports"].create_report(user_id, _research_session(kernel, user_id), "Q3", "Text")
    assert_refused_across_apps(kernel.services["reports"].publish_report, report_id, user_id, owner="grove")
