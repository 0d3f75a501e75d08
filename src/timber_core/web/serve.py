"""``timber serve APP``: an app's web server, run by uvicorn (docs/web.md).

Each worker process builds the app itself from :func:`app_from_environment` (uvicorn's
factory), so each initializes its own kernel in the FastAPI lifespan: several workers on one
``TIMBER_HOME`` or one PostgreSQL database is the normal deployment (the migration lock, the
embedded stores and the secret-key file are safe for several processes).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigurationError

__all__ = ["ENV_APP", "app_from_environment", "serve"]

#: The app the workers serve; set by ``timber serve`` for the worker processes it starts.
ENV_APP = "TIMBER_SERVE_APP"


def app_from_environment() -> Any:
    """Return the FastAPI app of the app named by ``TIMBER_SERVE_APP`` (uvicorn's factory)."""
    from .routes import create_app

    name = os.environ.get(ENV_APP, "").strip()
    if not name:
        raise ConfigurationError(f"{ENV_APP} is not set: start the server with `timber serve APP`")
    return create_app(name)


def serve(app_name: str, *, host: str, port: int, workers: int = 1, reload: bool = False) -> None:
    """Run app ``app_name``'s web server in this process (uvicorn) until it is stopped."""
    import uvicorn

    # The worker processes uvicorn starts inherit this process's environment: this is how they
    # learn which app to build.
    os.environ[ENV_APP] = app_name
    uvicorn.run("timber_core.web.serve:app_from_environment", factory=True, host=host, port=port,
                workers=workers if not reload else None, reload=reload, log_level="info")
