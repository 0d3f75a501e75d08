# Design document "Multi-App Support", section "Integration Testing" (python block 15, line 921, fingerprint 4cba369637cc).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
import os  # added: the database comes from the test run
import pytest
from timber.common import initialize_timber

@pytest.fixture(scope='module')
def canopy_setup():
    """Setup Timber for Canopy"""
    initialize_timber(
        app_name='canopy',
        model_config_dirs=[
            './tests/fixtures/models/shared',
            './tests/fixtures/models/canopy'
        ],
        database_url=os.environ['DATABASE_URL']  # changed (the test run's database), was: database_url='postgresql://localhost/timber_test'
    )

@pytest.fixture(scope='module')
def grove_setup():
    """Setup Timber for Grove"""
    initialize_timber(
        app_name='grove',
        model_config_dirs=[
            './tests/fixtures/models/shared',
            './tests/fixtures/models/grove'
        ],
        database_url=os.environ['DATABASE_URL']  # changed (the test run's database), was: database_url='postgresql://localhost/timber_test'
    )

def test_canopy_sessions(canopy_setup):
    """Test Canopy session creation"""
    from timber.common.services.persistence import session_service
    
    session_id = session_service.create_session(
        user_id='test-user',
        session_type='trading',
        metadata={'app': 'canopy'}
    )
    
    assert session_id is not None

def test_grove_sessions(grove_setup):
    """Test Grove session creation"""
    from timber.common.services.persistence import session_service
    
    session_id = session_service.create_session(
        user_id='test-user',
        session_type='research',
        metadata={'app': 'grove'}
    )
    
    assert session_id is not None

def test_data_isolation(canopy_setup, grove_setup):
    """Test that apps can't see each other's sessions"""
    from timber.common.services.persistence import session_service
    
    # Canopy creates session
    canopy_session = session_service.create_session(
        user_id='test-user',
        session_type='trading'
    )
    
    # Grove creates session
    grove_session = session_service.create_session(
        user_id='test-user',
        session_type='research'
    )
    
    # Get Canopy sessions
    canopy_sessions = session_service.get_user_sessions(
        user_id='test-user',
        session_type='trading'
    )
    
    # Should only see Canopy session
    assert len(canopy_sessions) == 1
    assert canopy_sessions[0].id == canopy_session
    
    # Get Grove sessions
    grove_sessions = session_service.get_user_sessions(
        user_id='test-user',
        session_type='research'
    )
    
    # Should only see Grove session
    assert len(grove_sessions) == 1
    assert grove_sessions[0].id == grove_session
