"""The API blueprint: the one URL rule, and what runs before every action.

Before any view and before any byte of a body is read, :func:`before_action`
answers CORS preflights and runs the auth hooks. A blueprint is built per app,
so registering the hook never touches module-level state.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import request

from .auth import authenticate_request
from .routing import ALL_METHODS
from .routing import AnyPathConverter
from .routing import dispatch


def before_action() -> Response | None:
    """Answer a CORS preflight (its grant is added by flask-cors), else authenticate."""
    if (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
    ):
        response = Response(None, 204)
        del response.headers["Content-Type"]
        return response
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
