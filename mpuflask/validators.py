"""Built-in part and completion validators, each enabled by configuration alone.

Every refusal says which rule refused, in the form
``<operation>: <message> (<rule>)``, with a 4xx status; nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from .errors import ApiError
from .hooks import CompleteInfo
from .hooks import PartInfo
from .hooks import PartValidator
from .hooks import StreamCheck

CHECKSUM_SHA256_HEADER = "x-amz-checksum-sha256"


class PartRefused(ApiError):
    """A part validator's refusal: ``uploadPart: <why> (<rule>)``."""

    def __init__(self, message: str, rule: str, status: int = 400) -> None:
        super().__init__(f"uploadPart: {message} ({rule})", status)


class CompleteRefused(ApiError):
    """A completion validator's refusal: ``completeMultipartUpload: <why> (<rule>)``."""

    def __init__(self, message: str, rule: str, status: int = 400) -> None:
        super().__init__(f"completeMultipartUpload: {message} ({rule})", status)


def allowed_content_types(types: list[str]) -> Callable[[PartInfo], None]:
    """Refuse parts whose Content-Type is not listed (none sent: octet-stream).

    ``image/*`` lists every ``image/`` subtype, ``*/*`` every type.
    """
    allowed = {t.strip().lower() for t in types if t.strip()}

    def validate(part: PartInfo) -> None:
        given = (part.content_type or "application/octet-stream").split(";")[0]
        essence = given.strip().lower()
        family = essence.split("/", 1)[0] + "/*"
        if not allowed.intersection((essence, family, "*/*")):
            raise PartRefused(
                f"Content-Type {given!r} is not accepted; "
                f"allowed: {', '.join(sorted(allowed))}.",
                "allowed_content_types",
                415,
            )

    return validate


class _DigestCheck:
    """Stream check: hash the body and compare with the announced digest."""

    def __init__(
        self, algorithm: str, expected: bytes, message: str, rule: str
    ) -> None:
        self.hash = hashlib.new(algorithm)
        self.expected = expected
        self.message = message
        self.rule = rule

    def update(self, chunk: bytes) -> None:
        self.hash.update(chunk)

    def finish(self) -> None:
        if self.hash.digest() != self.expected:
            raise PartRefused(self.message, self.rule)


def _decode_digest(value: str, size: int, header: str, rule: str) -> bytes:
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != size:
        raise PartRefused(f"The {header} you specified is not valid.", rule)
    return digest


def content_md5(part: PartInfo) -> StreamCheck | None:
    """Verify ``Content-MD5`` (base64 of the MD5) when the client sends it."""
    value = part.request.headers.get("Content-MD5")
    if value is None:
        return None
    expected = _decode_digest(value, 16, "Content-MD5", "InvalidDigest")
    return _DigestCheck(
        "md5",
        expected,
        "The Content-MD5 you specified did not match what we received.",
        "BadDigest",
    )


def checksum_sha256(part: PartInfo) -> StreamCheck | None:
    """Verify ``x-amz-checksum-sha256`` (base64 of the SHA-256), as S3 does."""
    value = part.request.headers.get(CHECKSUM_SHA256_HEADER)
    if value is None:
        return None
    expected = _decode_digest(value, 32, CHECKSUM_SHA256_HEADER, "InvalidDigest")
    return _DigestCheck(
        "sha256",
        expected,
        f"The {CHECKSUM_SHA256_HEADER} you specified did not match what we received.",
        "BadDigest",
    )


def only_unsent_checksums(
    validators: list[PartValidator], environ: Mapping[str, Any]
) -> bool:
    """Whether every one of ``validators`` is :func:`content_md5` or
    :func:`checksum_sha256` and the request lacks the header it reads first
    (so it would return None, having looked at nothing else).

    The checksums are on by default and a part rarely sends either header:
    the part then need not be described to them at all.
    """
    for validator in validators:
        if validator is content_md5:
            sent = "HTTP_CONTENT_MD5" in environ
        elif validator is checksum_sha256:
            sent = "HTTP_X_AMZ_CHECKSUM_SHA256" in environ
        else:
            return False
        if sent:
            return False
    return True


def max_object_size(limit: int) -> Callable[[CompleteInfo], None]:
    """Refuse to publish an object over ``limit`` bytes."""

    def validate(done: CompleteInfo) -> None:
        if done.size > limit:
            raise CompleteRefused(
                f"The object would be {done.size} bytes; the limit is {limit}.",
                "max_object_size",
                413,
            )

    return validate


def max_parts(limit: int) -> Callable[[CompleteInfo], None]:
    """Refuse to publish an object made of more than ``limit`` parts."""

    def validate(done: CompleteInfo) -> None:
        if len(done.parts) > limit:
            raise CompleteRefused(
                f"The object would have {len(done.parts)} parts; the limit is {limit}.",
                "max_parts",
            )

    return validate
