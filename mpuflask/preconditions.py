"""Conditional GET/HEAD, evaluated in RFC 9110's order (section 13.2.2).

Werkzeug parses the headers; the order matters (Werkzeug's
``make_conditional`` applies ``Range`` before ``If-Match``), so we decide the
304/412 cases first and serve ranges after (:mod:`mpuflask.ranges`).
"""

from __future__ import annotations

from datetime import datetime

from flask import request


def evaluate_preconditions(etag: str, last_modified: datetime) -> int | None:
    """Return 412 or 304 if a precondition decides the answer, else None."""
    seconds = last_modified.replace(microsecond=0)
    if_match = request.if_match
    if if_match:
        # "*" matches any current version (RFC 9110 13.1.1); there is one here.
        if not (if_match.star_tag or if_match.is_strong(etag)):
            return 412
    elif request.if_unmodified_since is not None:
        if seconds > request.if_unmodified_since:
            return 412
    if_none_match = request.if_none_match
    if if_none_match:
        if if_none_match.contains_weak(etag):
            return 304
    elif request.if_modified_since is not None:
        if seconds <= request.if_modified_since:
            return 304
    return None
