# Design document "Multi-App Support", section "Scaling Considerations" (python block 14, line 895, fingerprint 70a803951ac8).
# Copied unchanged but for the lines marked "# added:" or "# changed (why), was: ORIGINAL" (what the document leaves out).
# Connection pool sizing
# Each instance needs connections
# Total = (canopy_instances + grove_instances) * pool_size

# Example:
canopy_instances = 3
grove_instances = 2
pool_size_per_instance = 10
max_overflow_per_instance = 5

total_max_connections = (
    (canopy_instances + grove_instances) * 
    (pool_size_per_instance + max_overflow_per_instance)
)

# total_max_connections = (3 + 2) * (10 + 5) = 75
# Ensure PostgreSQL max_connections > 75 (e.g., 100)
