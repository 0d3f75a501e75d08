# Design document "Multi-App Support", section "5. Create Custom Services" (python block 18, line 1124, fingerprint 9b92e35a3179).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# myapp/services/myapp_service.py
from timber.common.services.base import BaseService
from timber.common import get_model

class MyAppService(BaseService):
    """MyApp-specific service"""
    
    def do_myapp_thing(self, user_id: str):
        """MyApp business logic"""
        MyAppSession = self._get_model('MyAppSession')
        
        with self.db.session_scope() as session:
            # Your logic here
            pass
