"""Canopy's services."""
