"""What the signed-URL tests share: the secret, the answers, URLs signed for the test client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mpuflask.signing import sign_url

SECRET = "signing-secret"
MISMATCH = "Forbidden: the URL's signature does not match this request"
BAD_EXPIRES = (
    "Forbidden: X-Mpu-Expires must be a Unix time in seconds: "
    "1 to 12 ASCII digits, without a leading zero"
)
BAD_SIGNATURE = "Forbidden: X-Mpu-Signature must be 64 lower-case hex digits"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def signed(key: str, method: str, action: str, **kwargs: Any) -> str:
    """The path and query of a URL signed with :data:`SECRET`."""
    return _path(
        sign_url(
            "http://x/", key, method=method, action=action, secret=SECRET, **kwargs
        )
    )
