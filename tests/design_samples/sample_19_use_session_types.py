# Design document "Multi-App Support", section "1. Use Session Types" (python block 19, line 1165, fingerprint 805e950c5ef9).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
from timber.common.services.persistence import session_service  # added: imported in an earlier block
# Good: Use session_type to separate data
session_service.create_session(
    user_id='user-123',
    session_type='myapp_feature',  # Clear identifier
    metadata={'app': 'myapp'}
)

# Query only your sessions
sessions = session_service.get_user_sessions(
    user_id='user-123',
    session_type='myapp_feature'
)
