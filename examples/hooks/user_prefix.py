"""A per-user key prefix: each identity may only touch keys under ``<identity>/``.

Runs after an auth hook that established the identity (here: bearer tokens,
``MPUFLASK_AUTH_TOKENS``), as a second auth hook that refuses instead of
vouching. Registered in code, on the app's extension object.

Run it (``python -m examples.hooks.user_prefix`` starts a dev server)::

    curl -X POST -H 'Authorization: Bearer t-alice' \\
      'http://127.0.0.1:5000/alice/cat.mp4?action=mpu-create'     # 200
    curl -X POST -H 'Authorization: Bearer t-alice' \\
      'http://127.0.0.1:5000/bob/cat.mp4?action=mpu-create'       # 403
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from mpuflask import create_app
from mpuflask.auth import bearer_tokens
from mpuflask.errors import Forbidden
from mpuflask.errors import Unauthorized
from mpuflask.hooks import RequestInfo
from mpuflask.tokens import parse_tokens

TOKENS = [
    {"token": "t-alice", "identity": "alice"},
    {"token": "t-bob", "identity": "bob"},
]


def make_app(config: Mapping[str, Any] | None = None) -> Flask:
    """An mpuflask app where each user owns the keys under its name."""
    app = create_app(config)
    mpu = app.extensions["mpuflask"]
    tokens = bearer_tokens(parse_tokens(TOKENS))

    @mpu.authenticate
    def token_and_prefix(req: RequestInfo) -> str:
        identity = tokens(req)
        if identity is None:
            raise Unauthorized("Unauthorized: send 'Authorization: Bearer <token>'")
        if not req.key.startswith(f"{identity}/"):
            raise Forbidden(
                f"Forbidden: {identity} may only use keys under '{identity}/'"
            )
        return identity

    return app


if __name__ == "__main__":
    make_app().run()
