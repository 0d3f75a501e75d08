"""Grove's configuration: the kernel's settings plus Grove's own."""

from __future__ import annotations

from timber_core.config import Setting, TimberConfig, positive_int


class GroveConfig(TimberConfig):
    """Grove-specific configuration, read once from the environment (``GroveConfig.load()``)."""

    MAX_REPORT_LENGTH = Setting("GROVE_MAX_REPORT_LENGTH", positive_int, 50_000,
                                "the longest report content ReportService.create_report accepts, in characters")
