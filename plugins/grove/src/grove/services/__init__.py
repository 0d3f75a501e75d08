"""Grove's services."""
