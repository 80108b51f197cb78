"""Reading request bodies without holding them in memory.

A part body is read from ``request.stream`` in bounded chunks and handed on as
it arrives; nothing here touches ``request.data`` or ``get_data()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import request

from .deadlines import body_pace
from .environheaders import TRANSFER_ENCODING
from .environheaders import content_length
from .errors import ApiError
from .errors import EntityTooLarge
from .errors import UnsupportedTransferCoding

#: Transfer codings whose bytes we read as sent: gunicorn decodes ``chunked``,
#: and ``identity`` changes nothing.
_READABLE_CODINGS = frozenset({"chunked", "identity"})


def check_transfer_coding() -> None:
    """Refuse a body sent in a transfer coding we do not decode (501).

    RFC 9112 section 6.1: a server that receives a transfer coding it does not
    understand answers 501. Storing a ``gzip, chunked`` body as it came would
    store compressed bytes as the part.
    """
    header = request.environ.get(TRANSFER_ENCODING)
    if header is None:
        return
    codings = (coding.strip(" \t").lower() for coding in header.split(","))
    if any(coding and coding not in _READABLE_CODINGS for coding in codings):
        raise UnsupportedTransferCoding(header)


def has_body() -> bool:
    """Whether the request carries a body (the Worker's ``request.body !== null``).

    In HTTP/1.1 a request has a body when it says how it is framed: a
    Content-Length (``0`` too: an empty body, stored as a 0-byte part, as R2
    does) or a Transfer-Encoding. With neither there is no body. Raises 501
    for a transfer coding we cannot decode (:func:`check_transfer_coding`).
    """
    check_transfer_coding()
    environ = request.environ
    if environ.get(TRANSFER_ENCODING):
        return True
    return str(environ.get("CONTENT_LENGTH", "")).strip() != ""


def declared_length() -> int | None:
    """The body's length as the request declares it; None for a chunked body.

    Werkzeug stops ``request.stream`` at Content-Length and
    :func:`body_chunks` refuses a body that ends short, so a store given this
    length gets exactly that many bytes or an exception.
    """
    if "chunked" in request.environ.get(TRANSFER_ENCODING, "").lower():
        return None
    return content_length(request.environ)


def body_chunks(chunk_size: int) -> Iterator[bytes]:
    """Yield the request body in chunks of at most ``chunk_size`` bytes.

    A client that hangs up early makes Werkzeug raise ``ClientDisconnected``
    (a 400) from here, so the store discards the half-received part. A client
    that stalls or trickles is cut off with 408 (mpuflask/deadlines.py), so a
    slow upload cannot hold a worker thread for long.
    """
    pace = body_pace()  # refuses a body that ends short of its Content-Length
    while chunk := pace.read(chunk_size):
        yield chunk


def part_body(limit: int, chunk_size: int) -> Iterator[bytes]:
    """A part's body, at most ``limit`` bytes (``MPUFLASK_MAX_PART_SIZE``).

    The one place the part-size limit is enforced: a Content-Length over it is
    refused (400 100100) now, before a byte is read; a body without one
    (chunked) as soon as it passes the limit, and the store then discards
    what it received.
    """
    declared = content_length(request.environ)
    if declared is not None and declared > limit:
        raise EntityTooLarge("uploadPart")
    return _at_most(limit, body_chunks(chunk_size))


def _at_most(limit: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise EntityTooLarge("uploadPart")
        yield chunk


def read_json_body(limit: int) -> Any:
    """Parse a small JSON body, refusing more than ``limit`` bytes (413)."""
    check_transfer_coding()
    declared = content_length(request.environ)
    if declared is not None and declared > limit:
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
    except (ValueError, RecursionError):
        # ValueError also covers numbers over Python's int-string limit;
        # RecursionError is what deeply nested arrays raise.
        raise ApiError(
            "Missing or incomplete body: the body is not valid JSON"
        ) from None
