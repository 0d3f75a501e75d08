# Design document "Multi-App Support", section "4. Share Carefully" (python block 21, line 1215, fingerprint dfd723c1d158).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# Good: Share via services
from timber.common.services.persistence import notification_service

notification_service.create_notification(
    user_id='user-123',
    notification_type='myapp_alert',
    title='MyApp Alert',
    data={'app': 'myapp', 'alert_id': 'alert-123'}
)

# Avoid: Direct database access to other app's tables
# Don't query canopy_orders from grove
