"""The upload page: ``GET /`` and its assets ``GET /?asset=<name>``.

Why ``/``: every other path is a possible object key, but a key has at least
one byte, so ``/`` is the one path that can never name an object; the page
and its assets (selected by the query) live there. The Worker answers
``GET /`` with "Missing action type", and so do we unless
``MPUFLASK_WEB_UI`` is on (docs/browser.md): only then is :data:`bp`
registered. Its one route has no action, so it answers ``GET /`` and
``GET /?asset=app.js``; ``GET /?action=...`` goes to that action.
"""

from __future__ import annotations

import json
from importlib import resources

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from .errors import ApiError
from .rules import MAX_KEY_BYTES
from .rules import MAX_PART_NUMBER

_JS = "text/javascript; charset=utf-8"

#: The files of the page (in ``mpuflask/webui/``), and the types they are served with.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "app.js": _JS,  # the form: wires the controls to the modules below
    "upload.js": _JS,  # the flow: create -> parts -> complete, resume, cancel
    "api.js": _JS,  # one request: URL per auth mode, retries with backoff
    "parts.js": _JS,  # R2's part-size rules (as mpuflask/client/parts.py)
    "resume.js": _JS,  # the resume records in localStorage
    "md5.js": _JS,  # MD5, for each part's etag and the object's
}

#: Not a file: the server's part limits, which the page's part plan must obey.
CONFIG_ASSET = "config.json"


def _limits() -> bytes:
    """``config.json``: what the page needs to cut a file as this server wants."""
    config = current_app.config
    return json.dumps(
        {
            "minPartSize": config["MPUFLASK_MIN_PART_SIZE"],
            "maxPartSize": config["MPUFLASK_MAX_PART_SIZE"],
            "maxParts": MAX_PART_NUMBER,
            "maxKeyBytes": MAX_KEY_BYTES,
        }
    ).encode()


bp = Blueprint("webui", __name__)


@bp.route("/", methods=["GET", "HEAD"], provide_automatic_options=False)
def page() -> Response:
    """Serve the page, or one of its assets named by ``?asset=``."""
    name = request.args.get("asset", "index.html")
    if name == CONFIG_ASSET:
        body = _limits()
        content_type = "application/json"
    else:
        known = ASSETS.get(name)
        if known is None:
            raise ApiError(f"Unknown asset {name}", 404)
        body = resources.files("mpuflask").joinpath("webui", name).read_bytes()
        content_type = known
    response = Response(body, 200, content_type=content_type)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; connect-src *; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    )
    return response
