"""What the S3 store keeps in the engine beside the bytes, and how it reads it.

Two things S3 does not do for us:

* An open upload's record (key, owner, expiry, HTTP metadata, and the engine
  key its parts go to: the key itself, or a staging key on engines that
  cannot leave parts out at complete, see :mod:`.s3upload`). S3 cannot read
  back an in-progress upload's metadata, and gateways keep no local state, so
  each upload has a small JSON object beside it in the same bucket,
  ``<prefix>uploads/<uploadId>.json`` (the prefix is ``.mpuflask/`` by
  default and is refused as a key). It is written on create and deleted on
  complete and abort; the key inside it binds the uploadId to its key.
* An object's HTTP metadata exactly as the client gave it. S3 has native
  fields for it, but it adds a Content-Type of its own when none was given,
  only takes ASCII and reformats Expires. So the exact headers also travel as
  ASCII JSON in the user metadata ``x-amz-meta-mpuflask-http`` (set at
  create, kept by complete); the native fields are set too, for other S3
  clients. An object written without the gateway is read from its native
  fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote

from ..rules import MAX_KEY_BYTES
from ..rules import normalize_etag
from .base import HTTP_METADATA_HEADERS
from .base import HttpMetadata
from .base import ObjectInfo
from .base import UploadInfo

#: User metadata (``x-amz-meta-*``) the gateway writes on objects.
HTTP_META = "mpuflask-http"
#: The R2 etag where the engine's differs (only the empty object, ``-0``).
ETAG_META = "mpuflask-etag"

_NATIVE_FIELDS = {
    "Content-Type": "ContentType",
    "Content-Language": "ContentLanguage",
    "Content-Disposition": "ContentDisposition",
    "Content-Encoding": "ContentEncoding",
    "Cache-Control": "CacheControl",
}
#: An uploadId as any engine mints them (AWS, R2, Ceph ``2~...``, MinIO):
#: printable ASCII. Anything else is refused as unknown without I/O.
_UPLOAD_ID = re.compile(r"[\x21-\x7e]{1,512}")
_RECORD_SUFFIX = ".json"


def record_key(prefix: str, upload_id: str) -> str | None:
    """The engine key of an upload's record, or None for an impossible id."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        return None
    key = f"{prefix}uploads/{quote(upload_id, safe='-_.~')}{_RECORD_SUFFIX}"
    return key if len(key.encode()) <= MAX_KEY_BYTES else None


def records_prefix(prefix: str) -> str:
    """Where every upload record lives, for listing them."""
    return f"{prefix}uploads/"


def upload_id_of_record(prefix: str, key: str) -> str | None:
    """The uploadId a record key names (inverse of :func:`record_key`)."""
    start = records_prefix(prefix)
    if not (key.startswith(start) and key.endswith(_RECORD_SUFFIX)):
        return None
    return unquote(key[len(start) : -len(_RECORD_SUFFIX)])


@dataclass(frozen=True)
class UploadRecord:
    """An open upload as every gateway sees it."""

    info: UploadInfo
    #: Where the upload's parts live on the engine (``info.key``, or staging).
    engine_key: str

    @property
    def staged(self) -> bool:
        """Whether the parts go to a staging key, not to the object's key."""
        return self.engine_key != self.info.key


def encode_record(record: UploadRecord) -> bytes:
    """The record's JSON: the filesystem store's ``upload.json``, plus the
    engine key."""
    info = record.info
    fields = {
        "key": info.key,
        "upload_id": info.upload_id,
        "created": info.created.isoformat(),
        "expires": info.expires.isoformat(),
        "http_metadata": info.http_metadata.headers,
        "owner": info.owner,
        "engine_key": record.engine_key,
    }
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def decode_record(data: bytes) -> UploadRecord:
    """An upload's record, read back."""
    fields = json.loads(data)
    info = UploadInfo(
        key=fields["key"],
        upload_id=fields["upload_id"],
        created=datetime.fromisoformat(fields["created"]),
        expires=datetime.fromisoformat(fields["expires"]),
        http_metadata=HttpMetadata(dict(fields["http_metadata"])),
        owner=fields.get("owner"),
    )
    return UploadRecord(info, fields.get("engine_key", info.key))


def object_arguments(metadata: HttpMetadata) -> dict[str, Any]:
    """CreateMultipartUpload/PutObject arguments that store ``metadata``."""
    exact = json.dumps(metadata.headers, ensure_ascii=True, separators=(",", ":"))
    arguments: dict[str, Any] = {"Metadata": {HTTP_META: exact}}
    for name, value in metadata.headers.items():
        if name in _NATIVE_FIELDS and value.isascii():
            arguments[_NATIVE_FIELDS[name]] = value
        elif name == "Expires" and (date := _http_date(value)) is not None:
            arguments["Expires"] = date
    return arguments


def _http_date(value: str) -> datetime | None:
    """``value`` as a datetime if S3 will give it back unchanged, else None."""
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if date.tzinfo is None or format_datetime(date, usegmt=True) != value:
        return None
    return date


def object_info(key: str, response: Any) -> tuple[ObjectInfo, str]:
    """ObjectInfo from a HeadObject answer, and the engine's etag (for If-Match)."""
    engine_etag: str = response["ETag"]
    user: dict[str, str] = response.get("Metadata", {})
    headers: dict[str, str] = response["ResponseMetadata"]["HTTPHeaders"]
    return (
        ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            etag=user.get(ETAG_META) or normalize_etag(engine_etag),
            uploaded=response["LastModified"],
            http_metadata=_http_metadata(user, headers),
            version=engine_etag,
        ),
        engine_etag,
    )


def _http_metadata(user: dict[str, str], headers: dict[str, str]) -> HttpMetadata:
    exact = user.get(HTTP_META)
    if exact is not None:
        try:
            stored = json.loads(exact)
        except ValueError:
            stored = None
        if isinstance(stored, dict):
            return HttpMetadata({str(k): str(v) for k, v in stored.items()})
    # Written by another S3 client: its native fields are all we have.
    return HttpMetadata.from_headers(
        (name, headers[name.lower()])
        for name in HTTP_METADATA_HEADERS
        if name.lower() in headers
    )
