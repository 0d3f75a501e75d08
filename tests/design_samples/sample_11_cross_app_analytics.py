# Design document "Multi-App Support", section "Cross-App Analytics" (python block 11, line 719, fingerprint 404eaf917a66).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
from timber.common.services.persistence import session_service  # added: imported in an earlier block
# Track user activity across all apps
def get_user_activity_summary(user_id: str):
    """Get activity across all apps"""
    
    # Get sessions from all apps
    all_sessions = session_service.get_user_sessions(user_id)
    
    # Group by app/type
    summary = {
        'canopy': {
            'trading': len([s for s in all_sessions if s.session_type == 'trading']),
            'paper_trading': len([s for s in all_sessions if s.session_type == 'paper_trading'])
        },
        'grove': {
            'research': len([s for s in all_sessions if s.session_type == 'research']),
            'analysis': len([s for s in all_sessions if s.session_type == 'analysis'])
        },
        'total': len(all_sessions)
    }
    
    return summary
