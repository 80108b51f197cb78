"""Signed URLs: a backend hands a browser one URL per request it may make.

The signature is an HMAC-SHA256, keyed with ``MPUFLASK_SIGNING_KEY``, over the
method, key, action, expiry and, where they apply, uploadId, partNumber and
the identity the URL acts for. Changing any of them breaks the signature, so
a URL for part 3 cannot upload part 4, another key or another upload, and
cannot be used with another method or after it expires. (S3's presigned URLs
and Uppy's per-part signing work the same way.)

A listing URL (``list``, ``mpu-list``, on ``/``) is signed with its
``prefix`` in the key field: it may list under that prefix only (``cursor``,
``limit`` and ``delimiter`` stay free, so a client can page through).

The signed message (docs/security.md has it in full, with a worked example)::

    MPUFLASK-HMAC-SHA256-V1\\n
    then, for method, key, action, expiry, uploadId, partNumber, identity:
      "-\\n"                             when the field is absent
      <UTF-8 length>:<UTF-8 bytes>\\n    when it is present (even empty)

Every field carries its length, so no field's content can move a boundary.
(The first scheme joined the fields with newlines: a key the caller chose,
``victim/secret\\nget\\n99999999999\\n\\n``, carried a whole other request.)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit

import click

from .actions import LISTING_ACTIONS
from .keypath import key_path
from .setting_types import SECRET
from .urltext import quoted

#: The first line of every signed message: names the scheme and its version.
SCHEME = "MPUFLASK-HMAC-SHA256-V1"

EXPIRES_PARAM = "X-Mpu-Expires"
SIGNATURE_PARAM = "X-Mpu-Signature"
IDENTITY_PARAM = "X-Mpu-Identity"
OWN_PARAMS = (EXPIRES_PARAM, SIGNATURE_PARAM, IDENTITY_PARAM)
#: The query parameters a signed URL may carry once only: the ones it covers.
SINGLE_PARAMS = ("action", "uploadId", "partNumber", "prefix", *OWN_PARAMS)

#: An expiry is seconds since 1970 in at most 12 ASCII digits (year 33658).
MAX_EXPIRES = 10**12 - 1
_EXPIRES = re.compile(r"0|[1-9][0-9]{0,11}")
#: A signature is the HMAC-SHA256 in lower-case hex: 64 digits, no more.
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class SignedUrlError(ValueError):
    """A signed URL that is malformed, forged or expired; the text says which."""


@dataclass(frozen=True)
class Verified:
    """A signed URL that checked out: whom it acts for, and until when."""

    identity: str | None
    expires: int


def _field(value: str | None) -> bytes:
    """One field of the message: absent, or its byte length and its bytes."""
    if value is None:
        return b"-\n"
    # surrogatepass keeps the encoding total (and injective) over Python str.
    data = value.encode("utf-8", "surrogatepass")
    return b"%d:%s\n" % (len(data), data)


def canonical_message(
    *,
    method: str,
    key: str,
    action: str | None,
    expires: int,
    upload_id: str | None = None,
    part_number: str | None = None,
    identity: str | None = None,
) -> bytes:
    """The bytes a signature covers: the scheme's tag, then seven fields.

    Fields are taken as the server sees them: the method as sent (upper
    case), the percent-decoded key, and the query values as decoded text,
    None for a parameter that is absent.
    """
    if not 0 <= expires <= MAX_EXPIRES:
        raise ValueError(f"expires must be 0..{MAX_EXPIRES}, not {expires}")
    fields = [method, key, action, str(expires), upload_id, part_number, identity]
    return SCHEME.encode() + b"\n" + b"".join(_field(value) for value in fields)


def signature(
    secret: str,
    *,
    method: str,
    key: str,
    action: str | None,
    expires: int,
    upload_id: str | None = None,
    part_number: str | None = None,
    identity: str | None = None,
) -> str:
    """The lower-case hex HMAC-SHA256 of :func:`canonical_message`."""
    message = canonical_message(
        method=method,
        key=key,
        action=action,
        expires=expires,
        upload_id=upload_id,
        part_number=part_number,
        identity=identity,
    )
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _count(args: Mapping[str, str], name: str) -> int:
    """How often ``name`` is in the query (a plain mapping holds it once)."""
    getlist = getattr(args, "getlist", None)
    if getlist is None:
        return 1 if name in args else 0
    return len(getlist(name))


def _check_shape(args: Mapping[str, str]) -> tuple[str, str]:
    """The signature and expiry texts of a well-formed signed URL, or refuse."""
    for name in args:
        if name.lower().startswith("x-mpu-") and name not in OWN_PARAMS:
            raise SignedUrlError(
                "unknown signed URL parameter; the known ones are X-Mpu-Expires, "
                "X-Mpu-Signature and X-Mpu-Identity (case matters)"
            )
    for name in SINGLE_PARAMS:
        if _count(args, name) > 1:
            raise SignedUrlError(f"signed URL with {name} given more than once")
    given = args.get(SIGNATURE_PARAM)
    if given is None:
        raise SignedUrlError(f"signed URL without {SIGNATURE_PARAM}")
    expires_text = args.get(EXPIRES_PARAM)
    if expires_text is None:
        raise SignedUrlError(f"signed URL without {EXPIRES_PARAM}")
    if not _EXPIRES.fullmatch(expires_text):
        raise SignedUrlError(
            f"{EXPIRES_PARAM} must be a Unix time in seconds: "
            "1 to 12 ASCII digits, without a leading zero"
        )
    if not _SIGNATURE.fullmatch(given):
        raise SignedUrlError(f"{SIGNATURE_PARAM} must be 64 lower-case hex digits")
    if args.get(IDENTITY_PARAM) == "":
        raise SignedUrlError(f"{IDENTITY_PARAM} must not be empty")
    return given, expires_text


def verify(
    secret: str,
    *,
    method: str,
    key: str,
    args: Mapping[str, str],
    now: float | None = None,
) -> Verified | None:
    """Check a request's signed URL; None if it has no ``X-Mpu-*`` parameter.

    Raises :class:`SignedUrlError` for a malformed URL (checked before any
    number is read), a signature that does not match, or an expired URL.
    """
    if not any(name.lower().startswith("x-mpu-") for name in args):
        return None
    given, expires_text = _check_shape(args)
    expires = int(expires_text)  # 1 to 12 ASCII digits: always readable
    identity = args.get(IDENTITY_PARAM)
    expected = signature(
        secret,
        method=method,
        key=key,
        action=args.get("action"),
        expires=expires,
        upload_id=args.get("uploadId"),
        part_number=args.get("partNumber"),
        identity=identity,
    )
    # Both are 64 ASCII hex digits here: compare_digest's fixed-length case.
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignedUrlError("the URL's signature does not match this request")
    if expires < (time.time() if now is None else now):
        raise SignedUrlError("the signed URL has expired")
    return Verified(identity=identity, expires=expires)


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
    secret=key)``. For ``list`` and ``mpu-list``, ``key`` is the prefix the
    URL may list: the URL goes to ``/`` with ``?prefix=``. Raises ValueError
    for an expiry before 1970 or past 12 digits, and for an empty identity
    (leave it out: None).
    """
    expires = int((time.time() if now is None else now) + expires_in)
    if expires < 0:
        raise ValueError(f"the URL would expire before 1970 ({expires})")
    if expires > MAX_EXPIRES:
        raise ValueError(f"the expiry {expires} has more than 12 digits")
    if identity == "":
        raise ValueError("identity must not be empty (None: no identity)")
    method = method.upper()
    part = None if part_number is None else str(part_number)
    params = {"action": action}
    path = key_path(key)
    if action in LISTING_ACTIONS:
        path = ""
        if key:
            params["prefix"] = key
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
    return f"{base_url.rstrip('/')}/{path}?{urlencode(params)}"


@click.command("sign")
@click.argument("object_url")
@click.option("--method", required=True, help="HTTP method the URL allows.")
@click.option("--action", required=True, help="The action, e.g. mpu-uploadpart.")
@click.option("--upload-id", default=None, help="For part, complete, abort, listparts.")
@click.option("--part-number", type=int, default=None, help="For mpu-uploadpart.")
@click.option("--identity", default=None, help="Who the URL acts for (upload owner).")
@click.option(
    "--prefix",
    default=None,
    help="For list and mpu-list: the prefix the URL may list (default: the "
    "URL's path, so http://host/photos/ lists photos/).",
)
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
    prefix: str | None,
    expires_in: int,
    secret: str,
) -> None:
    """Print a signed URL for one request on OBJECT_URL (http://host/key).

    For a listing (--action list or mpu-list), OBJECT_URL is http://host/
    and the prefix its path or --prefix.
    """
    shown = quoted(object_url)  # its password, and a query, hidden
    try:
        parts = urlsplit(object_url)
        parts.hostname  # noqa: B018 - a bracketed host is checked here
    except ValueError as error:
        raise click.UsageError(f"{shown} is not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(
            f"{shown} is not an http:// or https:// URL with a host, "
            "like http://host:8000/key"
        )
    try:
        SECRET.parse(secret)  # the server's rule: non-empty UTF-8 text
    except ValueError as error:
        raise click.UsageError(f"--secret (MPUFLASK_SIGNING_KEY) {error}") from None
    if "?" in object_url or "#" in object_url:
        raise click.UsageError(
            f"{shown} has a ?query or #fragment, which is not part of a "
            "key: write ? and # in a key as %3F and %23"
        )
    base = f"{parts.scheme}://{parts.netloc}/"
    try:
        key = unquote(parts.path[1:], errors="strict")
    except UnicodeDecodeError:
        raise click.UsageError(
            f"the key of {shown} is not UTF-8 once percent-decoded"
        ) from None
    if prefix is not None:
        if action not in LISTING_ACTIONS:
            raise click.UsageError("--prefix is for --action list or mpu-list")
        key = prefix
    try:
        url = sign_url(
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
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(url)
