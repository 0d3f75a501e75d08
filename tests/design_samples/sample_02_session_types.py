# Design document "Multi-App Support", section "3. Data Isolation via Session Types" (python block 2, line 140, fingerprint 1b3ffb540ea7).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
from timber.common.services.persistence import session_service  # added: imported in an earlier block
# Canopy creates trading sessions
session_id = session_service.create_session(
    user_id='user-123',
    session_type='trading',  # Canopy's type
    metadata={'order_id': 'order-456'}
)

from timber.common import app_context  # added: the document runs the next call in Grove, which it does not say how
_grove = app_context('grove'); _grove.__enter__()  # added: the next call is Grove's (this process is Canopy)
# Grove creates research sessions
session_id = session_service.create_session(
    user_id='user-123',
    session_type='research',  # Grove's type
    metadata={'symbol': 'AAPL'}
)

_grove.__exit__(None, None, None)  # added: back in Canopy's context
# Services filter by session_type automatically
canopy_sessions = session_service.get_user_sessions(
    user_id='user-123',
    session_type='trading'  # Only Canopy sessions
)
