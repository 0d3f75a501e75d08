# Design document "Multi-App Support", section "Shared Service Instance" (python block 3, line 409, fingerprint addd0ec4087c).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# canopy/app.py
from timber.common import initialize_timber
from timber.common.services.persistence import (
    session_service,
    notification_service,
    tracker_service
)

# Initialize Timber for Canopy
initialize_timber(
    app_name='canopy',
    model_config_dirs=[
        './timber/data/models/shared',
        './canopy/data/models'
    ]
)

# Use shared services with Canopy context
def create_trading_session(user_id: str, strategy: str):
    """Create Canopy trading session"""
    session_id = session_service.create_session(
        user_id=user_id,
        session_type='trading',  # Canopy's type
        metadata={
            'strategy': strategy,
            'app': 'canopy'
        }
    )
    
    # Track event
    tracker_service.track_event(
        user_id=user_id,
        event_type='trading_session_created',
        event_data={'session_id': session_id}
    )
    
    return session_id
