"""WSGI wrappers that misbehave on purpose, for the client's tests.

Used in-process (around a Flask app) and under gunicorn (through
``faulty_wsgi`` and ``counting_wsgi``). Each decides from the request alone,
or from files shared by gunicorn's worker processes.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def query(environ: Environ) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def drain(environ: Environ) -> None:
    """Read the request body away, as a server answering early still would."""
    stream = environ["wsgi.input"]
    while stream.read(64 * 1024):
        pass


def answer(
    start_response: StartResponse, status: str, text: str, **headers: str
) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
            *headers.items(),
        ],
    )
    return [body]


class Unavailable:
    """Answers 503 to every ``every``-th request (per process), the rest pass."""

    def __init__(self, app: WsgiApp, every: int, **headers: str) -> None:
        self.app = app
        self.every = every
        self.headers = headers
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.refused = 0

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        with self.lock:
            fail = next(self.counter) % self.every == 0
            self.refused += fail
        if not fail:
            return self.app(environ, start_response)
        drain(environ)
        return answer(
            start_response, "503 Service Unavailable", "injected 503", **self.headers
        )


class RefusePart:
    """Answers 400 ``text`` to every upload of part ``number``."""

    TEXT = "uploadPart: injected refusal of this part (test)"

    def __init__(self, app: WsgiApp, number: int) -> None:
        self.app = app
        self.number = str(number)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        params = query(environ)
        if (
            params.get("action") == "mpu-uploadpart"
            and params.get("partNumber") == self.number
        ):
            drain(environ)
            return answer(start_response, "400 Bad Request", self.TEXT)
        return self.app(environ, start_response)


class RequestLog:
    """Appends ``METHOD action partNumber status`` per request to a file.

    ``O_APPEND`` writes of one short line are atomic, so gunicorn's worker
    processes can share the file.
    """

    def __init__(self, app: WsgiApp, path: Path) -> None:
        self.app = app
        self.path = path

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        params = query(environ)

        def logged_start(status: str, headers: Any, *args: Any) -> Any:
            line = (
                f"{environ['REQUEST_METHOD']} {params.get('action', '-')} "
                f"{params.get('partNumber', '-')} {status.split()[0]}\n"
            )
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            return start_response(status, headers, *args)

        return self.app(environ, logged_start)


def read_log(path: Path) -> list[tuple[str, str, str, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        method, action, part, status = line.split()
        rows.append((method, action, part, int(status)))
    return rows


class HoldParts:
    """Lets the first ``admit`` part uploads through, then holds the others.

    Held requests wait (their bodies unread) until the ``gate`` file exists,
    then answer 503 without storing anything: so exactly ``admit`` parts can
    be stored before a test kills the client. After that, only requests that
    carry ``X-Mpu-Test-Pass`` (the test's second client) get through: a part
    the killed client had already sent, still queued in the server, must not
    slip in. Admission is counted in a file under ``flock``, shared by
    gunicorn's worker processes.
    """

    def __init__(self, app: WsgiApp, admit: int, counter: Path, gate: Path) -> None:
        self.app = app
        self.admit = admit
        self.counter = counter
        self.gate = gate

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        if query(environ).get("action") != "mpu-uploadpart":
            return self.app(environ, start_response)
        if "HTTP_X_MPU_TEST_PASS" in environ:
            return self.app(environ, start_response)
        if self._admitted():
            return self.app(environ, start_response)
        deadline = time.monotonic() + 120
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # a held request polls for the test's gate file
        return answer(start_response, "503 Service Unavailable", "held, then refused")

    def _admitted(self) -> bool:
        with open(self.counter, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            count = int(handle.read() or 0)
            if count >= self.admit:
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(str(count + 1))
            return True
