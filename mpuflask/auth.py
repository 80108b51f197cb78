"""The built-in auth hooks: bearer tokens and signed URLs, as plain functions.

Each is made from configuration by :class:`~mpuflask.extension.MpuFlask`
(``MPUFLASK_AUTH_TOKENS``, ``MPUFLASK_SIGNING_KEY``) and runs as any auth hook
does (docs/hooks.md). Each abstains (returns None) when its kind of
credential is absent, so tokens and signed URLs can be enabled together; it
refuses only a credential that is present and wrong.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from flask import g

from . import signing
from .actions import LISTING_ACTIONS
from .errors import Forbidden
from .errors import Unauthorized
from .hooks import AuthHook
from .hooks import RequestInfo


@dataclass(frozen=True)
class Token:
    """One bearer token and what it may do: ``actions`` None is every action,
    an app's own included; a set names some of :data:`mpuflask.actions.ACTIONS`."""

    secret: str
    identity: str
    prefix: str = ""
    actions: frozenset[str] | None = None


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


def bearer_tokens(tokens: Sequence[Token]) -> AuthHook:
    """Auth hook: ``Authorization: Bearer <token>`` against ``tokens``.

    Abstains without an ``Authorization`` header or with another scheme's;
    refuses a Bearer header whose token is missing or unknown. Tokens are
    compared as SHA-256 digests: ``compare_digest`` then always sees two
    32-byte strings, whatever length or characters were sent.
    """
    digests = [(_token_digest_of_text(token.secret), token) for token in tokens]

    def check_bearer_token(req: RequestInfo) -> str | None:
        header = req.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer":
            # Another scheme (Basic from a proxy or a browser, an app's own):
            # not a bearer token, so left to the other hooks.
            return None
        # Only HTTP's own whitespace: str.strip() would eat a UTF-8 token's
        # last byte 0xA0 (latin-1 no-break space), as in "à".
        presented = presented.strip(" \t")
        if not presented:
            raise Unauthorized("Unauthorized: expected 'Authorization: Bearer <token>'")
        digest = _token_digest(presented)
        match = None
        # Compare with every token, in constant time each, whatever matches.
        for known, token in digests:
            if hmac.compare_digest(known, digest):
                match = token
        if match is None:
            raise Unauthorized("Unauthorized: invalid bearer token")
        allowed = match.actions
        if req.action is not None and allowed is not None and req.action not in allowed:
            raise Forbidden(f"Forbidden: this token may not use action {req.action}")
        if req.action in LISTING_ACTIONS and not req.key:
            # A listing that names no prefix lists the token's own.
            g.mpuflask_list_prefix = match.prefix
        elif not req.key.startswith(match.prefix):
            raise Forbidden(
                f"Forbidden: this token may only use keys under '{match.prefix}'"
            )
        return match.identity

    return check_bearer_token


def signed_urls(secret: str) -> AuthHook:
    """Auth hook: URLs signed by :func:`mpuflask.signing.sign_url` with ``secret``.

    Abstains when the URL has no ``X-Mpu-*`` parameter; refuses (403) one that
    is malformed, forged or expired, with the reason.
    """

    def check_signed_url(req: RequestInfo) -> str | None:
        try:
            verified = signing.verify(
                secret, method=req.method, key=req.key, args=req.args
            )
        except signing.SignedUrlError as error:
            raise Forbidden(f"Forbidden: {error}") from None
        if verified is None:
            return None
        return verified.identity or "signed-url"

    return check_signed_url
