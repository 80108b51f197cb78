"""mpuflask: Cloudflare's R2 multipart-upload Worker as a Flask application.

``create_app()`` builds the app; ``mpuflask serve`` serves it with gunicorn.
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

    from .api import install_api
    from .config import load_config
    from .configure import install_configured_hooks
    from .deadlines import install_deadlines
    from .errors import register_error_handlers
    from .extension import MpuFlask
    from .observability import install_observability
    from .observability import make_metrics
    from .storage import open_bucket
    from .sweeper import gc_command

    # No static route: Flask's /static/<path> would shadow keys under static/.
    app = Flask(__name__, static_folder=None)
    load_config(app, config)
    bucket = open_bucket(app.config)
    if app.config["MPUFLASK_SWEEP_ON_START"]:
        bucket.sweep()
    mpu = MpuFlask(bucket, make_metrics(bucket))
    app.extensions["mpuflask"] = mpu
    install_configured_hooks(app, mpu)

    from .blueprints.listing import bp as listing_bp
    from .blueprints.multipart import bp as multipart_bp
    from .blueprints.objects import bp as objects_bp

    app.register_blueprint(multipart_bp)
    app.register_blueprint(objects_bp)
    app.register_blueprint(listing_bp)
    install_api(app)
    install_observability(app, mpu.metrics)
    install_deadlines(app)
    register_error_handlers(app)
    app.cli.add_command(gc_command)
    return app


def __getattr__(name: str) -> Any:
    """``mpuflask.MpuFlask``, imported when first asked for (PEP 562)."""
    if name == "MpuFlask":
        from .extension import MpuFlask

        return MpuFlask
    raise AttributeError(f"module 'mpuflask' has no attribute {name!r}")
