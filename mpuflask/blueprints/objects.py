"""Reading and deleting objects: the Worker's ``GET`` and ``delete`` branches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO
from typing import cast

from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from ..content_safety import safety_headers
from ..current import bucket
from ..errors import ObjectNotFound
from ..preconditions import evaluate_preconditions
from ..ranges import ByteRange
from ..ranges import if_range_holds
from ..ranges import multipart_byteranges
from ..ranges import requested_ranges
from ..routing import ActionBlueprint
from ..rules import check_key
from ..sendfile import ObjectChunks
from ..storage import ObjectBody

bp = ActionBlueprint("objects", __name__)

#: Stored headers a 304 repeats, as the 200 would have sent them.
_FRESHNESS = ("Cache-Control", "Expires")


@bp.action("get", methods=["GET", "HEAD"])
def get(key: str) -> Response:
    """``GET /<key>?action=get``: the object's bytes (HEAD: its headers).

    200 with Content-Length, the stored HTTP metadata, ``etag`` and
    Last-Modified; 206 for a satisfiable ``Range`` (several ranges: 206
    ``multipart/byteranges``), 416 if none is, the whole object for a unit
    other than bytes, a set we ignore (:mod:`mpuflask.ranges`) or a HEAD
    (RFC 9110 14.2: Range is for GET only); 304/412
    for ``If-None-Match``, ``If-Match``, ``If-Modified-Since``,
    ``If-Unmodified-Since``; 404 ``Object Not Found``. The reader pins the
    version it opened: an overwrite or delete meanwhile does not change the
    bytes it streams.
    Worker: ``case "GET"`` -> ``bucket.get(key)`` + ``writeHttpMetadata``.
    """
    check_key(key, "get")
    body = bucket().get(key)
    if body is None:
        raise ObjectNotFound()
    info = body.info
    # Nothing stored: say "bytes", so no browser sniffs an upload as HTML.
    content_type = info.http_metadata.headers.get(
        "Content-Type", "application/octet-stream"
    )
    safety = safety_headers(content_type)
    status = evaluate_preconditions(info.etag, info.uploaded)
    if status is not None:
        # 304 / 412: the validators and no body.
        body.close()
        response = Response(None, status, headers=safety)
        del response.headers["Content-Type"]
        if status == 304:
            # RFC 9110 15.4.5: a cache refreshes its copy's freshness from these.
            stored = info.http_metadata.headers
            for name in _FRESHNESS:
                if name in stored:
                    response.headers[name] = stored[name]
        response.set_etag(info.etag)
        response.last_modified = info.uploaded
        return response
    return _object_response(body, current_app.config["MPUFLASK_CHUNK_SIZE"])


def _object_response(body: ObjectBody, chunk_size: int) -> Response:
    """200 with the whole object, or 206/416 for the ranges asked (:mod:`.ranges`)."""
    info = body.info
    headers = dict(info.http_metadata.headers)
    # Nothing stored: say "bytes", so no browser sniffs an upload as HTML.
    headers.setdefault("Content-Type", "application/octet-stream")
    headers.update(safety_headers(headers["Content-Type"]))
    ranges = None
    # RFC 9110 14.2: ranges are defined for GET only; HEAD MUST ignore Range.
    if request.method == "GET" and if_range_holds(
        request.headers.get("If-Range"), info.etag, info.uploaded
    ):
        ranges = requested_ranges(request.headers.get("Range"), info.size)
    if ranges == []:
        body.close()
        raise RequestedRangeNotSatisfiable(length=info.size)
    stream = cast(IO[bytes], body)
    status, length = 200, info.size
    pieces: Sequence[bytes | ByteRange] = [ByteRange(0, info.size)]
    if ranges is not None and len(ranges) == 1:
        status, length = 206, ranges[0].stop - ranges[0].start
        headers["Content-Range"] = ranges[0].content_range(info.size)
        pieces = ranges
    elif ranges is not None:
        multipart = multipart_byteranges(
            stream, ranges, info.size, headers["Content-Type"], chunk_size
        )
        status, length, pieces = 206, multipart.length, multipart.pieces
        headers["Content-Type"] = multipart.content_type
        # The coding names the object's bytes, not this multipart wrapping.
        headers.pop("Content-Encoding", None)
    if request.method != "HEAD" and not all(
        body.intact(piece.start, piece.stop)
        for piece in pieces
        if isinstance(piece, ByteRange)
    ):
        # Damaged at rest (logged by the store): absent, before any byte.
        body.close()
        raise ObjectNotFound()
    # Sent with sendfile under gunicorn (mpuflask/sendfile.py); its close
    # releases the version the body pins.
    chunks = ObjectChunks(body, pieces, chunk_size)
    response = Response(chunks, status, headers=headers, direct_passthrough=True)
    response.call_on_close(body.close)
    response.set_etag(info.etag)
    response.last_modified = info.uploaded
    response.content_length = length
    response.accept_ranges = "bytes"
    return response


@bp.action("delete", methods=["DELETE"])
def delete(key: str) -> Response:
    """``DELETE /<key>?action=delete``: remove the object; 204 present or not.

    Worker: ``case "delete"`` -> ``bucket.delete(key)``.
    """
    check_key(key, "delete")
    bucket().delete(key)
    response = Response(None, 204)
    del response.headers["Content-Type"]
    return response
