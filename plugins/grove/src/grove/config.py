"""Grove's configuration: the kernel's settings plus Grove's own."""

from __future__ import annotations

from timber_core.config import Setting, TimberConfig, boolean, text


class GroveConfig(TimberConfig):
    """Grove-specific configuration, read once from the environment (``GroveConfig.load()``)."""

    APP_NAME = "grove"
    APP_VERSION = "1.0.0"
    ENABLE_PUBLIC_REPORTS = Setting("ENABLE_PUBLIC_REPORTS", boolean, True)
    ENABLE_AI_ANALYSIS = Setting("ENABLE_AI_ANALYSIS", boolean, True)
    OPENAI_API_KEY = Setting("OPENAI_API_KEY", text, None)
    MAX_REPORT_LENGTH = 50_000
