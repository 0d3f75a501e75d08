"""The kernel's shared model YAML (users, sessions, notifications, events) and ``db_manager``."""
