# Design document "Multi-App Support", section "Shared Notifications" (python block 10, line 686, fingerprint 171c3e5d7973).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
from timber.common.services.persistence import notification_service  # added: imported in an earlier block
# Canopy creates notification
notification_service.create_notification(
    user_id='user-123',
    notification_type='order_filled',
    title='Order Filled',
    message='Your AAPL order has been filled',
    data={'app': 'canopy', 'order_id': 'order-456'}
)

from timber.common import app_context  # added: the document runs the next call in Grove, which it does not say how
_grove = app_context('grove'); _grove.__enter__()  # added: the next call is Grove's (this process is Canopy)
# Grove creates notification
notification_service.create_notification(
    user_id='user-123',
    notification_type='research_complete',
    title='Research Complete',
    message='Your AAPL analysis is ready',
    data={'app': 'grove', 'report_id': 'report-789'}
)

_grove.__exit__(None, None, None)  # added: back in Canopy's context
# User sees all notifications from all apps
notifications = notification_service.get_user_notifications(
    user_id='user-123',
    unread_only=True
)

# Each notification includes 'app' context
for notif in notifications:
    app = notif.data.get('app')
    print(f"[{app}] {notif.title}: {notif.message}")
