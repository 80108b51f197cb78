"""Conditional GET/HEAD, evaluated in RFC 9110's order (section 13.2.2).

Werkzeug parses the headers; the order matters (Werkzeug's
``make_conditional`` applies ``Range`` before ``If-Match``), so we decide the
304/412 cases first and serve ranges after (:mod:`mpuflask.ranges`).
"""

from __future__ import annotations

from datetime import datetime

from flask import request


def evaluate_preconditions(etag: str, last_modified: datetime) -> int | None:
    """Return 412 or 304 if a precondition decides the answer, else None.

    An ``If-Match`` or ``If-None-Match`` that is sent is evaluated even if no
    entity-tag in it parses (``"a`` unclosed, ``"a" "b"`` with no comma): it
    then matches nothing, so ``If-Match`` fails (412, never the object of any
    version) and the date it stands before is not read (RFC 9110 13.2.2).
    """
    seconds = last_modified.replace(microsecond=0)
    if _sent("If-Match"):
        if_match = request.if_match
        # "*" matches any current version (RFC 9110 13.1.1); there is one here.
        if not (if_match.star_tag or if_match.is_strong(etag)):
            return 412
    elif request.if_unmodified_since is not None:
        if seconds > request.if_unmodified_since:
            return 412
    if _sent("If-None-Match"):
        if request.if_none_match.contains_weak(etag):
            return 304
    elif request.if_modified_since is not None:
        if seconds <= request.if_modified_since:
            return 304
    return None


def _sent(name: str) -> bool:
    """Whether the request carries the header with a value (an empty one is
    an empty list: no condition)."""
    return bool(request.headers.get(name, "").strip(" \t,"))
