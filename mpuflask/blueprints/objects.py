"""Reading and deleting objects: the Worker's ``GET`` and ``delete`` branches."""

from __future__ import annotations

from typing import IO
from typing import cast

from flask import Response
from flask import current_app
from flask import request
from werkzeug.wsgi import FileWrapper

from ..content_safety import safety_headers
from ..errors import ObjectNotFound
from ..extension import bucket
from ..preconditions import evaluate_preconditions
from ..routing import ActionBlueprint
from ..rules import check_key

bp = ActionBlueprint("objects", __name__)


@bp.action("HEAD", "get")
@bp.action("GET", "get")
def get(key: str) -> Response:
    """``GET /<key>?action=get``: the object's bytes (HEAD: its headers).

    200 with Content-Length, the stored HTTP metadata, ``etag`` and
    Last-Modified; 206/416 for ``Range``; 304/412 for ``If-None-Match``,
    ``If-Match``, ``If-Modified-Since``, ``If-Unmodified-Since``; 404
    ``Object Not Found``. The reader pins the version it opened: an overwrite
    or delete meanwhile does not change the bytes it streams.
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
        response.set_etag(info.etag)
        response.last_modified = info.uploaded
        return response
    chunk_size = current_app.config["MPUFLASK_CHUNK_SIZE"]
    response = Response(
        FileWrapper(cast(IO[bytes], body), chunk_size),
        headers={**info.http_metadata.headers, **safety},
        direct_passthrough=True,
    )
    response.call_on_close(body.close)
    response.headers["Content-Type"] = content_type
    response.set_etag(info.etag)
    response.last_modified = info.uploaded
    response.content_length = info.size
    _clamp_suffix_range(info.size)
    response.make_conditional(request, accept_ranges=True, complete_length=info.size)
    return response


def _clamp_suffix_range(size: int) -> None:
    """Serve ``bytes=-N`` with N over the size as the whole object (RFC 9110 14.1.2).

    Werkzeug answers 416 for it; the RFC says a suffix longer than the
    representation selects all of it.
    """
    wanted = request.range
    if wanted is not None and wanted.units == "bytes" and len(wanted.ranges) == 1:
        start, end = wanted.ranges[0]
        if end is None and start < 0 and -start > size:
            request.environ["HTTP_RANGE"] = "bytes=0-"


@bp.action("DELETE", "delete")
def delete(key: str) -> Response:
    """``DELETE /<key>?action=delete``: remove the object; 204 present or not.

    Worker: ``case "delete"`` -> ``bucket.delete(key)``.
    """
    check_key(key, "delete")
    bucket().delete(key)
    response = Response(None, 204)
    del response.headers["Content-Type"]
    return response
