"""mpuflask: Cloudflare's R2 multipart-upload Worker as a Flask application.

``create_app()`` builds the app; ``wsgi.py`` serves it with gunicorn. To add
the API to an app of your own, ``MpuFlask(app)`` (mpuflask/extension.py).
docs/tour.md follows one upload through the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from .config import load_config
from .extension import MpuFlask as MpuFlask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build an mpuflask app: defaults, then ``MPUFLASK_*`` env, then ``config``."""
    # No static route: a request without an action would reach Flask's
    # /static/<path> before the Worker's "Missing action type".
    app = Flask(__name__, static_folder=None)
    load_config(app, config)
    MpuFlask(app)
    return app
