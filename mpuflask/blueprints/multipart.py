"""The multipart actions: one view per branch of the seed Worker's switch.

Each view parses its parameters, makes one store call and answers the Worker's
JSON; refusals are exceptions rendered by :mod:`mpuflask.errors`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flask import Response
from flask import current_app
from flask import g
from flask import request

from ..auth import check_owner
from ..auth import current_identity
from ..bodies import body_chunks
from ..bodies import declared_length
from ..bodies import has_body
from ..bodies import read_json_body
from ..errors import ApiError
from ..errors import EntityTooLarge
from ..errors import NoSuchUpload
from ..errors import TooManyUploads
from ..extension import bucket
from ..extension import mpuflask
from ..hooks import CompleteInfo
from ..hooks import PartInfo
from ..hooks import checked_chunks
from ..hooks import refusals_counted_as
from ..routing import ActionBlueprint
from ..rules import check_key
from ..rules import parse_complete_body
from ..rules import parse_part_number
from ..storage import HttpMetadata
from ..storage import MultipartUpload
from ..storage import UploadedPart

bp = ActionBlueprint("multipart", __name__)


def _json(value: dict[str, Any]) -> Response:
    """JSON as the Worker's ``JSON.stringify``: compact, keys in given order."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Response(text, 200, content_type="application/json")


def _empty(status: int, **headers: str) -> Response:
    """A response with no body and, as the Worker's ``new Response(null)``, no type."""
    response = Response(None, status, headers=headers)
    del response.headers["Content-Type"]
    return response


def _open_upload(key: str, upload_id: str, operation: str) -> MultipartUpload:
    """The upload, if it exists for ``key`` and the caller may touch it (403)."""
    upload = bucket().resume_multipart_upload(key, upload_id)
    check_owner(upload.info(operation).owner, operation)
    return upload


def _upload_id() -> str:
    upload_id = request.args.get("uploadId")
    if upload_id is None:
        raise ApiError("Missing uploadId")
    return upload_id


@bp.action("POST", "mpu-create")
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


@bp.action("PUT", "mpu-uploadpart")
def mpu_uploadpart(key: str) -> Response:
    """``PUT /<key>?action=mpu-uploadpart&uploadId=U&partNumber=N``: store a part.

    The body streams to the store in bounded chunks. 200 ``{"partNumber",
    "etag"}`` (etag: the part's hex MD5; ``Content-Length: 0`` is a 0-byte
    part); 400 ``Missing partNumber or uploadId``, ``Missing request body``
    (neither Content-Length nor Transfer-Encoding), a part number outside
    1..10000, 10024 for an unknown upload, 100100 for a part over the maximum
    size; 501 for a transfer coding other than chunked (``gzip``...).
    The etag is also in the ``ETag`` header, quoted, as S3 answers a part.
    Worker: ``case "mpu-uploadpart"`` -> ``multipartUpload.uploadPart(n, body)``.
    """
    upload_id = request.args.get("uploadId")
    part_number_text = request.args.get("partNumber")
    if part_number_text is None or upload_id is None:
        raise ApiError("Missing partNumber or uploadId")
    if not has_body():
        raise ApiError("Missing request body")
    part_number = parse_part_number(part_number_text)
    check_key(key, "uploadPart")
    config = current_app.config
    declared = request.content_length
    if declared is not None and declared > config["MPUFLASK_MAX_PART_SIZE"]:
        raise EntityTooLarge("uploadPart")
    upload = _open_upload(key, upload_id, "uploadPart")
    info = PartInfo(
        request=g.mpuflask_request,
        identity=current_identity(),
        upload_id=upload_id,
        part_number=part_number,
        content_length=declared,
        content_type=request.content_type,
    )
    # Header stage of every validator first: refuse before reading a byte.
    with refusals_counted_as("validate_part"):
        checks = [check for v in mpuflask().part_validators if (check := v(info))]
    body = body_chunks(config["MPUFLASK_CHUNK_SIZE"])
    chunks = checked_chunks(body, checks)
    part = upload.upload_part(part_number, chunks, declared_length())
    response = _json({"partNumber": part.part_number, "etag": part.etag})
    # Also as S3's UploadPart answers it: Uppy's S3 plugin reads only this.
    response.headers["ETag"] = f'"{part.etag}"'
    return response


@bp.action("POST", "mpu-complete")
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
    validators = mpuflask().complete_validators
    request_info = g.mpuflask_request
    identity = current_identity()

    def run_validators(chosen: Sequence[UploadedPart]) -> None:
        # Called by the store inside its critical section, with exactly the
        # parts it is about to publish: a racing part upload cannot slip by.
        done = CompleteInfo(request_info, identity, upload_id, tuple(chosen))
        with refusals_counted_as("validate_complete"):
            for validator in validators:
                validator(done)

    published = upload.complete(parts, run_validators if validators else None)
    return _empty(200, etag=published.http_etag)


@bp.action("DELETE", "mpu-abort")
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


@bp.action("GET", "mpu-listparts")
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
    return _json(
        {
            "key": key,
            "uploadId": upload_id,
            "expires": info.expires.isoformat(),
            "parts": [
                {"partNumber": p.part_number, "etag": p.etag, "size": p.size}
                for p in parts
            ],
        }
    )
