"""Canopy, the trading app: trading sessions and orders on Timber."""

__version__ = "1.0.0"
