"""A requests transport adapter that calls a WSGI app in-process (no sockets).

Lets the client library run against Flask's app directly: the adapter reads
the streamed body (so FileSlice, hashing and progress run as for real), calls
the app through Werkzeug's test client, records what was sent, and can fail
chosen requests with a connection reset (as requests raises it) before they
reach the app.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from werkzeug.test import Client

BASE = "http://testserver/"


@dataclass(frozen=True)
class Sent:
    """One request as the app received it, and its answer's status."""

    method: str
    url: str
    action: str | None
    part_number: int | None
    headers: dict[str, str]
    body_size: int
    status: int | None  # None: failed with a connection error


class WsgiAdapter(BaseAdapter):
    """Answers requests from ``app``; ``sent`` lists them in order."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = Client(app)
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        #: ``fail(request) -> True`` makes that request a ConnectionError.
        self.fail: Callable[[requests.PreparedRequest], bool] = lambda request: False

    def send(
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        body = _read_body(request.body)
        query = parse_qs(urlsplit(request.url or "").query)
        number = query.get("partNumber", [None])[0]
        record = dict(
            method=request.method or "",
            url=request.url or "",
            action=query.get("action", [None])[0],
            part_number=int(number) if number else None,
            headers=dict(request.headers),
            body_size=len(body),
        )
        if self.fail(request):
            with self.lock:
                self.sent.append(Sent(**record, status=None))
            raise _connection_reset()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in {"content-length", "transfer-encoding"}
        }
        answer = self.client.open(
            request.url, method=request.method, headers=headers, data=body
        )
        with self.lock:
            self.sent.append(Sent(**record, status=answer.status_code))
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(dict(answer.headers.items()))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(answer.get_data())
        answer.close()  # as a server does once it has sent the answer
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    def actions(self, method: str | None = None) -> list[str | None]:
        return [s.action for s in self.sent if method is None or s.method == method]

    def parts_sent(self) -> list[int]:
        """Part numbers the app answered 200 for, in order."""
        return [
            s.part_number
            for s in self.sent
            if s.action == "mpu-uploadpart" and s.status == 200 and s.part_number
        ]


def _connection_reset() -> requests.ConnectionError:
    """What requests raises when the server resets the connection mid-request."""
    reset = ConnectionResetError(104, "Connection reset by peer")
    aborted = urllib3.exceptions.ProtocolError("Connection aborted.", reset)
    return requests.ConnectionError(aborted)


def _read_body(body: Any) -> bytes:
    """The whole body, read as urllib3 would: ``read(n)`` until empty."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes):
        return body
    chunks = []
    while chunk := body.read(64 * 1024):
        chunks.append(chunk)
    return b"".join(chunks)


def session_for(adapter: WsgiAdapter) -> requests.Session:
    session = requests.Session()
    session.mount(BASE, adapter)
    return session
