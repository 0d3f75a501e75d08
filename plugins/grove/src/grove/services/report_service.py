"""Grove's research reports: research sessions, notes, reports, publishing."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from timber_core.errors import NotFoundError, ValidationError
from timber_core.services.base import BaseService
from timber_core.services.persistence import notification_service, session_service, tracker_service

from grove.config import GroveConfig

__all__ = ["ReportService"]


class ReportService(BaseService):
    """Grove-specific research report service. Runs in Grove's context."""

    def start_research(self, user_id: str, symbol: str, notes: str | None = None) -> str:
        """Create a shared ``research`` session, Grove's research record (its notes are searchable) and an event.

        One transaction: all three are committed together, or none is.
        """
        ResearchSession = self.get_model("ResearchSession")
        with self.acting_for(user_id, "start_research"), self.db.session_scope() as session:
            session_id = session_service.create_session(user_id, "research", {"symbol": symbol})
            session.add(ResearchSession(id=session_id, user_id=user_id, symbol=symbol, notes=notes))
            tracker_service.track_event(user_id, "research_session_created",
                                        {"session_id": session_id, "symbol": symbol})
        return session_id

    def get_user_research(self, user_id: str) -> list[Any]:
        """Return the user's research sessions (Grove's records, notes included), newest first."""
        ResearchSession = self.get_model("ResearchSession")
        self.check_user(user_id, "get_user_research")
        with self.db.session_scope() as session:
            return (session.query(ResearchSession).filter_by(user_id=user_id)
                    .order_by(ResearchSession.created_at.desc(), ResearchSession.id).all())

    def set_notes(self, session_id: str, user_id: str, notes: str) -> bool:
        """Replace the notes of the user's research session (re-indexed for search); False if there is none."""
        ResearchSession = self.get_model("ResearchSession")
        self.check_user(user_id, "set_notes")
        with self.db.session_scope() as session:
            research = session.query(ResearchSession).filter_by(id=session_id, user_id=user_id).first()
            if research is None:
                return False
            research.notes = notes
        return True

    def create_report(self, user_id: str, session_id: str | None, title: str, content: str) -> str:
        """Create an unpublished report and return its id.

        Raise ValidationError for a bad title or content, NotFoundError for a ``session_id`` that
        is not one of the user's research sessions.
        """
        if not isinstance(title, str) or not title.strip() or len(title) > 255:
            raise ValidationError("create_report: title must be non-empty text of at most 255 characters")
        limit = GroveConfig.load().MAX_REPORT_LENGTH
        if not isinstance(content, str) or len(content) > limit:
            raise ValidationError(f"create_report: content must be text of at most {limit} characters "
                                  f"(GROVE_MAX_REPORT_LENGTH)")
        Report = self.get_model("ResearchReport")
        self.check_user(user_id, "create_report")
        with self.db.session_scope() as session:
            if session_id is not None and session.query(self.get_model("ResearchSession")).filter_by(
                    id=session_id, user_id=user_id).first() is None:
                raise NotFoundError(f"create_report: no research session {session_id!r} of this user; start one with "
                                    f"start_research() (POST /research)")
            report = Report(user_id=user_id, session_id=session_id, title=title, content=content, is_published=False)
            session.add(report)
            session.flush()
            return str(report.id)

    def publish_report(self, report_id: str, user_id: str) -> bool:
        """Publish the user's report, stamp ``published_at`` and notify them; False if there is no such report.

        One transaction: the report is published only if the notification is written too.
        """
        Report = self.get_model("ResearchReport")
        with self.acting_for(user_id, "publish_report"), self.db.session_scope() as session:
            report = session.query(Report).filter_by(id=report_id, user_id=user_id).first()
            if report is None:
                return False
            report.is_published = True
            report.published_at = _dt.datetime.now(_dt.timezone.utc)
            notification_service.create_notification(
                user_id, "research_complete", "Research Complete", f"Your report {report.title!r} is published",
                {"report_id": report_id},
            )
        return True

    def get_user_reports(self, user_id: str, published_only: bool = False) -> list[Any]:
        """Return the user's reports, newest first."""
        Report = self.get_model("ResearchReport")
        self.check_user(user_id, "get_user_reports")
        with self.db.session_scope() as session:
            query = session.query(Report).filter_by(user_id=user_id)
            if published_only:
                query = query.filter_by(is_published=True)
            return query.order_by(Report.created_at.desc(), Report.id).all()
