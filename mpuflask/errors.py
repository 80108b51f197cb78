"""Every refusal mpuflask can answer, and the one place that renders them.

The store and the views raise these exceptions; :func:`register_error_handlers`
turns them into responses. Each R2 error carries R2's numeric code and message and
renders as the seed Worker does (``<operation>: <message> (<code>)``, status 400),
so a client written for the Worker sees the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from http import HTTPStatus
from typing import Any

from flask import Flask
from flask import Response
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError

from .actions import OPERATIONS

log = logging.getLogger(__name__)

PLAIN_TEXT = "text/plain; charset=utf-8"


class ApiError(HTTPException):
    """A refusal with a plain-text body: the seed Worker's error shape."""

    code: int = HTTPStatus.BAD_REQUEST

    def __init__(self, text: str, status: int | None = None) -> None:
        super().__init__(text)
        if status is not None:
            self.code = status
        self.text = text

    def get_body(self, environ: Any = None, scope: Any = None) -> str:
        return self.text

    def get_headers(
        self, environ: Any = None, scope: Any = None
    ) -> list[tuple[str, str]]:
        return [("Content-Type", PLAIN_TEXT)]


class MethodNotAllowed(ApiError):
    """Any method but PUT, POST, GET, HEAD and DELETE (the Worker's ``default:``)."""

    def __init__(self) -> None:
        super().__init__("Method Not Allowed", HTTPStatus.METHOD_NOT_ALLOWED)

    def get_headers(
        self, environ: Any = None, scope: Any = None
    ) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Allow", "PUT, POST, GET, DELETE")]


class ObjectNotFound(ApiError):
    """GET or HEAD of a key that holds no object."""

    def __init__(self) -> None:
        super().__init__("Object Not Found", HTTPStatus.NOT_FOUND)


class Unauthorized(ApiError):
    """No credentials, or credentials that prove nothing (401)."""

    def __init__(self, reason: str = "Unauthorized") -> None:
        super().__init__(reason, HTTPStatus.UNAUTHORIZED)

    def get_headers(
        self, environ: Any = None, scope: Any = None
    ) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("WWW-Authenticate", 'Bearer realm="mpuflask"')]


class Forbidden(ApiError):
    """Valid credentials that do not allow this request (403)."""

    def __init__(self, reason: str = "Forbidden") -> None:
        super().__init__(reason, HTTPStatus.FORBIDDEN)


class R2Error(ApiError):
    """An error of the R2 binding: a code, a fixed message and the operation.

    Subclasses set ``r2_code`` and ``message``; the operation (``uploadPart``,
    ``completeMultipartUpload``, ...) is filled in by whoever raises it, as R2
    prefixes its messages with the binding method that failed.
    """

    r2_code: int = 10001
    message: str = "We encountered an internal error. Please try again."

    def __init__(self, operation: str, message: str | None = None) -> None:
        self.operation = operation
        if message is not None:
            self.message = message
        super().__init__(f"{operation}: {self.message} ({self.r2_code})")


class NoSuchUpload(R2Error):
    """Unknown, completed, aborted or expired uploadId, or one of another key."""

    r2_code = 10024
    message = "The specified multipart upload does not exist."


class InvalidPart(R2Error):
    """Complete lists a part that was never uploaded, or with another etag."""

    r2_code = 10025
    message = "One or more of the specified parts could not be found."


class InvalidPartOrder(R2Error):
    """Complete lists parts out of ascending order or twice (S3's InvalidPartOrder).

    R2 documents no code of its own for this; we answer InvalidPart's code with a
    message that names the cause, as S3 gateways map InvalidPartOrder to 10025.
    """

    r2_code = 10025
    message = (
        "The list of parts was not in ascending order. "
        "The parts list must be specified in order by part number."
    )


class EntityTooSmall(R2Error):
    """A part other than the last is under the minimum part size."""

    r2_code = 10011
    message = "Your proposed upload is smaller than the minimum allowed object size."


class EntityTooLarge(R2Error):
    """A part over the maximum part size (5 GiB)."""

    r2_code = 100100
    message = "Your proposed upload exceeds the maximum allowed object size."


class PartSizesDiffer(R2Error):
    """Non-final parts of different sizes, or a last part larger than the others."""

    r2_code = 10048
    message = "All non-trailing parts must have the same length."


class InvalidObjectName(R2Error):
    """A key that is empty, over 1024 bytes, or not UTF-8."""

    r2_code = 10020
    message = "The specified object name is not valid."


class TooManyUploads(R2Error):
    """An identity already holds ``MPUFLASK_MAX_OPEN_UPLOADS`` open uploads.

    Why 400 and 10009: R2 and S3 answer a count quota (R2's TooManyBuckets,
    10009; S3's TooManyBuckets and TooManyAccessPoints) with 400 and "You have
    attempted to create more ... than allowed"; R2 has no code for open
    uploads, so we borrow its only resource-count one. Not 429: that is R2's
    rate limit (10058), and clients (ours, the seed's) retry 429, which only
    the user's own complete or abort can lift. Not 403: that says the
    credentials do not allow the request at all.
    """

    r2_code = 10009

    def __init__(self, operation: str, limit: int) -> None:
        super().__init__(
            operation,
            "You have attempted to create more open multipart uploads than "
            f"allowed ({limit} per identity); complete or abort some first.",
        )


class DataDirDamaged(R2Error):
    """The filesystem store's data directory is not as the store keeps it.

    An area (``uploads``, ``objects``, ...) is a symlink, a file or missing:
    the store neither follows nor repairs it, logs what it found and refuses
    every request that needs it (503, R2's internal error) until an operator
    has looked.
    """

    code = HTTPStatus.SERVICE_UNAVAILABLE


class InvalidPartNumber(ApiError):
    """R2's RangeError text for a part number outside 1..10000 (no code, no prefix)."""

    def __init__(self, actual: str, highest: int) -> None:
        shown = actual if len(actual) <= 64 else actual[:64] + "..."
        super().__init__(
            f"Part number must be between 1 and {highest} (inclusive). "
            f"Actual value was: {shown}"
        )


class RequestTimeout(ApiError):
    """The body stalled or trickled (408, mpuflask/deadlines.py); the connection
    is closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Request Timeout: {reason}", HTTPStatus.REQUEST_TIMEOUT)

    def get_headers(
        self, environ: Any = None, scope: Any = None
    ) -> list[tuple[str, str]]:
        # The rest of the body may still come: never read it as a next request.
        return [*super().get_headers(), ("Connection", "close")]


class UnsupportedTransferCoding(ApiError):
    """A body in a transfer coding we cannot decode (501, RFC 9112 section 6.1).

    gunicorn removes ``chunked`` but hands over ``gzip`` and the like as they
    came: read as they are, they would be stored as the wrong bytes.
    """

    def __init__(self, codings: str) -> None:
        shown = codings if len(codings) <= 64 else codings[:64] + "..."
        super().__init__(
            f"Transfer-Encoding {shown} is not supported: send the body as it is, "
            "with Content-Length or chunked; nothing was stored.",
            HTTPStatus.NOT_IMPLEMENTED,
        )

    def get_headers(
        self, environ: Any = None, scope: Any = None
    ) -> list[tuple[str, str]]:
        # The body's framing is not ours to trust: never read on after it.
        return [*super().get_headers(), ("Connection", "close")]


class InsufficientStorage(ApiError):
    """The disk is full: nothing was stored, try again later (507)."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation}: There is not enough free space on the server to store "
            "this request; nothing was stored.",
            HTTPStatus.INSUFFICIENT_STORAGE,
        )


def register_error_handlers(app: Flask, blueprints: Collection[str]) -> None:
    """Render every error the app can raise, in one place.

    Werkzeug's own HTTP errors (a body over the size limit, say) keep their
    status but get a plain-text body; anything else is our bug: logged with its
    traceback and answered 500 without details.
    """

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return Response(error.get_body(), error.code, error.get_headers())

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        text = error.description or HTTPStatus(status).phrase
        response = Response(text, status, content_type=PLAIN_TEXT)
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(PermissionError)
    def _not_permitted(error: PermissionError) -> Response:
        if request.blueprint not in blueprints:
            raise error  # an app's own route: its 500, as before
        # Someone changed the data directory's owner or modes under a running
        # server (start-up refuses one it may not write): the operator's to
        # fix, not a bug of ours. 503, as for other damage, and logged.
        log.error("the store may not use %s: %s", error.filename or "?", error)
        return _api_error(DataDirDamaged(_operation()))

    @app.errorhandler(InternalServerError)
    def _internal_error(error: InternalServerError) -> Response:
        original = error.original_exception or error
        log.error("unhandled error", exc_info=original)
        return Response("Internal Server Error", 500, content_type=PLAIN_TEXT)


def _operation() -> str:
    """The R2 operation of the current request, for an error's prefix."""
    action = request.args.get("action") or "-"
    return OPERATIONS.get(action, action)
