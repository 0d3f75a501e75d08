# Design document "Multi-App Support", section "Application Configuration" (python block 13, line 807, fingerprint 707327c14b6b).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# canopy/config.py
import os
from timber.common.utils.config import TimberConfig

class CanopyConfig(TimberConfig):
    """Canopy-specific configuration"""
    
    # App identity
    APP_NAME = 'canopy'
    APP_VERSION = '1.0.0'
    
    # Model directories
    MODEL_DIRS = [
        './timber/data/models/shared',
        './canopy/data/models'
    ]
    
    # Canopy-specific settings
    ENABLE_PAPER_TRADING = os.getenv('ENABLE_PAPER_TRADING', 'true').lower() == 'true'
    ENABLE_REAL_TRADING = os.getenv('ENABLE_REAL_TRADING', 'false').lower() == 'true'
    ORDER_CONFIRMATION_REQUIRED = True
    
    # Brokerage APIs
    ALPACA_API_KEY = os.getenv('ALPACA_API_KEY')
    ALPACA_SECRET_KEY = os.getenv('ALPACA_SECRET_KEY')

# grove/config.py
class GroveConfig(TimberConfig):
    """Grove-specific configuration"""
    
    # App identity
    APP_NAME = 'grove'
    APP_VERSION = '1.0.0'
    
    # Model directories
    MODEL_DIRS = [
        './timber/data/models/shared',
        './grove/data/models'
    ]
    
    # Grove-specific settings
    ENABLE_PUBLIC_REPORTS = os.getenv('ENABLE_PUBLIC_REPORTS', 'true').lower() == 'true'
    ENABLE_AI_ANALYSIS = os.getenv('ENABLE_AI_ANALYSIS', 'true').lower() == 'true'
    MAX_REPORT_LENGTH = 50000
    
    # AI APIs
    OPENAI_API_KEY = os.getenv('OPENAI_API_KEY')
