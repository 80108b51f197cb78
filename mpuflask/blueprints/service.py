"""The service actions on ``/``: ``GET /?action=health`` and ``GET /?action=metrics``.

Not the Worker's: an operator's. They live on ``/``, the one path that is
never a key (a key has at least one byte), and need no credentials
(:attr:`~mpuflask.extension.MpuFlask.public_endpoints`).
"""

from __future__ import annotations

import logging

from flask import Response

from ..current import bucket
from ..current import mpuflask
from ..observability import scrape
from ..routing import ActionBlueprint

log = logging.getLogger(__name__)

bp = ActionBlueprint("service", __name__)

#: Read by the health check: any answer (even "no object") proves the store works.
HEALTH_PROBE_KEY = "mpuflask-health-probe"


@bp.action("health", methods=["GET", "HEAD"], rule="/")
def health() -> Response:
    """``GET /?action=health``: 200 if the store answers, else 503."""
    try:
        bucket().head(HEALTH_PROBE_KEY)
    except Exception as error:  # any failure of the store means unhealthy
        log.warning("health check failed: %r", error)
        return Response(
            '{"status":"unavailable"}', 503, content_type="application/json"
        )
    return Response('{"status":"ok"}', 200, content_type="application/json")


@bp.action("metrics", methods=["GET", "HEAD"], rule="/")
def metrics() -> Response:
    """``GET /?action=metrics``: Prometheus metrics of all workers."""
    return scrape(mpuflask().metrics)
