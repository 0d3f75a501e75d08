# Design document "Multi-App Support", section "App-Specific Services" (python block 6, line 539, fingerprint 723ab8be0242).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# grove/services/report_service.py
import uuid  # added: the document uses uuid.uuid4 without importing uuid
from datetime import datetime  # added: the document uses datetime.utcnow without importing it
from timber.common.services.base import BaseService
from timber.common import get_model

class ReportService(BaseService):
    """Grove-specific research report service"""
    
    def create_report(self, user_id: str, session_id: str,
                     title: str, content: str):
        """Create research report"""
        Report = self._get_model('ResearchReport')
        
        with self.db.session_scope() as session:
            report = Report(
                id=str(uuid.uuid4()),
                user_id=user_id,
                session_id=session_id,
                title=title,
                content=content,
                is_published=False
            )
            
            session.add(report)
            session.commit()
            
            return report.id
    
    def publish_report(self, report_id: str, user_id: str):
        """Publish research report"""
        Report = self._get_model('ResearchReport')
        
        with self.db.session_scope() as session:
            report = session.query(Report)\
                .filter_by(id=report_id, user_id=user_id)\
                .first()
            
            if report:
                report.is_published = True
                report.published_at = datetime.utcnow()
                session.commit()
                return True
            
            return False

# Create instance
from timber.common.models.base import db_manager
report_service = ReportService(db_manager)
