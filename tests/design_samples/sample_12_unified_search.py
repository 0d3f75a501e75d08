# Design document "Multi-App Support", section "Unified Search" (python block 12, line 745, fingerprint 373235fd1ee9).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# Search across all apps
from timber.common.services.vector import vector_service

def unified_search(user_id: str, query: str):
    """Search across all app data"""
    results = []
    
    # Search Canopy orders
    canopy_results = vector_service.search(
        query=query,
        collection_name='orders',
        filter_dict={'user_id': user_id},
        limit=10
    )
    results.extend([{**r, 'app': 'canopy'} for r in canopy_results])
    
    # Search Grove research
    grove_results = vector_service.search(
        query=query,
        collection_name='research_reports',
        filter_dict={'user_id': user_id},
        limit=10
    )
    results.extend([{**r, 'app': 'grove'} for r in grove_results])
    
    # Sort by relevance
    results.sort(key=lambda x: x['score'], reverse=True)
    
    return results[:20]
