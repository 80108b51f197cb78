"""Listing rules every store shares, with no I/O: order, folding, paging.

Keys are ordered by their UTF-8 bytes (R2's and S3's order). A page starts
just after a :class:`~.base.ListPosition` and holds at most ``limit``
entries; a folded prefix (R2's ``delimitedPrefixes``) is one entry, and the
next page starts past every key under it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import UploadInfo
from .base import UploadListing
from .base import UploadPosition


def folded(key: str, prefix: str, delimiter: str | None) -> str | None:
    """The folded prefix ``key`` is shown as, or None to show it as itself.

    ``a/b/c`` under ``a/`` with ``/`` folds into ``a/b/``: the prefix, then
    the rest up to and including the first delimiter after it.
    """
    if not delimiter:
        return None
    found = key.find(delimiter, len(prefix))
    if found < 0:
        return None
    return key[: found + len(delimiter)]


def successor(data: bytes) -> bytes | None:
    """The smallest byte string above every string that starts with ``data``.

    None when there is none (``data`` is empty or all 0xFF bytes; UTF-8 never
    has 0xFF, so for a key it is only the empty one).
    """
    stripped = data.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def order(key: str) -> bytes:
    """A key's sort key: its UTF-8 bytes (any Python str, surrogates too)."""
    return key.encode("utf-8", "surrogatepass")


def uploads_page(
    found: Iterable[UploadInfo],
    prefix: str,
    start: UploadPosition | None,
    limit: int,
) -> UploadListing:
    """A page of ``found`` (open uploads, in any order) under ``prefix``."""
    after = None if start is None else (order(start.key), start.upload_id)
    chosen = sorted(
        (
            upload
            for upload in found
            if upload.key.startswith(prefix)
            and (after is None or (order(upload.key), upload.upload_id) > after)
        ),
        key=lambda upload: (order(upload.key), upload.upload_id),
    )
    page = chosen[:limit]
    more = len(chosen) > limit
    last = page[-1] if page else None
    return UploadListing(
        uploads=page,
        next=UploadPosition(last.key, last.upload_id) if more and last else None,
    )
