# Design document "Multi-App Support", section "3. Include App Context" (python block 20, line 1198, fingerprint 931897b18a9e).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
from timber.common.services.persistence import session_service  # added: imported in an earlier block
# Always include app identifier
metadata = {
    'app': 'myapp',
    'version': '1.0.0',
    'feature': 'reporting'
}

session_service.create_session(
    user_id='user-123',
    session_type='myapp',
    metadata=metadata
)
