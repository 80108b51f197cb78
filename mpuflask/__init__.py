"""mpuflask: Cloudflare's R2 multipart-upload Worker as a Flask application.

``create_app()`` builds the app; ``mpuflask serve`` serves it with gunicorn.
To add the API to an app of your own, ``MpuFlask(app)`` (mpuflask/extension.py).
docs/tour.md follows one upload through the code.

Importing the package runs nothing heavy (no Flask, no prometheus_client):
gunicorn's master imports ``mpuflask.serving.gunicorn_settings``, which must
set ``PROMETHEUS_MULTIPROC_DIR`` before prometheus_client is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from flask import Flask

    from .extension import MpuFlask as MpuFlask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build an mpuflask app: defaults, then ``MPUFLASK_*`` env, then ``config``."""
    # Imported here, not at the top of the module: see the module docstring.
    from flask import Flask

    from .config import load_config
    from .extension import MpuFlask

    # No static route: a request without an action would reach Flask's
    # /static/<path> before the Worker's "Missing action type".
    app = Flask(__name__, static_folder=None)
    load_config(app, config)
    MpuFlask(app)
    return app


def __getattr__(name: str) -> Any:
    """``mpuflask.MpuFlask``, imported when first asked for (PEP 562)."""
    if name == "MpuFlask":
        from .extension import MpuFlask

        return MpuFlask
    raise AttributeError(f"module 'mpuflask' has no attribute {name!r}")
