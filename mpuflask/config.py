"""Configuration: defaults, then ``MPUFLASK_*`` environment variables, then code.

Keys keep their ``MPUFLASK_`` prefix inside ``app.config`` (Flask's
``from_prefixed_env`` would strip it). Environment values are parsed as JSON
when they parse (``MPUFLASK_DURABLE=false``, ``MPUFLASK_MIN_PART_SIZE=1024``) and
kept as strings otherwise (``MPUFLASK_DATA_DIR=/srv/mpu``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from .rules import DEFAULT_MAX_PART_SIZE
from .rules import DEFAULT_MIN_PART_SIZE
from .rules import MIB

PREFIX = "MPUFLASK_"

DEFAULTS: dict[str, Any] = {
    # Where the filesystem store keeps uploads and objects.
    "MPUFLASK_DATA_DIR": "./data",
    # Which store: "filesystem" (embedded default) or "s3" (docs/scale-out.md).
    "MPUFLASK_STORE": "filesystem",
    # R2's rule: every part but the last is at least this big (tests lower it).
    "MPUFLASK_MIN_PART_SIZE": DEFAULT_MIN_PART_SIZE,
    # R2's rule: no part is bigger than this (5 GiB).
    "MPUFLASK_MAX_PART_SIZE": DEFAULT_MAX_PART_SIZE,
    # Unfinished uploads expire this many seconds after creation (R2: 7 days).
    "MPUFLASK_UPLOAD_TTL": 7 * 24 * 3600,
    # fsync part files, manifests and directories before acknowledging.
    "MPUFLASK_DURABLE": True,
    # Bytes read from a request body or a stored file at a time.
    "MPUFLASK_CHUNK_SIZE": 1 * MIB,
    # A part whose client sends nothing for this many seconds is cut off (408).
    "MPUFLASK_BODY_TIMEOUT": 60,
    # Largest mpu-complete JSON body (10,000 parts need about 700 KB).
    "MPUFLASK_MAX_COMPLETE_BODY": 2 * MIB,
    # Sweep crash leftovers and expired uploads when the app starts.
    "MPUFLASK_SWEEP_ON_START": True,
    # And every this many seconds inside each gunicorn worker (one at a time).
    "MPUFLASK_SWEEP_INTERVAL": 600,
    # -- hooks (docs/hooks.md) --
    # Bearer tokens: "tok1,tok2" or a JSON list of {"token", "identity",
    # "prefix", "actions"}; empty: no token auth.
    "MPUFLASK_AUTH_TOKENS": "",
    # Secret for signed URLs (mpuflask.signing.sign_url); empty: none accepted.
    "MPUFLASK_SIGNING_KEY": "",
    # Extra hooks by dotted path, comma-separated "package.module:callable".
    "MPUFLASK_AUTH_HOOKS": "",
    "MPUFLASK_PART_VALIDATORS": "",
    "MPUFLASK_COMPLETE_VALIDATORS": "",
    # Refuse requests no auth hook vouched for; null: yes iff any auth is set.
    "MPUFLASK_AUTH_REQUIRED": None,
    # Built-in validators; 0 or empty turns one off.
    "MPUFLASK_PART_MAX_BYTES": 0,
    "MPUFLASK_PART_CONTENT_TYPES": "",
    "MPUFLASK_VERIFY_CHECKSUMS": True,
    "MPUFLASK_MAX_OBJECT_SIZE": 0,
    "MPUFLASK_MAX_PARTS": 0,
    # Serve the upload page at GET / (docs/browser.md). Off by default: an
    # operator decides whether a server offers a UI at all.
    "MPUFLASK_WEB_UI": False,
    # Browser origins allowed by CORS: "https://a.example,https://b.example"
    # or "*"; empty: no cross-origin access.
    "MPUFLASK_CORS_ORIGINS": "",
    # -- the s3 store (docs/scale-out.md); None leaves a setting to boto3's
    # usual sources (AWS_* variables, ~/.aws, instance roles) --
    # The engine's URL, e.g. https://<account>.r2.cloudflarestorage.com.
    "MPUFLASK_S3_ENDPOINT": None,
    # The bucket; it must exist (mpuflask never creates or deletes buckets).
    "MPUFLASK_S3_BUCKET": None,
    # Signing region: "auto" for R2, the bucket's region for AWS.
    "MPUFLASK_S3_REGION": None,
    "MPUFLASK_S3_ACCESS_KEY_ID": None,
    "MPUFLASK_S3_SECRET_ACCESS_KEY": None,
    # "auto", "path" or "virtual": how the bucket goes into the URL.
    "MPUFLASK_S3_ADDRESSING_STYLE": "auto",
    # Upload records live under this prefix in the bucket; keys there are refused.
    "MPUFLASK_S3_STATE_PREFIX": ".mpuflask/",
    # Parts on a staging key, copied to the object's key at complete: needed by
    # engines that cannot drop unlisted parts (Ceph). "auto": probe once.
    "MPUFLASK_S3_STAGE_UPLOADS": "auto",
    # Where chunked part bodies (no Content-Length) wait before going up.
    "MPUFLASK_S3_SPOOL_DIR": None,
    # Connections to the engine per gateway process (>= gunicorn threads).
    "MPUFLASK_S3_MAX_CONNECTIONS": 32,
    # Tries per engine request (botocore's standard retry mode).
    "MPUFLASK_S3_MAX_ATTEMPTS": 3,
    # Seconds before sweep takes an upload without a record, or a staging
    # object nobody references, for a crash leftover (engine clock vs ours).
    "MPUFLASK_S3_ORPHAN_GRACE": 900,
    # Seconds a complete holds its claim on an upload before another request
    # may take over and finish it (renewed while a long copy runs).
    "MPUFLASK_S3_COMPLETE_LEASE": 30,
}

_POSITIVE_INTS = (
    "MPUFLASK_MIN_PART_SIZE",
    "MPUFLASK_MAX_PART_SIZE",
    "MPUFLASK_UPLOAD_TTL",
    "MPUFLASK_CHUNK_SIZE",
    "MPUFLASK_MAX_COMPLETE_BODY",
    "MPUFLASK_BODY_TIMEOUT",
)

#: s3 settings that must stay strings (or None: boto3 decides).
_S3_STRINGS = (
    "MPUFLASK_S3_ENDPOINT",
    "MPUFLASK_S3_REGION",
    "MPUFLASK_S3_ACCESS_KEY_ID",
    "MPUFLASK_S3_SECRET_ACCESS_KEY",
    "MPUFLASK_S3_SPOOL_DIR",
)


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``overrides``."""
    app.config.update(DEFAULTS)
    app.config.update(_from_environment(os.environ))
    if overrides:
        app.config.update(overrides)
    _check(app.config)


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(PREFIX):
            continue
        try:
            values[name] = json.loads(text)
        except ValueError:
            values[name] = text
    return values


def _check(config: Mapping[str, Any]) -> None:
    """Refuse a bad setting at start-up rather than on some later request."""
    for name in _POSITIVE_INTS:
        value = config[name]
        if type(value) is not int or value <= 0:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if config["MPUFLASK_MIN_PART_SIZE"] > config["MPUFLASK_MAX_PART_SIZE"]:
        raise ValueError("MPUFLASK_MIN_PART_SIZE is larger than MPUFLASK_MAX_PART_SIZE")
    if not isinstance(config["MPUFLASK_DURABLE"], bool):
        raise ValueError("MPUFLASK_DURABLE must be true or false")
    if config["MPUFLASK_STORE"] == "s3":
        _check_s3(config)


def _check_s3(config: Mapping[str, Any]) -> None:
    """The s3 store's settings: the bucket is required, the rest typed."""
    bucket = config["MPUFLASK_S3_BUCKET"]
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("MPUFLASK_STORE=s3 needs MPUFLASK_S3_BUCKET (a bucket name)")
    for name in _S3_STRINGS:
        value = config[name]
        if value is not None and not isinstance(value, str):
            # The environment is read as JSON: a secret of digits would arrive
            # as a number, which is no longer the secret.
            raise ValueError(
                f"{name} must be a string, not {value!r} (in the environment, "
                "quote it as a JSON string)"
            )
    if config["MPUFLASK_S3_ADDRESSING_STYLE"] not in ("auto", "path", "virtual"):
        raise ValueError(
            'MPUFLASK_S3_ADDRESSING_STYLE must be "auto", "path" or "virtual"'
        )
    if config["MPUFLASK_S3_STAGE_UPLOADS"] not in ("auto", True, False):
        raise ValueError('MPUFLASK_S3_STAGE_UPLOADS must be "auto", true or false')
    prefix = config["MPUFLASK_S3_STATE_PREFIX"]
    if not isinstance(prefix, str) or not prefix.endswith("/") or len(prefix) > 256:
        raise ValueError(
            "MPUFLASK_S3_STATE_PREFIX must end in / (at most 256 characters)"
        )
    for name in ("MPUFLASK_S3_MAX_CONNECTIONS", "MPUFLASK_S3_MAX_ATTEMPTS"):
        value = config[name]
        if type(value) is not int or value <= 0:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    for name in ("MPUFLASK_S3_ORPHAN_GRACE", "MPUFLASK_S3_COMPLETE_LEASE"):
        value = config[name]
        if type(value) not in (int, float) or value < 0:
            raise ValueError(f"{name} must be a number of seconds, not {value!r}")
