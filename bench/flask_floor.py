"""The lean app's byte work behind bare Flask: what the framework alone costs.

``bench/lean_app.py`` is the leanest WSGI app doing our byte work; mpuflask is
a Flask app doing it with every check, hook, log line and metric. Between the
two sits this app: one Flask route (no hooks, no logging, no metrics) whose
view hands the request to ``lean_app.app`` and returns its answer as a Flask
``Response``. Its ratio to lean is the floor a Flask app can reach on the
per-request rows (small objects, tiny parts); mpuflask's ratio to it is what
mpuflask adds on top of Flask. ``server_bench.py`` runs it as its ``floor``
server (``--no-floor`` leaves it out)::

    python bench/server_bench.py --only small,tiny
"""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import request

from bench import lean_app

app = Flask(__name__)


@app.route("/<path:key>", methods=["GET", "PUT", "POST", "DELETE"])
def handle(key: str) -> Response:
    """Dispatch as lean_app does; answer what it answered."""
    answered: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> None:
        answered.append((status, headers))

    body = lean_app.app(request.environ, start_response)  # type: ignore[arg-type]
    status, headers = answered[-1]
    return Response(body, status=status, headers=headers, direct_passthrough=True)
