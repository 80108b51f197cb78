"""Built-in auth hooks: bearer tokens and signed URLs, and upload ownership.

Each built-in hook abstains (returns None) when its kind of credential is
absent, so tokens and signed URLs can be enabled together; it refuses only a
credential that is present and wrong. When no hook vouches for a request and
auth is configured, :func:`authenticate_request` answers 401.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

from flask import g
from flask import request

from . import signing
from .errors import Forbidden
from .errors import Unauthorized
from .extension import mpuflask
from .hooks import RequestInfo
from .hooks import refusals_counted_as
from .routing import LISTING_ACTIONS
from .routing import request_key

log = logging.getLogger(__name__)

ALL_ACTIONS = frozenset(
    {
        "mpu-create",
        "mpu-uploadpart",
        "mpu-complete",
        "mpu-abort",
        "mpu-listparts",
        "get",
        "delete",
        "list",
        "mpu-list",
    }
)


@dataclass(frozen=True)
class Token:
    """One bearer token and what it may do."""

    secret: str
    identity: str
    prefix: str = ""
    actions: frozenset[str] = ALL_ACTIONS


def _token_digest(text: str) -> bytes:
    """The SHA-256 of a token as the client sent its bytes.

    A WSGI server hands header values over as latin-1 text of the raw bytes,
    so encoding back to latin-1 recovers them (a UTF-8 token's own bytes);
    text outside latin-1 (only from a non-WSGI caller) is taken as UTF-8.
    """
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).digest()


def _token_digest_of_text(secret: str) -> bytes:
    """The SHA-256 of a configured token's UTF-8 bytes (total over any str)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class BearerTokens:
    """Auth hook: ``Authorization: Bearer <token>`` against configured tokens.

    Tokens are compared as SHA-256 digests: ``compare_digest`` then always
    sees two 32-byte strings, whatever length or characters were sent.
    """

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self._digests = [
            (_token_digest_of_text(token.secret), token) for token in tokens
        ]

    def __call__(self, req: RequestInfo) -> str | None:
        header = req.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, presented = header.partition(" ")
        # Only HTTP's own whitespace: str.strip() would eat a UTF-8 token's
        # last byte 0xA0 (latin-1 no-break space), as in "à".
        presented = presented.strip(" \t")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("Unauthorized: expected 'Authorization: Bearer <token>'")
        digest = _token_digest(presented)
        match = None
        # Compare with every token, in constant time each, whatever matches.
        for known, token in self._digests:
            if hmac.compare_digest(known, digest):
                match = token
        if match is None:
            raise Unauthorized("Unauthorized: invalid bearer token")
        if req.action is not None and req.action not in match.actions:
            raise Forbidden(f"Forbidden: this token may not use action {req.action}")
        if req.action in LISTING_ACTIONS and not req.key:
            # A listing that names no prefix lists the token's own.
            g.mpuflask_list_prefix = match.prefix
        elif not req.key.startswith(match.prefix):
            raise Forbidden(
                f"Forbidden: this token may only use keys under '{match.prefix}'"
            )
        return match.identity


class SignedUrls:
    """Auth hook: URLs signed by :func:`mpuflask.signing.sign_url`.

    Abstains when the URL has no ``X-Mpu-*`` parameter; refuses (403) one that
    is malformed, forged or expired, with the reason.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, req: RequestInfo) -> str | None:
        try:
            verified = signing.verify(
                self.secret, method=req.method, key=req.key, args=req.args
            )
        except signing.SignedUrlError as error:
            raise Forbidden(f"Forbidden: {error}") from None
        if verified is None:
            return None
        return verified.identity or "signed-url"


def request_info() -> RequestInfo:
    """The current request as auth hooks see it (the key decoded leniently).

    For a listing (``list``, ``mpu-list``) the key is the ``prefix`` asked
    for (empty if none): what it reads is every key under it, so a hook that
    limits keys by prefix limits listings the same way.
    """
    args: Mapping[str, str] = request.args
    try:
        key = request_key()
    except Exception:  # an invalid key is refused later, by the view
        key = str(request.environ.get("PATH_INFO", ""))[1:]
    if args.get("action") in LISTING_ACTIONS:
        key = args.get("prefix", "")
    return RequestInfo(
        method=request.method,
        action=args.get("action"),
        key=key,
        upload_id=args.get("uploadId"),
        part_number=args.get("partNumber"),
        headers=request.headers,
        remote_addr=request.remote_addr,
        args=args,
    )


def authenticate_request() -> None:
    """Run the auth hooks in order; the first identity wins (``g.mpuflask_identity``).

    Registered as a before-request hook of the API, so it runs before any
    view and before any byte of a body is read.
    """
    state = mpuflask()
    req = request_info()
    identity = None
    with refusals_counted_as("authenticate"):
        for hook in state.auth_hooks:
            identity = hook(req)
            if identity is not None:
                break
        if identity is None and state.requires_identity:
            raise Unauthorized(
                "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL"
            )
    g.mpuflask_request = req
    g.mpuflask_identity = identity


def current_identity() -> str | None:
    """The identity the auth hooks gave the current request (None: anonymous)."""
    identity: str | None = g.get("mpuflask_identity")
    return identity


def check_owner(owner: str | None, operation: str) -> None:
    """Refuse (403) a request on an upload created by another identity."""
    if owner is not None and owner != current_identity():
        g.hook_refused = "ownership"
        raise Forbidden(
            f"{operation}: Forbidden: this upload belongs to another identity"
        )
