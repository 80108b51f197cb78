"""A Flask user's own hooks on mpuflask's two blueprints, as Flask wants them.

Flask takes a blueprint's hooks when an app registers the blueprint, and
refuses new ones after that; so a user declares them at import time, before
any app exists. ``python -m tests.user_blueprint_hooks CONFIG_JSON`` does so in
a fresh interpreter (the test session's other apps have long registered the
blueprints), then sends one request per case and prints what each hook saw,
as JSON. tests/test_blueprint_hooks.py reads it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from flask import Response
from flask import g
from flask import request
from flask.blueprints import Blueprint

from mpuflask import create_app
from mpuflask.blueprints import multipart
from mpuflask.blueprints import objects
from mpuflask.errors import ObjectNotFound


class Teapot(Exception):
    """Raised by a user's before_request hook when asked to (X-Teapot)."""


def add_hooks(bp: Blueprint) -> None:
    """before_request, after_request and errorhandler, each naming ``bp``."""

    @bp.before_request
    def before() -> None:
        g.before = [*g.get("before", []), bp.name]
        if "X-Teapot" in request.headers:
            raise Teapot(bp.name)

    @bp.after_request
    def after(response: Response) -> Response:
        response.headers["X-Before"] = ",".join(g.get("before", []))
        response.headers["X-After"] = bp.name
        response.headers["X-Endpoint"] = str(request.endpoint)
        return response

    @bp.errorhandler(Teapot)
    def teapot(error: Teapot) -> tuple[str, int]:
        return f"{bp.name} caught the teapot from {error}", 418


add_hooks(multipart.bp)
add_hooks(objects.bp)


@objects.bp.errorhandler(ObjectNotFound)
def not_found(error: ObjectNotFound) -> tuple[str, int]:
    """A user's own 404 page, for the objects blueprint's actions only."""
    return f"no such object: {request.view_args}", 404


#: (method, url, extra headers): every action (U: an open upload of ``k``),
#: then requests that no action takes, then the user's hook raising.
CASES: list[tuple[str, str, dict[str, str]]] = [
    ("POST", "/k?action=mpu-create", {}),
    ("PUT", "/k?action=mpu-uploadpart&uploadId={U}&partNumber=1", {}),
    ("GET", "/k?action=mpu-listparts&uploadId={U}", {}),
    ("POST", "/k?action=mpu-complete&uploadId={U}", {}),
    ("DELETE", "/k?action=mpu-abort&uploadId={U}", {}),
    ("GET", "/k?action=get", {}),
    ("HEAD", "/k?action=get", {}),
    ("DELETE", "/k?action=delete", {}),
    ("GET", "/?action=health", {}),
    ("GET", "/k", {}),
    ("GET", "/k?action=junk", {}),
    ("PUT", "/k?action=get", {}),
    ("PATCH", "/k?action=get", {}),
    ("POST", "/k?action=mpu-create", {"X-Teapot": "1"}),
    ("GET", "/k?action=get", {"X-Teapot": "1"}),
    ("GET", "/k", {"X-Teapot": "1"}),
]


def run(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Each case's status, text and the hooks' headers."""
    client = create_app(config).test_client()
    upload_id = client.post("/k?action=mpu-create").json["uploadId"]  # type: ignore[index]
    seen = []
    for method, url, headers in CASES:
        response = client.open(
            url.format(U=upload_id), method=method, headers=headers, data=b"x"
        )
        seen.append(
            {
                "case": f"{method} {url} {headers}",
                "status": response.status_code,
                "text": response.text,
                "before": response.headers.get("X-Before"),
                "after": response.headers.get("X-After"),
                "endpoint": response.headers.get("X-Endpoint"),
            }
        )
    return seen


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
