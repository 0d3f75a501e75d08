"""Canopy's configuration: the kernel's settings plus Canopy's own."""

from __future__ import annotations

from timber_core.config import Setting, TimberConfig, boolean, text


class CanopyConfig(TimberConfig):
    """Canopy-specific configuration, read once from the environment (``CanopyConfig.load()``)."""

    APP_NAME = "canopy"
    APP_VERSION = "1.0.0"
    ENABLE_PAPER_TRADING = Setting("ENABLE_PAPER_TRADING", boolean, True)
    ENABLE_REAL_TRADING = Setting("ENABLE_REAL_TRADING", boolean, False)
    ALPACA_API_KEY = Setting("ALPACA_API_KEY", text, None)
    ALPACA_SECRET_KEY = Setting("ALPACA_SECRET_KEY", text, None)
    ORDER_CONFIRMATION_REQUIRED = True
