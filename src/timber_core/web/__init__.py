"""Timber in an app's web server (docs/web.md); needs the ``timber-core[web]`` extra.

* :mod:`.asgi` -- :class:`TimberMiddleware`: each request runs in its app's context and, with a
  valid bearer token, its user's ``user_context``.
* :mod:`.wsgi` -- the same for Flask and other WSGI apps (:func:`~.wsgi.init_flask`).
* :mod:`.errors` -- the one mapping of errors to HTTP statuses and JSON.
* :mod:`.routes` -- :func:`create_app` / :func:`timber_router`: the endpoints every app has.
"""

from __future__ import annotations

from .asgi import TimberMiddleware
from .routes import create_app, current_user_id, timber_router

__all__ = ["TimberMiddleware", "create_app", "timber_router", "current_user_id"]
