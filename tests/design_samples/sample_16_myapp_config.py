# Design document "Multi-App Support", section "3. Configure Application" (python block 16, line 1069, fingerprint fa2963ac01c7).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# myapp/config.py
from timber.common.utils.config import TimberConfig

class MyAppConfig(TimberConfig):
    APP_NAME = 'myapp'
    APP_VERSION = '1.0.0'
    
    MODEL_DIRS = [
        './timber/data/models/shared',
        './myapp/data/models'
    ]
    
    # MyApp-specific settings
    MYAPP_FEATURE_ENABLED = True
