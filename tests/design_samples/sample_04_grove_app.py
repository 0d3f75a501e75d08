# Design document "Multi-App Support", section "Shared Service Instance" (python block 4, line 449, fingerprint 985ede615d89).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# grove/app.py
from timber.common import initialize_timber
from timber.common.services.persistence import (
    session_service,
    notification_service,
    tracker_service
)

# Initialize Timber for Grove
initialize_timber(
    app_name='grove',
    model_config_dirs=[
        './timber/data/models/shared',
        './grove/data/models'
    ]
)

# Use shared services with Grove context
def create_research_session(user_id: str, symbol: str):
    """Create Grove research session"""
    session_id = session_service.create_session(
        user_id=user_id,
        session_type='research',  # Grove's type
        metadata={
            'symbol': symbol,
            'app': 'grove'
        }
    )
    
    # Track event
    tracker_service.track_event(
        user_id=user_id,
        event_type='research_session_created',
        event_data={'session_id': session_id, 'symbol': symbol}
    )
    
    return session_id
