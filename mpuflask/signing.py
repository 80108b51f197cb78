"""Signed URLs: a backend hands a browser one URL per request it may make.

The signature is an HMAC-SHA256, keyed with ``MPUFLASK_SIGNING_KEY``, over the
method, key, action, expiry and, where they apply, uploadId, partNumber and
the identity the URL acts for. Changing any of them breaks the signature, so
a URL for part 3 cannot upload part 4, another key or another upload, and
cannot be used with another method or after it expires. (S3's presigned URLs
and Uppy's per-part signing work the same way.)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit

import click

EXPIRES_PARAM = "X-Mpu-Expires"
SIGNATURE_PARAM = "X-Mpu-Signature"
IDENTITY_PARAM = "X-Mpu-Identity"


def signature(
    secret: str,
    *,
    method: str,
    key: str,
    action: str,
    expires: int,
    upload_id: str | None = None,
    part_number: str | None = None,
    identity: str | None = None,
) -> str:
    """The hex HMAC-SHA256 of one request's canonical description."""
    message = "\n".join(
        [
            method.upper(),
            key,
            action,
            str(expires),
            upload_id or "",
            part_number or "",
            identity or "",
        ]
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_url(
    base_url: str,
    key: str,
    *,
    method: str,
    action: str,
    secret: str,
    expires_in: int = 3600,
    upload_id: str | None = None,
    part_number: int | None = None,
    identity: str | None = None,
    now: float | None = None,
) -> str:
    """A URL that allows exactly one kind of request until ``expires_in`` seconds.

    Example: ``sign_url("https://up.example.com/", "videos/cat.mp4",
    method="PUT", action="mpu-uploadpart", upload_id=u, part_number=3,
    secret=key)``.
    """
    expires = int((time.time() if now is None else now) + expires_in)
    part = None if part_number is None else str(part_number)
    params = {"action": action}
    if upload_id is not None:
        params["uploadId"] = upload_id
    if part is not None:
        params["partNumber"] = part
    if identity is not None:
        params[IDENTITY_PARAM] = identity
    params[EXPIRES_PARAM] = str(expires)
    params[SIGNATURE_PARAM] = signature(
        secret,
        method=method,
        key=key,
        action=action,
        expires=expires,
        upload_id=upload_id,
        part_number=part,
        identity=identity,
    )
    return f"{base_url.rstrip('/')}/{quote(key, safe='/')}?{urlencode(params)}"


@click.command("sign")
@click.argument("object_url")
@click.option("--method", required=True, help="HTTP method the URL allows.")
@click.option("--action", required=True, help="The action, e.g. mpu-uploadpart.")
@click.option("--upload-id", default=None, help="For part, complete, abort, listparts.")
@click.option("--part-number", type=int, default=None, help="For mpu-uploadpart.")
@click.option("--identity", default=None, help="Who the URL acts for (upload owner).")
@click.option("--expires-in", type=int, default=3600, show_default=True)
@click.option(
    "--secret",
    envvar="MPUFLASK_SIGNING_KEY",
    required=True,
    help="The server's MPUFLASK_SIGNING_KEY (read from that variable by default).",
)
def sign_command(
    object_url: str,
    method: str,
    action: str,
    upload_id: str | None,
    part_number: int | None,
    identity: str | None,
    expires_in: int,
    secret: str,
) -> None:
    """Print a signed URL for one request on OBJECT_URL (http://host/key)."""
    parts = urlsplit(object_url)
    base = f"{parts.scheme}://{parts.netloc}/"
    key = unquote(parts.path[1:])
    click.echo(
        sign_url(
            base,
            key,
            method=method,
            action=action,
            secret=secret,
            expires_in=expires_in,
            upload_id=upload_id,
            part_number=part_number,
            identity=identity,
        )
    )
