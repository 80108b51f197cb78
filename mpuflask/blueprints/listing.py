"""Listing: the objects under a prefix, and the caller's open uploads.

Both are served on ``/`` (the one path that is never a key), like the health
check, and go through the same auth as every other action: for a hook or a
signed URL the key a listing addresses is its ``prefix``; a token limited to
a prefix lists under it only, and lists its own prefix when none is given.
Pages are R2's: at most ``limit`` entries (default and maximum 1000), and an
opaque ``cursor`` to ask for the next one while ``truncated`` is true.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qsl

from flask import Response
from flask import g
from flask import request

from ..current import bucket
from ..current import current_identity
from ..errors import ApiError
from ..routing import ActionBlueprint
from ..rules import MAX_KEY_BYTES
from ..storage import ListPosition
from ..storage import ObjectInfo
from ..storage import UploadPosition

bp = ActionBlueprint("listing", __name__)

MAX_LIMIT = 1000
#: R2's names for the HTTP metadata in a listing (``R2HTTPMetadata``).
R2_METADATA_NAMES = {
    "Content-Type": "contentType",
    "Content-Language": "contentLanguage",
    "Content-Disposition": "contentDisposition",
    "Content-Encoding": "contentEncoding",
    "Cache-Control": "cacheControl",
    "Expires": "cacheExpiry",
}
_MAX_CURSOR = 8192


@bp.action("list", methods=["GET"])
def list_objects(key: str) -> Response:
    """``GET /?action=list&prefix=P&delimiter=D&cursor=C&limit=N``: objects.

    200 ``{"objects": [{"key", "size", "etag", "httpEtag", "uploaded",
    "httpMetadata"}], "truncated", "cursor" (when truncated),
    "delimitedPrefixes"}`` in key order; with a delimiter, keys that go on
    past it after the prefix are shown once, folded, in ``delimitedPrefixes``.
    400 for a bad limit, cursor, prefix or delimiter, or a path other than /.
    Not in the Worker: R2's ``bucket.list()``.
    """
    operation = "list"
    _at_root(key, operation)
    prefix = _prefix(operation)
    delimiter = _text("delimiter", operation) or None
    if delimiter is not None:
        _bounded(delimiter, "delimiter", operation)
    start = _object_position(_cursor(operation), operation, delimiter)
    page = bucket().list_objects_page(prefix, delimiter, start, _limit(operation))
    answer: dict[str, Any] = {
        "objects": [_object(info) for info in page.objects],
        "truncated": page.next is not None,
    }
    if page.next is not None:
        kind = "p" if page.next.past else "k"
        answer["cursor"] = _encode([kind, page.next.key])
    answer["delimitedPrefixes"] = page.delimited_prefixes
    return _json(answer)


@bp.action("mpu-list", methods=["GET"])
def mpu_list(key: str) -> Response:
    """``GET /?action=mpu-list&prefix=P&cursor=C&limit=N``: your open uploads.

    200 ``{"uploads": [{"key", "uploadId", "created", "expires"}],
    "truncated", "cursor" (when truncated)}``, by key then uploadId: the
    unexpired uploads the caller's identity created (anonymous callers see
    anonymous uploads). 400 as ``list``. Not in the Worker (S3's
    ListMultipartUploads, scoped to the caller).
    """
    operation = "listMultipartUploads"
    _at_root(key, operation)
    prefix = _prefix(operation)
    start = _upload_position(_cursor(operation), operation)
    page = bucket().list_uploads_page(
        current_identity(), prefix, start, _limit(operation)
    )
    answer: dict[str, Any] = {
        "uploads": [
            {
                "key": upload.key,
                "uploadId": upload.upload_id,
                "created": upload.created.isoformat(),
                "expires": upload.expires.isoformat(),
            }
            for upload in page.uploads
        ],
        "truncated": page.next is not None,
    }
    if page.next is not None:
        answer["cursor"] = _encode(["u", page.next.key, page.next.upload_id])
    return _json(answer)


def _json(value: dict[str, Any]) -> Response:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Response(text, 200, content_type="application/json")


def _object(info: ObjectInfo) -> dict[str, Any]:
    metadata = {
        R2_METADATA_NAMES.get(name, name): value
        for name, value in info.http_metadata.headers.items()
    }
    return {
        "key": info.key,
        "size": info.size,
        "etag": info.etag,
        "httpEtag": info.http_etag,
        "uploaded": info.uploaded.isoformat(),
        "httpMetadata": metadata,
    }


def _at_root(key: str, operation: str) -> None:
    if key:
        raise ApiError(
            f"{operation}: listings are served on / only; name the keys with "
            "?prefix= (for example /?action=list&prefix=videos/)"
        )


def _prefix(operation: str) -> str:
    """The prefix asked for; none: the one the credential is limited to."""
    prefix = _text("prefix", operation) or g.get("mpuflask_list_prefix") or ""
    _bounded(prefix, "prefix", operation)
    return prefix


def _text(name: str, operation: str) -> str | None:
    """The parameter ``name``; 400 if its escapes are not UTF-8.

    Werkzeug keeps an escape that does not decode (``%FF``) as its three
    characters: the prefix would be the text ``%FF`` (``%25FF``), and list
    keys the caller did not name.
    """
    value = request.args.get(name)
    if value is None or "%" not in value:
        return value
    for field, raw in parse_qsl(
        request.query_string.decode(), keep_blank_values=True, errors="surrogateescape"
    ):
        if field == name:  # the first, as request.args.get reads it
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(
                    f"{operation}: {name} is not UTF-8 once percent-decoded"
                ) from None
            break
    return value


def _bounded(value: str, name: str, operation: str) -> None:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ApiError(f"{operation}: {name} is longer than {MAX_KEY_BYTES} bytes")


def _limit(operation: str) -> int:
    text = request.args.get("limit")
    if text is None:
        return MAX_LIMIT
    # Leading zeros are allowed, as in partNumber; the length is checked
    # before int() (which refuses over 4,300 digits).
    significant = text.lstrip("0")
    if text.isascii() and text.isdigit() and 0 < len(significant) <= 4:
        limit = int(significant)
        if limit <= MAX_LIMIT:
            return limit
    shown = text if len(text) <= 20 else text[:20] + "..."
    raise ApiError(
        f"{operation}: limit must be a whole number from 1 to {MAX_LIMIT}, "
        f"not {json.dumps(shown)}"
    )


def _encode(fields: list[str]) -> str:
    data = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _cursor(operation: str) -> list[Any] | None:
    """The decoded ``cursor`` (a JSON list), None without one; 400 if garbled."""
    text = request.args.get("cursor")
    if not text:
        return None
    try:
        if len(text) > _MAX_CURSOR or not text.isascii():
            raise ValueError("too long")
        padded = text + "=" * (-len(text) % 4)
        fields = json.loads(base64.urlsafe_b64decode(padded).decode())
        if not isinstance(fields, list) or not all(
            isinstance(field, str) for field in fields
        ):
            raise ValueError("not a list of strings")
    except (ValueError, binascii.Error, RecursionError):
        raise _bad_cursor(operation) from None
    return fields


def _bad_cursor(operation: str) -> ApiError:
    return ApiError(
        f"{operation}: cursor is not one this server gave; start again without it"
    )


def _object_position(
    fields: list[Any] | None, operation: str, delimiter: str | None
) -> ListPosition | None:
    """Where the cursor says the page starts.

    A page that ended on a folded prefix goes on past every key under it:
    only right where that prefix folds, so with a delimiter it ends with.
    Without one, that cursor would skip keys the listing must show.
    """
    if fields is None:
        return None
    if len(fields) == 2 and fields[0] in ("k", "p"):
        past = fields[0] == "p"
        if past and (delimiter is None or not fields[1].endswith(delimiter)):
            raise ApiError(
                f"{operation}: cursor was given for another delimiter; "
                "start again without it"
            )
        return ListPosition(fields[1], past=past)
    raise _bad_cursor(operation)


def _upload_position(fields: list[Any] | None, operation: str) -> UploadPosition | None:
    if fields is None:
        return None
    if len(fields) == 3 and fields[0] == "u":
        return UploadPosition(fields[1], fields[2])
    raise _bad_cursor(operation)
