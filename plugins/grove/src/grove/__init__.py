"""Grove, the research app: research sessions, notes and reports on Timber."""

from typing import Any


def __getattr__(name: str) -> Any:
    # The version is the distribution's (pyproject.toml), read when asked: importing the
    # package stays cheap for `timber apps list`.
    if name == "__version__":
        from importlib.metadata import version

        return version("timber-grove")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
