"""``timber.common.utils``: the design document's names for the kernel's utilities."""
