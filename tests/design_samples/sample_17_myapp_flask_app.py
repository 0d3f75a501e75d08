# Design document "Multi-App Support", section "4. Initialize Timber" (python block 17, line 1088, fingerprint 9718c761163f).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# myapp/app.py
from flask import Flask
from flask import request  # added: the document uses flask.request without importing it
from timber.common import initialize_timber
from myapp.config import MyAppConfig

app = Flask(__name__)

# Initialize Timber
initialize_timber(
    app_name=MyAppConfig.APP_NAME,
    model_config_dirs=MyAppConfig.MODEL_DIRS,
    database_url=MyAppConfig.DATABASE_URL
)

# Import services
from timber.common.services.persistence import (
    session_service,
    notification_service
)

@app.route('/create-session', methods=['POST'])
def create_session():
    user_id = request.json['user_id']
    
    session_id = session_service.create_session(
        user_id=user_id,
        session_type='myapp',
        metadata={'app': 'myapp'}
    )
    
    return {'session_id': session_id}
