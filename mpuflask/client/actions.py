"""The Worker's API as Python calls, one per action, on one object URL.

Only ``list_parts`` is ours (mpuflask's ``mpu-listparts``); a plain upload
uses create, uploadpart and complete, which the original Worker also has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

import requests

from ..rules import normalize_etag
from .errors import BadAnswer
from .errors import ServerRefused
from .transport import Transport
from .urls import display

NO_SUCH_UPLOAD = 10024
T = TypeVar("T")
#: What reading a JSON answer of another shape than asked raises.
_WRONG_SHAPE = (KeyError, IndexError, TypeError, ValueError, AttributeError)


@dataclass(frozen=True)
class ListedPart:
    """A part the server holds, as ``mpu-listparts`` tells it."""

    part_number: int
    etag: str
    size: int


def why_not_resumable(error: ServerRefused) -> str | None:
    """Why listing the parts failed in a way that means "start over", else None.

    10024: the upload expired, was aborted or completed. ``Unknown action``:
    the server is the original Worker, which cannot list parts.
    """
    if error.r2_code == NO_SUCH_UPLOAD:
        return "the upload no longer exists"
    if error.status == 400 and error.text.startswith("Unknown action mpu-listparts"):
        return "the server cannot list parts (no mpu-listparts)"
    return None


def _text(answer: Any, name: str) -> str:
    """``answer[name]``, a non-empty string (TypeError or KeyError if not)."""
    value = answer[name]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} is {value!r}, not a string")
    return value


class ObjectApi:
    """The multipart actions on one object URL, sent through a transport."""

    def __init__(
        self, transport: Transport, url: str, cancel: threading.Event | None = None
    ) -> None:
        self.transport = transport
        self.url = url
        self.cancel = cancel if cancel is not None else threading.Event()

    def _answer(
        self, action: str, read: Callable[[Any], T]
    ) -> Callable[[requests.Response], T]:
        """``read`` of a JSON answer; one of the wrong shape (not JSON, ``[]``,
        no ``etag``) is :class:`BadAnswer`, one line, not a KeyError traceback."""

        def handle(response: requests.Response) -> T:
            try:
                return read(response.json())
            except _WRONG_SHAPE as error:
                raise BadAnswer(
                    f"{action} {display(self.url)}: the answer is not what {action} "
                    f"answers ({type(error).__name__}: {error}); is this an "
                    "mpuflask server?"
                ) from None

        return handle

    def create(self, headers: Mapping[str, str] | None = None) -> str:
        """``mpu-create``; ``headers`` (Content-Type, ...) become object metadata."""

        return self.transport.call(
            "POST",
            self.url,
            "mpu-create",
            self._answer("mpu-create", lambda answer: _text(answer, "uploadId")),
            headers=headers,
            cancel=self.cancel,
        )

    def upload_part(
        self, upload_id: str, part_number: int, body: Callable[[], Any]
    ) -> str:
        """``mpu-uploadpart``: send ``body()`` (made anew per try); the part's etag."""

        params = [("uploadId", upload_id), ("partNumber", str(part_number))]
        return self.transport.call(
            "PUT",
            self.url,
            "mpu-uploadpart",
            self._answer("mpu-uploadpart", lambda answer: _text(answer, "etag")),
            params=params,
            body=body,
            cancel=self.cancel,
        )

    def list_parts(self, upload_id: str) -> list[ListedPart]:
        """``mpu-listparts`` (ours): the parts stored so far, by number."""

        def parts(answer: Any) -> list[ListedPart]:
            return [
                ListedPart(int(p["partNumber"]), str(p["etag"]), int(p["size"]))
                for p in answer["parts"]
            ]

        return self.transport.call(
            "GET",
            self.url,
            "mpu-listparts",
            self._answer("mpu-listparts", parts),
            params=[("uploadId", upload_id)],
            cancel=self.cancel,
        )

    def complete(self, upload_id: str, parts: Sequence[tuple[int, str]]) -> str:
        """``mpu-complete`` with ``(partNumber, etag)`` in order; the object etag."""

        def etag(response: requests.Response) -> str:
            return normalize_etag(response.headers.get("etag", ""))

        body = {"parts": [{"partNumber": n, "etag": e} for n, e in parts]}
        return self.transport.call(
            "POST",
            self.url,
            "mpu-complete",
            etag,
            params=[("uploadId", upload_id)],
            json=body,
            cancel=self.cancel,
        )

    def current_etag(self) -> str | None:
        """The etag of the object now at the URL, or None if there is none.

        A one-byte ranged GET, not HEAD: the original Worker has no HEAD.
        """

        def etag(response: requests.Response) -> str | None:
            if response.status_code == 404:
                return None
            return normalize_etag(response.headers.get("etag", ""))

        return self.transport.call(
            "GET",
            self.url,
            "get",
            etag,
            headers={"Range": "bytes=0-0"},
            ok=(200, 206, 404, 416),
            stream=True,
            cancel=self.cancel,
        )

    def delete(self) -> None:
        """``delete``: remove the object (204 whether or not it existed)."""
        self.transport.call(
            "DELETE",
            self.url,
            "delete",
            lambda response: None,
            ok=(200, 204),
            cancel=self.cancel,
        )

    def abort(self, upload_id: str) -> None:
        """``mpu-abort``: discard the upload (204 even if it is already gone)."""
        self.transport.call(
            "DELETE",
            self.url,
            "mpu-abort",
            lambda response: None,
            params=[("uploadId", upload_id)],
            ok=(200, 204),
            cancel=self.cancel,
        )
