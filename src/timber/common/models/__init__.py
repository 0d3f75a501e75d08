"""``timber.common.models``: the design document's names for :mod:`timber_core.models`."""
