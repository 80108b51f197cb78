"""A webhook receiver on loopback for the tests: records what it is sent.

A ``ThreadingHTTPServer`` in this process. It can be told to misbehave, per
delivery, with seeded odds: answer 500 (``fail_rate``), or stall past the
sender's timeout and then answer 500 (``stall_rate``); and it can be stopped
and started again on the same port (a receiver that restarts). Every POST is
recorded with what it answered; only deliveries answered 2xx count as
received (``accepted``). A POST whose body ends before its Content-Length (its
sender was killed between sending the headers and the body, which
``http.client`` sends apart) is no delivery: it is counted in ``cut_short``,
never verified nor answered, as any HTTP server would drop it.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

from mpuflask.events import SIGNATURE_HEADER
from mpuflask.events import InvalidSignature
from mpuflask.events import verify_webhook


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver got."""

    body: bytes
    headers: dict[str, str]
    status: int
    #: The signature check's verdict: None (no secret), "ok", or why not.
    signature: str | None

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:  # the sender is gone: nobody to answer
            self.server.receiver.count_cut_short()
            self.close_connection = True
            return
        status = self.server.receiver.decide(body, dict(self.headers.items()))
        self.send_response(status)
        if status in (301, 302, 307, 308):
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class Receiver:
    """See the module docstring; use as a context manager."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        fail_rate: float = 0.0,
        stall_rate: float = 0.0,
        stall_seconds: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.secret = secret
        self.fail_rate = fail_rate
        self.stall_rate = stall_rate
        self.stall_seconds = stall_seconds
        #: Answer every delivery with this status (None: decide by the odds).
        self.answer: int | None = None
        #: Seconds to take before answering any delivery (a slow receiver).
        self.answer_delay = 0.0
        self.deliveries: list[Delivery] = []
        #: How many deliveries it stalled.
        self.stalls = 0
        #: How many POSTs ended before their body did (see the module docstring).
        self.cut_short = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def restart(self) -> None:
        self.stop()
        for _ in range(200):  # the port may linger a moment after close
            try:
                self.start()
                return
            except OSError:
                time.sleep(0.05)
        self.start()

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/mpuflask"

    # -- what it got -----------------------------------------------------------

    def decide(self, body: bytes, headers: dict[str, str]) -> int:
        signature = None
        if self.secret is not None:
            try:
                verify_webhook(body, headers.get(SIGNATURE_HEADER), self.secret)
                signature = "ok"
            except InvalidSignature as error:
                signature = str(error)
        if self.answer_delay:
            time.sleep(self.answer_delay)
        with self._lock:
            roll = self._random.random()
            status = self.answer
        if status is None:
            status = 204
            if roll < self.stall_rate:
                with self._lock:
                    self.stalls += 1
                time.sleep(self.stall_seconds)
                status = 500
            elif roll < self.stall_rate + self.fail_rate:
                status = 500
        if signature not in (None, "ok"):
            status = 400
        with self._lock:
            self.deliveries.append(Delivery(body, headers, status, signature))
        return status

    def count_cut_short(self) -> None:
        with self._lock:
            self.cut_short += 1

    def accepted(self) -> list[Delivery]:
        """Deliveries answered 2xx, in arrival order."""
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def accepted_events(self) -> list[dict[str, Any]]:
        return [delivery.event for delivery in self.accepted()]

    def all(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)
