# Design document "Multi-App Support", section "2. Application Context" (python block 1, line 124, fingerprint 4e491f40dae2).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# Application identifies itself to Timber
import os  # added: the document uses os.getenv without importing os
from timber.common import initialize_timber

initialize_timber(
    app_name='canopy',  # Application identifier
    model_config_dirs=[
        './timber/data/models',      # Shared models
        './canopy/data/models'        # Canopy-specific models
    ],
    database_url=os.getenv('DATABASE_URL')
)
