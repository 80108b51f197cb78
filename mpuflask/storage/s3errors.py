"""S3 errors, turned into the R2 errors the filesystem store raises.

The S3 store must answer exactly what the filesystem store answers: R2's
``<operation>: <message> (<code>)`` texts from :mod:`mpuflask.errors`. Most R2
rules are enforced by the gateway before it calls the engine (so engines with
other limits behave alike); what still comes back from the engine is mapped
here, in one table, and anything unexpected is logged with the engine's own
code and answered as R2's internal error: 503 when a retry may succeed (the
engine is busy, down or unreachable), 502 when it will not (credentials,
missing bucket: the gateway is misconfigured).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from ..errors import EntityTooLarge
from ..errors import EntityTooSmall
from ..errors import InvalidObjectName
from ..errors import InvalidPart
from ..errors import InvalidPartOrder
from ..errors import NoSuchUpload
from ..errors import R2Error

log = logging.getLogger(__name__)

#: S3 error codes that name the same condition as one of R2's errors.
_SAME_CONDITION: dict[str, type[R2Error]] = {
    "NoSuchUpload": NoSuchUpload,
    "InvalidPart": InvalidPart,
    "InvalidPartOrder": InvalidPartOrder,
    "EntityTooSmall": EntityTooSmall,
    "EntityTooLarge": EntityTooLarge,
    "KeyTooLongError": InvalidObjectName,
    "InvalidObjectName": InvalidObjectName,
}

#: Codes (and statuses) after which the same request may succeed later.
_TRANSIENT_CODES = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "OperationAborted",
}


class MetadataTooLarge(R2Error):
    """The engine refused the upload's HTTP metadata (AWS allows 2 KB of it)."""

    r2_code = 10012
    message = "Your metadata headers exceed the maximum allowed metadata size."


class EngineUnavailable(R2Error):
    """The engine is busy, down or unreachable, or another request holds the
    upload: retry after ``retry_after`` seconds (503)."""

    code = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, operation: str, retry_after: int = 1) -> None:
        super().__init__(operation)
        self.retry_after = retry_after

    def get_headers(
        self, environ: Any = None, scope: Any = None
    ) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class EngineFailed(R2Error):
    """The engine refused the gateway itself (credentials, bucket): 502.

    ``detail`` goes to the log, not to the client.
    """

    code = HTTPStatus.BAD_GATEWAY

    def __init__(self, operation: str, detail: str | None = None) -> None:
        super().__init__(operation)
        if detail is not None:
            log.error("%s: %s", operation, detail)


class ObjectChanged(OSError):
    """The object was overwritten or deleted while a GET was streaming it.

    S3 cannot pin an old version, so the reader stops rather than mixing two
    versions; the server then closes the connection short of Content-Length,
    which every HTTP client reports as an incomplete body.
    """


def error_code(error: ClientError) -> str:
    """The engine's error code (``NoSuchKey``, ``404``, ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def http_status(error: ClientError) -> int:
    """The HTTP status the engine answered."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status)


def is_not_found(error: ClientError) -> bool:
    """True for "no such key" in any engine's spelling (HEAD has no body: 404)."""
    return error_code(error) in {"NoSuchKey", "404", "NotFound"}


def map_client_error(error: ClientError, operation: str, upload: bool) -> R2Error:
    """The R2 error for an engine refusal; ``upload`` for calls on an upload.

    On an upload, "no such key" means no such upload: Ceph answers ListParts
    of an unknown uploadId with NoSuchKey where AWS says NoSuchUpload.
    """
    code = error_code(error)
    if upload and is_not_found(error):
        return NoSuchUpload(operation)
    if code in _SAME_CONDITION:
        return _SAME_CONDITION[code](operation)
    if code == "MetadataTooLarge":
        return MetadataTooLarge(operation)
    status = http_status(error)
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        log.warning("%s: S3 engine busy or failing: %s (%s)", operation, code, status)
        return EngineUnavailable(operation)
    log.error("%s: S3 engine refused the gateway: %s (%s)", operation, code, status)
    return EngineFailed(operation)


@contextmanager
def engine_errors(operation: str, upload: bool = False) -> Iterator[None]:
    """Turn whatever boto3 raises inside the block into an R2 error."""
    try:
        yield
    except ClientError as error:
        raise map_client_error(error, operation, upload) from error
    except (BotoConnectionError, HTTPClientError) as error:
        log.warning("%s: S3 engine unreachable: %s", operation, error)
        raise EngineUnavailable(operation) from error
    except BotoCoreError as error:
        log.error("%s: S3 client failed: %s", operation, error)
        raise EngineFailed(operation) from error
