"""Signing webhook bodies, and checking a signature on the receiving end.

The header, as Stripe signs its webhooks::

    X-Mpuflask-Signature: t=1717840200,v1=5f0c...e1

``t`` is the Unix time of the attempt, ``v1`` the hex HMAC-SHA256, keyed with
``MPUFLASK_WEBHOOK_SECRET`` (its UTF-8 bytes), of ``<t>.<body>``: the ASCII
digits of ``t``, one ``.``, then the body's exact bytes. ``t`` is digits only,
so no body can pass for another time. A receiver recomputes the HMAC, compares
in constant time, and refuses a ``t`` too far from its clock (a replayed old
delivery). A header may carry several ``v1`` (accepted if any matches), so a
sender can sign with an old and a new secret while they rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

SIGNATURE_HEADER = "X-Mpuflask-Signature"
#: How far a signature's time may be from the receiver's clock, by default.
DEFAULT_TOLERANCE = 300

_PAIR = re.compile(r"([a-z0-9]+)=([^,]*)")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class InvalidSignature(ValueError):
    """A webhook delivery whose signature does not hold; ``str()`` says why."""


def sign_webhook(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``X-Mpuflask-Signature`` value for ``body`` sent at ``timestamp``."""
    moment = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={moment},v1={_hmac(secret, moment, body)}"


def verify_webhook(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature; return its event as a dict.

    ``body`` is the request body exactly as received (not re-encoded JSON),
    ``header`` the ``X-Mpuflask-Signature`` value. Raises
    :class:`InvalidSignature` if the header is missing or malformed, no
    ``v1`` matches, or ``t`` is more than ``tolerance`` seconds from ``now``.

    Example (Flask)::

        @app.post("/hooks/mpuflask")
        def receive():
            try:
                event = verify_webhook(request.get_data(),
                                       request.headers.get("X-Mpuflask-Signature"),
                                       SECRET)
            except InvalidSignature as error:
                return str(error), 400
            if not seen_before(event["id"]):   # at-least-once: drop duplicates
                handle(event)
            return "", 204
    """
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    moment, signatures = _parse(header)
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance:
        raise InvalidSignature(
            f"signed at {moment}, {abs(current - moment):.0f} s from now "
            f"(tolerance {tolerance:g} s)"
        )
    expected = _hmac(secret, moment, body).encode()
    if not any(hmac.compare_digest(expected, given.encode()) for given in signatures):
        raise InvalidSignature("no v1 signature matches the body and the secret")
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidSignature("the body is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidSignature("the body is not a JSON object")
    return event


def _hmac(secret: str, moment: int, body: bytes) -> str:
    message = str(moment).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int, list[str]]:
    moment: int | None = None
    signatures = []
    for item in header.split(","):
        found = _PAIR.fullmatch(item.strip())
        if found is None:
            raise InvalidSignature(f"malformed {SIGNATURE_HEADER} header")
        name, value = found.groups()
        if name == "t":
            if not (value.isascii() and value.isdigit() and len(value) <= 12):
                raise InvalidSignature(f"malformed time t={value[:20]!r}")
            moment = int(value)
        elif name == "v1" and _HEX64.fullmatch(value):
            signatures.append(value)
    if moment is None:
        raise InvalidSignature(f"no t= in the {SIGNATURE_HEADER} header")
    if not signatures:
        raise InvalidSignature(f"no v1= signature in the {SIGNATURE_HEADER} header")
    return moment, signatures
