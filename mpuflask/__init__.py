"""mpuflask: Cloudflare's R2 multipart-upload Worker as a Flask application.

``create_app()`` builds the app; ``wsgi.py`` serves it with gunicorn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from .api import install_api
from .config import load_config
from .configure import install_configured_hooks
from .deadlines import install_deadlines
from .errors import register_error_handlers
from .events.install import install_events
from .extension import MpuFlask as MpuFlask
from .observability import install_observability
from .observability import make_metrics
from .storage import open_bucket
from .sweeper import gc_command


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build an mpuflask app: defaults, then ``MPUFLASK_*`` env, then ``config``."""
    # No static route: Flask's /static/<path> would shadow keys under static/.
    app = Flask(__name__, static_folder=None)
    load_config(app, config)
    bucket = open_bucket(app.config)
    mpu = MpuFlask(bucket, make_metrics(bucket))
    app.extensions["mpuflask"] = mpu
    install_configured_hooks(app, mpu)
    install_events(app, mpu)
    if app.config["MPUFLASK_SWEEP_ON_START"]:
        bucket.sweep()  # after install_events: expiries it finds are events

    from .blueprints.multipart import bp as multipart_bp
    from .blueprints.objects import bp as objects_bp

    app.register_blueprint(multipart_bp)
    app.register_blueprint(objects_bp)
    install_api(app)
    install_observability(app, mpu.metrics)
    install_deadlines(app)
    register_error_handlers(app)
    app.cli.add_command(gc_command)
    return app
