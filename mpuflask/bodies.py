"""Reading request bodies without holding them in memory.

A part body is read from ``request.stream`` in bounded chunks and handed on as
it arrives; nothing here touches ``request.data`` or ``get_data()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import request
from werkzeug.exceptions import ClientDisconnected

from .deadlines import body_pace
from .errors import ApiError


def has_body() -> bool:
    """Whether the request carries a body (the Worker's ``request.body !== null``).

    A body is announced by a non-zero Content-Length or by chunked
    Transfer-Encoding; ``Content-Length: 0`` is no body.
    """
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return True
    return bool(request.content_length)


def declared_length() -> int | None:
    """The body's length as the request declares it; None for a chunked body.

    Werkzeug stops ``request.stream`` at Content-Length and
    :func:`body_chunks` refuses a body that ends short, so a store given this
    length gets exactly that many bytes or an exception.
    """
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return None
    return request.content_length


def body_chunks(chunk_size: int) -> Iterator[bytes]:
    """Yield the request body in chunks of at most ``chunk_size`` bytes.

    A client that hangs up early makes Werkzeug raise ``ClientDisconnected``
    (a 400) from here, so the store discards the half-received part. A client
    that stalls or trickles is cut off with 408 (mpuflask/deadlines.py), so a
    slow upload cannot hold a worker thread for long.
    """
    pace = body_pace()
    expected = request.content_length
    received = 0
    while chunk := pace.read(chunk_size):
        received += len(chunk)
        yield chunk
    if expected is not None and received < expected:
        # gunicorn hands over a raw stream: a short body ends quietly.
        raise ClientDisconnected(
            f"The request body ended after {received} of {expected} bytes"
        )


def read_json_body(limit: int) -> Any:
    """Parse a small JSON body, refusing more than ``limit`` bytes (413)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(f"Request body too large: at most {limit} bytes", 413)
    pace = body_pace()
    data = b""
    while len(data) <= limit and (chunk := pace.read(limit + 1 - len(data))):
        data += chunk
    if len(data) > limit:
        raise ApiError(f"Request body too large: at most {limit} bytes", 413)
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise ApiError(
            "Missing or incomplete body: the body is not valid JSON"
        ) from None
