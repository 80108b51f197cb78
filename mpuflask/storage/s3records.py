"""What the S3 store keeps in the engine beside the bytes, and how it reads it.

Two things S3 does not do for us:

* An open upload's record (key, owner, expiry, HTTP metadata, the engine key
  its parts go to, and the state of a complete in progress). S3 cannot read
  back an in-progress upload's metadata, and gateways keep no local state, so
  each upload has a small JSON object beside it in the same bucket,
  ``<prefix>uploads/<uploadId>.json`` (the prefix is ``.mpuflask/`` by
  default and is refused as a key). It is written on create, rewritten (with
  ``If-Match`` on its etag: a compare-and-swap) when a complete claims the
  upload (:class:`Claim`) or stands a filler part in for a small one
  (:class:`Substitute`), and deleted once the upload is published or aborted.
  The key inside it binds the uploadId to its key.
* An object's HTTP metadata exactly as the client gave it. S3 has native
  fields for it, but it adds a Content-Type of its own when none was given,
  only takes ASCII and reformats Expires. So the exact headers also travel as
  ASCII JSON in the user metadata ``x-amz-meta-mpuflask-http`` (set at
  create, kept by complete); the native fields are set too, for other S3
  clients. An object written without the gateway is read from its native
  fields. Every object the gateway publishes also carries its upload's token
  (``x-amz-meta-mpuflask-upload``): how a recovering complete tells whether it
  was published already.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from dataclasses import field
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
from .base import UploadedPart
from .base import UploadInfo

#: User metadata (``x-amz-meta-*``) the gateway writes on objects.
HTTP_META = "mpuflask-http"
#: The R2 etag where the engine's may differ (copied and empty objects).
ETAG_META = "mpuflask-etag"
#: The token of the upload that published the object.
UPLOAD_META = "mpuflask-upload"

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
class Substitute:
    """A small part the engine upload holds as a filler part.

    Engines that must list every part at complete (radosgw) also refuse a part
    under their minimum size anywhere but last. To complete such an upload
    whole, a small part is overwritten by a filler part, and its bytes are read
    from the copy the part's upload kept (``<engine key>/<n>.<md5>``). While
    the engine's part ``n`` still has ``filler``'s etag, part ``n`` *is* this
    part for the client.
    """

    md5: str
    size: int
    filler: str


@dataclass(frozen=True)
class Claim:
    """A complete in progress: who holds the upload, until when, and what it
    publishes (enough for anyone to finish it once the holder is gone)."""

    holder: str
    until: datetime
    #: ``inplace`` (the engine's complete publishes), ``whole`` (complete the
    #: staging upload and copy it), ``ranges`` (complete it whole, copy the
    #: listed parts' bytes) or ``empty`` (abort, put an empty object).
    plan: str
    #: The parts published, as the client listed them (number, MD5, size).
    parts: tuple[UploadedPart, ...]
    #: The engine upload's parts at close, in order (number, engine etag, size).
    layout: tuple[UploadedPart, ...]
    #: The object's R2 etag.
    etag: str


@dataclass(frozen=True)
class UploadRecord:
    """An open upload as every gateway sees it."""

    info: UploadInfo
    #: Where the upload's parts live on the engine (``info.key``, or staging).
    engine_key: str
    #: Random, stamped on the published object (:data:`UPLOAD_META`).
    token: str = ""
    claim: Claim | None = None
    subs: dict[int, Substitute] = field(default_factory=dict)

    @property
    def staged(self) -> bool:
        """Whether the parts go to a staging key, not to the object's key."""
        return self.engine_key != self.info.key


def encode_record(record: UploadRecord) -> bytes:
    """The record's JSON: the filesystem store's ``upload.json``, plus the
    engine key, the token, a complete's claim and the substitutes."""
    info = record.info
    fields: dict[str, Any] = {
        "key": info.key,
        "upload_id": info.upload_id,
        "created": info.created.isoformat(),
        "expires": info.expires.isoformat(),
        "http_metadata": info.http_metadata.headers,
        "owner": info.owner,
        "engine_key": record.engine_key,
        "token": record.token,
    }
    if record.subs:
        fields["subs"] = {
            str(n): [sub.md5, sub.size, sub.filler] for n, sub in record.subs.items()
        }
    claim = record.claim
    if claim is not None:
        fields["claim"] = {
            "holder": claim.holder,
            "until": claim.until.isoformat(),
            "plan": claim.plan,
            "parts": [_part_fields(part) for part in claim.parts],
            "layout": [_part_fields(part) for part in claim.layout],
            "etag": claim.etag,
        }
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def decode_record(data: bytes) -> UploadRecord | None:
    """An upload's record, read back; None if it is not one (sweep drops it)."""
    try:
        fields = json.loads(data)
        info = UploadInfo(
            key=fields["key"],
            upload_id=fields["upload_id"],
            created=datetime.fromisoformat(fields["created"]),
            expires=datetime.fromisoformat(fields["expires"]),
            http_metadata=HttpMetadata(dict(fields["http_metadata"])),
            owner=fields.get("owner"),
        )
        subs = {
            int(n): Substitute(md5, int(size), filler)
            for n, (md5, size, filler) in fields.get("subs", {}).items()
        }
        claim = None
        if (found := fields.get("claim")) is not None:
            claim = Claim(
                holder=found["holder"],
                until=datetime.fromisoformat(found["until"]),
                plan=found["plan"],
                parts=tuple(_part(entry) for entry in found["parts"]),
                layout=tuple(_part(entry) for entry in found["layout"]),
                etag=found["etag"],
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return UploadRecord(
        info, fields.get("engine_key", info.key), fields.get("token", ""), claim, subs
    )


def _part_fields(part: UploadedPart) -> list[Any]:
    return [part.part_number, part.etag, part.size]


def _part(entry: list[Any]) -> UploadedPart:
    number, etag, size = entry
    return UploadedPart(int(number), str(etag), int(size))


def object_arguments(
    metadata: HttpMetadata, token: str = "", etag: str | None = None
) -> dict[str, Any]:
    """CreateMultipartUpload/PutObject/CopyObject arguments that store
    ``metadata``, the upload's ``token`` and, if given, the R2 ``etag``."""
    exact = json.dumps(metadata.headers, ensure_ascii=True, separators=(",", ":"))
    arguments: dict[str, Any] = {"Metadata": {HTTP_META: exact}}
    if token:
        arguments["Metadata"][UPLOAD_META] = token
    if etag is not None:
        arguments["Metadata"][ETAG_META] = etag
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
