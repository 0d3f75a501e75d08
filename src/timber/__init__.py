"""The design document's import names (``timber.common...``), kept so its samples run unchanged.

Nothing lives here but re-exports of :mod:`timber_core`, the real package: see
:mod:`timber.common` and docs/design-samples.md. New code imports ``timber_core``.
"""
