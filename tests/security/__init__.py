"""Isolation against a hostile or mistaken app: user checks in the services, bad input everywhere."""
