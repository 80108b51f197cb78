"""Headers that keep a stored object from running as a page of this origin.

Anyone who may upload chooses an object's Content-Type. Served inline as
``text/html`` (or SVG, XML, JavaScript), it would run with the origin of the
server, next to the upload page and its token. So every object answer says
``X-Content-Type-Options: nosniff`` (a browser believes the stated type), and
every type not known to be passive also gets ``Content-Security-Policy:
sandbox``: the browser still shows it, but in an opaque origin with scripts
off. The list is an allowlist of passive types, not a blocklist of active
ones, so a type we never heard of (or a malformed one) is sandboxed.
"""

from __future__ import annotations

#: Media types a browser renders without running anything of the origin's.
PASSIVE_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/pdf",
        "application/json",
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "text/plain",
        "text/csv",
    }
)
#: Whole families that are passive, but for the named exceptions.
PASSIVE_FAMILIES = ("image/", "video/", "audio/", "font/")
ACTIVE_IN_PASSIVE_FAMILIES = frozenset({"image/svg+xml"})


def is_passive(content_type: str) -> bool:
    """Whether ``content_type`` is safe to render inline on our origin."""
    essence = content_type.split(";", 1)[0].strip().lower()
    if not essence or "," in essence or essence in ACTIVE_IN_PASSIVE_FAMILIES:
        return False
    return essence in PASSIVE_TYPES or essence.startswith(PASSIVE_FAMILIES)


def safety_headers(content_type: str) -> dict[str, str]:
    """The headers every answer about an object of ``content_type`` carries."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if not is_passive(content_type):
        headers["Content-Security-Policy"] = "sandbox"
    return headers
