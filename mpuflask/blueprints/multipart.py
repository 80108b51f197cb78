"""The multipart actions: one view per branch of the seed Worker's switch.

Each view parses its parameters, makes one store call and answers the Worker's
JSON; refusals are exceptions rendered by :mod:`mpuflask.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response
from flask import current_app
from flask import g
from flask import request

from ..bodies import declared_length
from ..bodies import has_body
from ..bodies import part_body
from ..bodies import read_json_body
from ..current import bucket
from ..current import current_identity
from ..current import mpuflask
from ..errors import ApiError
from ..errors import Forbidden
from ..errors import NoSuchUpload
from ..errors import TooManyUploads
from ..hooks import StreamCheck
from ..hooks import checked_chunks
from ..jsontext import compact
from ..jsontext import quoted
from ..jsontext import with_array
from ..routing import ActionBlueprint
from ..rules import check_http_metadata
from ..rules import check_key
from ..rules import parse_complete_body
from ..rules import parse_part_number
from ..storage import HttpMetadata
from ..storage import MultipartUpload

bp = ActionBlueprint("multipart", __name__)


def _json(value: dict[str, Any]) -> Response:
    """JSON as the Worker's ``JSON.stringify``: compact, keys in given order."""
    return Response(compact(value), 200, content_type="application/json")


def _empty(status: int, **headers: str) -> Response:
    """A response with no body and, as the Worker's ``new Response(null)``, no type."""
    response = Response(None, status, headers=headers)
    del response.headers["Content-Type"]
    return response


def _open_upload(key: str, upload_id: str, operation: str) -> MultipartUpload:
    """The upload, if it exists for ``key`` and the caller may touch it.

    Ownership: an upload created by one identity is continued only by it
    (403); one created anonymously, by anyone.
    """
    upload = bucket().resume_multipart_upload(key, upload_id)
    owner = upload.info(operation).owner
    if owner is not None and owner != current_identity():
        g.hook_refused = "ownership"
        raise Forbidden(
            f"{operation}: Forbidden: this upload belongs to another identity"
        )
    return upload


def _upload_id() -> str:
    upload_id = request.args.get("uploadId")
    if upload_id is None:
        raise ApiError("Missing uploadId")
    return upload_id


@bp.action("mpu-create", methods=["POST"])
def mpu_create(key: str) -> Response:
    """``POST /<key>?action=mpu-create``: start an upload.

    Keeps the request's Content-Type, Content-Language, Content-Disposition,
    Content-Encoding, Cache-Control and Expires as the object's HTTP metadata.
    200 ``{"key", "uploadId", "expires"}`` (``expires`` is ours: when the
    unfinished upload expires, ISO 8601 UTC); 400 10020 for an invalid key,
    400 10009 when the caller already holds ``MPUFLASK_MAX_OPEN_UPLOADS``.
    Worker: ``case "mpu-create"`` -> ``bucket.createMultipartUpload(key)``.
    """
    check_key(key, "createMultipartUpload")
    metadata = HttpMetadata.from_headers(request.headers.items())
    check_http_metadata(metadata.headers, "createMultipartUpload")
    owner = current_identity()
    _check_open_uploads(owner)
    upload = bucket().create_multipart_upload(key, metadata, owner=owner)
    return _json(
        {
            "key": upload.key,
            "uploadId": upload.upload_id,
            "expires": upload.expires.isoformat(),
        }
    )


def _check_open_uploads(owner: str | None) -> None:
    """Refuse a create past the identity's open-upload limit (0: none).

    Checked, then created: concurrent creates of one identity can pass
    together, so it may hold as many more as it has requests in flight.
    """
    limit = current_app.config["MPUFLASK_MAX_OPEN_UPLOADS"]
    if limit and bucket().open_uploads(owner) >= limit:
        raise TooManyUploads("createMultipartUpload", limit)


@dataclass(frozen=True)
class _Part:
    """A part whose headers passed :func:`check_part_headers`: what its view needs."""

    upload: MultipartUpload
    number: int
    body: Iterator[bytes]
    checks: list[StreamCheck]


@bp.before_request
def check_part_headers() -> None:
    """Before mpu-uploadpart reads a byte of its body: refuse it on its headers.

    In order: the Worker's ``Missing partNumber or uploadId`` and ``Missing
    request body``; then ours: the part number (1..10000), the key, the size
    limit on Content-Length (:func:`~mpuflask.bodies.part_body`), the upload
    and its owner (10024, 403), and every part validator's header stage
    (``@mpu.validate_part``). The part goes to the view as ``g.mpuflask_part``.
    Runs for the multipart blueprint's other actions too, and passes them by.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]
    endpoint = req.endpoint
    if endpoint is None or not endpoint.endswith(".mpu_uploadpart"):
        return
    args = req.args
    upload_id = args.get("uploadId")
    part_number_text = args.get("partNumber")
    if part_number_text is None or upload_id is None:
        raise ApiError("Missing partNumber or uploadId")
    if not has_body():
        raise ApiError("Missing request body")
    part_number = parse_part_number(part_number_text)
    key = check_key((req.view_args or {})["key"], "uploadPart")
    config = current_app.config
    body = part_body(config["MPUFLASK_MAX_PART_SIZE"], config["MPUFLASK_CHUNK_SIZE"])
    upload = _open_upload(key, upload_id, "uploadPart")
    checks = mpuflask().part_checks(upload_id, part_number)
    g.mpuflask_part = _Part(upload, part_number, body, checks)


@bp.action("mpu-uploadpart", methods=["PUT"])
def mpu_uploadpart(key: str) -> Response:
    """``PUT /<key>?action=mpu-uploadpart&uploadId=U&partNumber=N``: store a part.

    The body streams to the store in bounded chunks, each seen by the stream
    checks the part validators returned. 200 ``{"partNumber", "etag"}``
    (etag: the part's hex MD5; ``Content-Length: 0`` is a 0-byte part); the
    refusals on headers are :func:`check_part_headers`'s; a body over the
    maximum part size is refused as it passes it (100100), one that a stream
    check refuses with that check's error, and nothing is stored.
    The etag is also in the ``ETag`` header, quoted, as S3 answers a part.
    Worker: ``case "mpu-uploadpart"`` -> ``multipartUpload.uploadPart(n, body)``.
    """
    part: _Part = g.mpuflask_part
    chunks = checked_chunks(part.body, part.checks)
    stored = part.upload.upload_part(part.number, chunks, declared_length())
    response = _json({"partNumber": stored.part_number, "etag": stored.etag})
    # Also as S3's UploadPart answers it: Uppy's S3 plugin reads only this.
    response.headers["ETag"] = f'"{stored.etag}"'
    return response


@bp.action("mpu-complete", methods=["POST"])
def mpu_complete(key: str) -> Response:
    """``POST /<key>?action=mpu-complete&uploadId=U``: publish the object.

    Body ``{"parts": [{"partNumber", "etag"}, ...]}`` in any order (assembled
    by part number, as R2 does; a part listed twice is refused). 200 with
    header ``etag: "<md5 of part md5s>-<count>"`` and no body; 400 ``Missing
    uploadId``, ``Missing or incomplete body``, 10024, 10025, 10011, 10048.
    Worker: ``case "mpu-complete"`` -> ``multipartUpload.complete(parts)``.
    """
    upload_id = _upload_id()
    parts = parse_complete_body(
        read_json_body(current_app.config["MPUFLASK_MAX_COMPLETE_BODY"])
    )
    check_key(key, "completeMultipartUpload")
    upload = _open_upload(key, upload_id, "completeMultipartUpload")
    # The completion validators run inside the store's critical section.
    published = upload.complete(parts, mpuflask().publish_check(upload_id))
    return _empty(200, etag=published.http_etag)


@bp.action("mpu-abort", methods=["DELETE"])
def mpu_abort(key: str) -> Response:
    """``DELETE /<key>?action=mpu-abort&uploadId=U``: discard an upload.

    204 always once ``uploadId`` is given (idempotent, as R2); 400
    ``Missing uploadId``. Worker: ``case "mpu-abort"`` -> ``multipartUpload.abort()``,
    which the Worker forgot to await; we finish the abort before answering.
    """
    upload_id = _upload_id()
    check_key(key, "abortMultipartUpload")
    try:
        upload = _open_upload(key, upload_id, "abortMultipartUpload")
    except NoSuchUpload:
        return _empty(204)  # idempotent: unknown, finished or another key's
    upload.abort()
    return _empty(204)


@bp.action("mpu-listparts", methods=["GET"])
def mpu_listparts(key: str) -> Response:
    """``GET /<key>?action=mpu-listparts&uploadId=U``: the parts stored so far.

    Ours, not the Worker's (its guide asks for a server-side record so a client
    can resume with no local state). 200 ``{"key", "uploadId", "expires",
    "parts": [{"partNumber", "etag", "size"}, ...]}`` by part number; 400
    ``Missing uploadId``, 10024 for an unknown, finished or expired upload.
    """
    upload_id = _upload_id()
    check_key(key, "listParts")
    upload = _open_upload(key, upload_id, "listParts")
    info = upload.info()
    parts = upload.list_parts()
    head = {"key": key, "uploadId": upload_id, "expires": info.expires.isoformat()}
    listed = (
        f'{{"partNumber":{p.part_number},"etag":{quoted(p.etag)},"size":{p.size}}}'
        for p in parts
    )
    text = with_array(head, "parts", listed)
    return Response(text, 200, content_type="application/json")
