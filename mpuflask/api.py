"""The API blueprint: the one URL rule, and what runs before every action.

Before any view and before any byte of a body is read, :func:`before_action`
answers CORS preflights, serves the service endpoints and runs the auth hooks.
A blueprint is built per app, so registering the hook never touches
module-level state.
"""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import request

from .auth import authenticate_request
from .extension import mpuflask
from .observability import scrape
from .routing import ALL_METHODS
from .routing import AnyPathConverter
from .routing import dispatch
from .webui import page
from .webui import wants_page

log = logging.getLogger(__name__)

#: Read by the health check: any answer (even "no object") proves the store works.
HEALTH_PROBE_KEY = "mpuflask-health-probe"


def health() -> Response:
    """``GET /?action=health``: 200 if the store answers, else 503."""
    try:
        mpuflask().bucket.head(HEALTH_PROBE_KEY)
    except Exception as error:  # any failure of the store means unhealthy
        log.warning("health check failed: %r", error)
        return Response(
            '{"status":"unavailable"}', 503, content_type="application/json"
        )
    return Response('{"status":"ok"}', 200, content_type="application/json")


def metrics() -> Response:
    """``GET /?action=metrics``: Prometheus metrics of all workers."""
    return scrape(mpuflask().metrics)


#: Served on ``/`` only: the one path that is never a key (a key has >= 1 byte).
SERVICE_ACTIONS = {"health": health, "metrics": metrics}


def before_action() -> Response | None:
    """Before every view: preflights, the service endpoints, then authentication.

    CORS preflights get an empty 204 (flask-cors adds the grant, or not).
    ``GET /?action=health`` and ``GET /?action=metrics`` need no credentials,
    nor does the upload page at ``GET /`` (when ``MPUFLASK_WEB_UI`` is on): the
    page asks for the token itself and sends it with each API request.
    """
    if (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
    ):
        response = Response(None, 204)
        del response.headers["Content-Type"]
        return response
    if wants_page():
        return page()
    service = SERVICE_ACTIONS.get(request.args.get("action", ""))
    if (
        service is not None
        and request.path == "/"
        and request.method in ("GET", "HEAD")
    ):
        return service()
    authenticate_request()
    return None


def install_api(app: Flask) -> None:
    """Add the catch-all rule (any path is a key) on a per-app blueprint."""
    app.url_map.converters["anypath"] = AnyPathConverter
    api = Blueprint("api", __name__)
    api.before_request(before_action)
    api.add_url_rule(
        "/<anypath:path>",
        endpoint="dispatch",
        view_func=dispatch,
        methods=ALL_METHODS,
        strict_slashes=False,
        merge_slashes=False,
        provide_automatic_options=False,
    )
    app.register_blueprint(api)
