"""Cross-origin requests: preflights answered, origins granted by configuration.

A browser asks before a cross-origin PUT or DELETE (a CORS preflight:
``OPTIONS`` with ``Access-Control-Request-Method``). :func:`answer_preflight`
answers it with an empty 204 as the app's first before-request hook, before
authentication (a browser sends no credentials on a preflight); flask-cors,
installed only when ``MPUFLASK_CORS_ORIGINS`` lists origins, adds the grant.
"""

from __future__ import annotations

import re

from flask import Flask
from flask import Response
from flask import request

#: Response headers a browser script may read: ETag above all, or it cannot
#: collect the part etags that mpu-complete needs.
EXPOSED_HEADERS = ["ETag", "Content-Length", "Content-Range", "Accept-Ranges"]
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "Content-MD5",
    "x-amz-checksum-sha256",
    "Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Content-Language",
    "Content-Disposition",
    "Content-Encoding",
    "Cache-Control",
    "Expires",
    "X-Request-Id",
]


def answer_preflight() -> Response | None:
    """App-wide before-request hook: a CORS preflight gets an empty 204."""
    if (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
    ):
        response = Response(None, 204)
        del response.headers["Content-Type"]
        return response
    return None


def install_cors(app: Flask) -> None:
    """Grant CORS to ``MPUFLASK_CORS_ORIGINS`` only (flask-cors does the headers)."""
    origins = app.config["MPUFLASK_CORS_ORIGINS"]
    if not origins:
        return
    from flask_cors import CORS

    listed = origins.split(",") if isinstance(origins, str) else list(origins)
    CORS(
        app,
        origins=[_exactly(origin.strip()) for origin in listed if origin.strip()],
        methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
        vary_header=True,
    )


def _exactly(origin: str) -> str | re.Pattern[str]:
    """``origin`` as flask-cors must match it: exactly. flask-cors reads a
    string with ``[`` or ``*`` in it as a regular expression, matched at the
    start only: ``http://[::1]:8080`` then matched nothing, and a pattern
    could match more than it says. ``*`` alone is its "any origin"."""
    if origin == "*":
        return origin
    return re.compile(re.escape(origin) + r"\Z", re.IGNORECASE)
