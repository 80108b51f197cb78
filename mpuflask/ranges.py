"""Which bytes of an object a GET serves: RFC 9110's ``Range`` and ``If-Range``.

Werkzeug serves one byte range and answers 416 to whatever else it does not
parse, a unit it does not know and a set of several ranges included. RFC 9110
(section 14.2) says otherwise: a server ignores a range unit it does not know
and serves a satisfiable set of ranges (206 ``multipart/byteranges``) or the
whole object (200), never 416; it may ignore a set that looks abusive. So:

* no ``Range``, a unit other than ``bytes``, a header that does not parse, an
  ``If-Range`` naming another version, more than :data:`MAX_RANGES` ranges or
  ranges that overlap: the whole object, 200;
* one satisfiable range: 206 with ``Content-Range``;
* several: 206 ``multipart/byteranges``, parts in the order asked, each with
  its ``Content-Type`` and ``Content-Range``, streamed from the object;
* none satisfiable: 416.

An empty object is always served whole, as Werkzeug does.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from .preconditions import http_date

#: More ranges than this in one header are served as the whole object: a
#: client asking for hundreds of slices is broken or an attack (RFC 9110 14.2).
MAX_RANGES = 100

_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")

#: Past any object's size; stands in for a position with too many digits.
_FAR = 10**18


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` up to (not including) ``stop`` of an object."""

    start: int
    stop: int

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of this range of an object of ``size``."""
        return f"bytes {self.start}-{self.stop - 1}/{size}"


def requested_ranges(header: str | None, size: int) -> list[ByteRange] | None:
    """The satisfiable ranges of a ``Range`` header, in the order asked.

    None means serve the whole object (see the module docstring for when);
    an empty list means no range is satisfiable (416).
    """
    if header is None or size == 0:
        return None
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip(" \t").lower() != "bytes":
        return None
    # A list may hold empty elements (RFC 9110 5.6.1): skip them.
    specs = [spec for item in range_set.split(",") if (spec := item.strip(" \t"))]
    if not specs or len(specs) > MAX_RANGES:
        return None
    chosen = []
    for spec in specs:
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None or match.group(0) == "-":
            return None
        first, last = match.groups()
        if not first:  # "-N": the last N bytes
            suffix = _position(last)
            if suffix > 0:
                chosen.append(ByteRange(max(0, size - suffix), size))
            continue
        start = _position(first)
        stop = size
        if last:
            end = _position(last)
            if end < start:
                return None  # an invalid range-spec makes the header invalid
            stop = min(end + 1, size)
        if start < size:
            chosen.append(ByteRange(start, stop))
    if _overlap(chosen):
        return None
    return chosen


def _position(digits: str) -> int:
    """A byte position; over 18 digits it is past any object (int() is bounded)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _FAR


def _overlap(ranges: Sequence[ByteRange]) -> bool:
    ordered = sorted(ranges, key=lambda byte_range: byte_range.start)
    return any(a.stop > b.start for a, b in zip(ordered, ordered[1:], strict=False))


def if_range_holds(header: str | None, etag: str, last_modified: datetime) -> bool:
    """Whether ``If-Range`` lets the ranges be served (RFC 9110 13.1.5).

    It holds if absent, if it is this version's strong etag, or this version's
    exact Last-Modified date (one HTTP-date, :func:`.http_date`); a weak etag,
    another version, a list or garbage means the whole object is served.
    """
    if header is None:
        return True
    value = header.strip(" \t")
    if value.startswith('"'):
        return value == f'"{etag}"'
    if value.startswith("W/"):
        return False
    date = http_date(value)
    return date is not None and date == last_modified.replace(microsecond=0)


def read_range(
    body: IO[bytes], byte_range: ByteRange, chunk_size: int
) -> Iterator[bytes]:
    """The bytes of ``byte_range``, read from ``body`` in bounded chunks."""
    body.seek(byte_range.start)
    left = byte_range.stop - byte_range.start
    while left > 0:
        chunk = body.read(min(chunk_size, left))
        if not chunk:
            # The Content-Length is already promised: fail the response.
            raise OSError(f"object ended {left} bytes early")
        left -= len(chunk)
        yield chunk


@dataclass(frozen=True)
class Multipart:
    """A ``multipart/byteranges`` body: its type, exact length and bytes.

    ``pieces`` is the body as part heads (bytes) and the object's ranges, in
    order, for a sender that copies ranges without reading them (sendfile);
    ``chunks`` is the same body read from the object.
    """

    content_type: str
    length: int
    chunks: Iterator[bytes]
    pieces: tuple[bytes | ByteRange, ...] = ()


def multipart_byteranges(
    body: IO[bytes],
    ranges: Sequence[ByteRange],
    size: int,
    part_type: str,
    chunk_size: int,
) -> Multipart:
    """Several ranges of ``body`` as one multipart body (RFC 9110 14.6).

    The length is known before a byte is read: the part heads are built first
    and the ranges' sizes are exact.
    """
    boundary = secrets.token_hex(16)
    # The first boundary opens the body; the others follow a part's bytes.
    heads = [
        (
            ("\r\n" if index else "")
            + f"--{boundary}\r\nContent-Type: {part_type}\r\n"
            + f"Content-Range: {byte_range.content_range(size)}\r\n\r\n"
        ).encode("latin-1", "replace")
        for index, byte_range in enumerate(ranges)
    ]
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    length = sum(map(len, heads)) + len(tail)
    length += sum(byte_range.stop - byte_range.start for byte_range in ranges)

    pieces: list[bytes | ByteRange] = []
    for head, byte_range in zip(heads, ranges, strict=True):
        pieces += [head, byte_range]
    pieces.append(tail)

    def chunks() -> Iterator[bytes]:
        for piece in pieces:
            if isinstance(piece, bytes):
                yield piece
            else:
                yield from read_range(body, piece, chunk_size)

    content_type = f"multipart/byteranges; boundary={boundary}"
    return Multipart(content_type, length, chunks(), tuple(pieces))
