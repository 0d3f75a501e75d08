"""``timber.common.services.persistence``: :mod:`timber_core.services.persistence`, re-exported."""

from timber_core.services.persistence import (
    NotificationService,
    SessionService,
    TrackerService,
    UserService,
    notification_service,
    session_service,
    tracker_service,
    user_service,
)

__all__ = ["UserService", "SessionService", "NotificationService", "TrackerService", "user_service",
           "session_service", "notification_service", "tracker_service"]
