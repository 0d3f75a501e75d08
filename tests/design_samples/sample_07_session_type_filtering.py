# Design document "Multi-App Support", section "1. Session Type Filtering" (python block 7, line 595, fingerprint 592a034e1625).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# Each app filters by its session_type
from timber.common.services.base import BaseService  # added: the document leaves the import out
class SessionService(BaseService):
    
    def get_app_sessions(self, user_id: str, app_name: str):
        """Get sessions for specific app"""
        Session = self._get_model('Session')
        
        # Map app to session types
        type_map = {
            'canopy': ['trading', 'paper_trading'],
            'grove': ['research', 'analysis'],
            'portfolio': ['portfolio_review', 'rebalance']
        }
        
        session_types = type_map.get(app_name, [])
        
        with self.db.session_scope() as session:
            return session.query(Session)\
                .filter(Session.user_id == user_id)\
                .filter(Session.session_type.in_(session_types))\
                .all()
