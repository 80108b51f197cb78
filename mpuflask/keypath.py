"""A key as the path of a URL, so that every hop on the way delivers the same key.

A key is any string, so some keys have URL paths that clients and proxies
rewrite before sending: browsers, curl, ``urljoin`` and urllib3 remove ``.``
and ``..`` segments (``a/../b`` would reach the server as ``b``), and
``//k`` after a host is read as a host by ``urljoin``. Percent-encoding
those pieces keeps them: the server decodes ``%2E%2E`` back to ``..``.
Used by ``url_for``'s converter, by signed URLs and by the client; it needs
no Flask, so ``mpuflask sign`` and the client start without importing it.
"""

from __future__ import annotations

from urllib.parse import quote

DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def key_path(key: str) -> str:
    """``key`` percent-encoded as a URL path after its first ``/``.

    A leading ``/`` is encoded too (Werkzeug strips leading slashes when it
    joins a URL, and ``//host`` would name a host).
    """
    encoded = keep_dot_segments(quote(key, safe="/"))
    return "%2F" + encoded[1:] if encoded.startswith("/") else encoded


def keep_dot_segments(path: str) -> str:
    """``path`` (already percent-encoded) with each ``.`` or ``..`` segment encoded."""
    return "/".join(DOT_SEGMENTS.get(s, s) for s in path.split("/"))
