"""Turn configuration into hooks: built-ins first, then dotted paths, then CORS."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from .auth import BearerTokens
from .auth import SignedUrls
from .extension import MpuFlask
from .validators import configured_validators

log = logging.getLogger(__name__)

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


def install_configured_hooks(app: Flask, mpu: MpuFlask) -> None:
    """Register the hooks the app's configuration names, in a fixed order.

    Built-in auth (tokens, then signed URLs), then ``MPUFLASK_AUTH_HOOKS``;
    built-in validators, then ``MPUFLASK_PART_VALIDATORS`` /
    ``MPUFLASK_COMPLETE_VALIDATORS``. Hooks added in code come after these.
    The values were parsed by mpuflask/config.py (tokens, imported hooks).
    """
    config: dict[str, Any] = app.config
    tokens = config["MPUFLASK_AUTH_TOKENS"]
    if tokens:
        mpu.authenticate(BearerTokens(list(tokens)))
    if config["MPUFLASK_SIGNING_KEY"]:
        mpu.authenticate(SignedUrls(str(config["MPUFLASK_SIGNING_KEY"])))
    for hook in config["MPUFLASK_AUTH_HOOKS"]:
        mpu.authenticate(hook)
    if config["MPUFLASK_AUTH_REQUIRED"] is not None:
        mpu.auth_required = bool(config["MPUFLASK_AUTH_REQUIRED"])
    part_validators, complete_validators = configured_validators(config)
    for part_validator in [*part_validators, *config["MPUFLASK_PART_VALIDATORS"]]:
        mpu.validate_part(part_validator)
    for done_validator in [
        *complete_validators,
        *config["MPUFLASK_COMPLETE_VALIDATORS"],
    ]:
        mpu.validate_complete(done_validator)
    _install_cors(app)


def _install_cors(app: Flask) -> None:
    """Grant CORS to ``MPUFLASK_CORS_ORIGINS`` only (flask-cors does the headers)."""
    origins = app.config["MPUFLASK_CORS_ORIGINS"]
    if not origins:
        return
    from flask_cors import CORS

    listed = origins.split(",") if isinstance(origins, str) else list(origins)
    CORS(
        app,
        origins=[origin.strip() for origin in listed if origin.strip()],
        methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
        vary_header=True,
    )
