"""Grove, the research app: research sessions, notes and reports on Timber."""

__version__ = "1.0.0"
