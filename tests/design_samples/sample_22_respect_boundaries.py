# Design document "Multi-App Support", section "5. Respect Boundaries" (python block 22, line 1232, fingerprint 009aa86de8b4).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# Good: Each app manages its own data
class MyAppService:
    def get_myapp_data(self, user_id: str):
        # Query MyApp tables only
        pass

# Avoid: Cross-app data access
class MyAppService:
    def get_canopy_orders(self, user_id: str):
        # Don't access other app's data directly
        # Use shared services or APIs instead
        pass
