"""``timber.common.services``: the design document's names for :mod:`timber_core.services`."""
