"""One load-bench client's connection: each request sent, timed, and its
answer checked against what was expected (``load_bench.py``)."""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time
from collections import Counter
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import quote

from load_content import TAG_LEN
from load_content import KiB
from load_content import MiB
from load_content import Payload
from load_content import Registry

READ_SIZE = MiB
SOCKET_TIMEOUT = 120.0
OPERATIONS = ("small", "large", "get", "range", "abort", "delete")
# Report order; "neg-*" rows are the intentional negative checks.
ACTIONS = (
    "create",
    "uploadpart",
    "listparts",
    "complete",
    "get",
    "get-range",
    "abort",
    "delete",
    "neg-listparts",
    "neg-uploadpart",
    "neg-get",
)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    request_id: str


@dataclass
class ClientStats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    operations: Counter[str] = field(default_factory=Counter)
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass
class ErrorLog:
    """Every error any client saw: (action, request id, description)."""

    entries: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, action: str, request_id: str, text: str) -> None:
        with self.lock:
            self.entries.append((action, request_id, text))


class Budget:
    """Until the deadline, and at most ``limit`` operations (0: no limit)."""

    def __init__(self, duration: float, limit: int) -> None:
        self.deadline = time.monotonic() + duration
        self.limit = limit
        self.started = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        if time.monotonic() >= self.deadline:
            return False
        with self._lock:
            if self.limit and self.started >= self.limit:
                return False
            self.started += 1
            return True


class CheckedClient:
    """One client's connection: requests sent one at a time, every answer
    timed and checked (the operations are :class:`load_operations.LoadClient`'s)."""

    def __init__(
        self,
        number: int,
        port: int,
        args: argparse.Namespace,
        payload: Payload,
        registry: Registry,
        errors: ErrorLog,
    ) -> None:
        self.number = number
        self.port = port
        self.args = args
        self.payload = payload
        self.registry = registry
        self.errors = errors
        self.rng = random.Random(args.seed * 1000 + number)
        self.stats = ClientStats()
        self.conn = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=SOCKET_TIMEOUT
        )
        self.requests = 0
        self.uploads = 0
        self.buffer = bytearray(READ_SIZE)
        names = [name for name in OPERATIONS if args.mix[name] > 0]
        self.operation_names = names
        self.operation_weights = [args.mix[name] for name in names]

    def fail(self, action: str, request_id: str, text: str) -> None:
        self.errors.add(action, request_id, f"client {self.number}: {text}")

    def _start(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Sequence[bytes | memoryview],
    ) -> tuple[http.client.HTTPResponse, str, int]:
        """Send one request; the response with its request id and bytes sent."""
        self.requests += 1
        request_id = f"lb-{self.number}-{self.requests}"
        size = sum(len(piece) for piece in body)
        self.conn.putrequest(method, path, skip_accept_encoding=True)
        self.conn.putheader("X-Request-Id", request_id)
        for name, value in headers.items():
            self.conn.putheader(name, value)
        if body or method in ("POST", "PUT"):
            self.conn.putheader("Content-Length", str(size))
        if len(body) == 1 and size <= 64 * KiB:
            self.conn.endheaders(bytes(body[0]))
        else:
            self.conn.endheaders()
            for piece in body:
                self.conn.send(piece)
        return self.conn.getresponse(), request_id, size

    def _broken(self, action: str, request_id: str, exc: BaseException) -> None:
        self.fail(action, request_id, f"connection error: {exc!r}")
        self.conn.close()

    def call(
        self,
        action: str,
        method: str,
        path: str,
        *,
        body: Sequence[bytes | memoryview] = (),
        headers: dict[str, str] | None = None,
        expect: int = 200,
    ) -> Reply | None:
        """One request with a small answer; ``None`` (error logged) if unexpected."""
        began = time.perf_counter()
        request_id = f"lb-{self.number}-{self.requests + 1}"
        try:
            response, request_id, sent = self._start(method, path, headers or {}, body)
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._broken(action, request_id, exc)
            return None
        self.stats.latencies[action].append(time.perf_counter() - began)
        if action == "uploadpart":
            self.stats.bytes_up += sent
        reply = Reply(response.status, response.headers, data, request_id)
        if reply.status != expect:
            self.fail(
                action,
                request_id,
                f"{method} {path} -> {reply.status} (expected {expect}): "
                f"{data[:300]!r}",
            )
            return None
        return reply

    def json_of(self, action: str, reply: Reply) -> dict[str, Any] | None:
        try:
            doc = json.loads(reply.body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            self.fail(action, reply.request_id, f"not a JSON object: {reply.body!r}")
            return None
        return doc

    def new_key(self, kind: str) -> tuple[str, str]:
        """A fresh key and its percent-encoded path (some with non-ASCII, spaces)."""
        self.uploads += 1
        key = f"load/c{self.number:02d}/{kind}-{self.uploads:06d}"
        if self.uploads % 4 == 0:
            key += "/naïve file ✓.bin"
        return key, "/" + quote(key, safe="/")

    def tag(self, upload: int, part: int) -> bytes:
        text = f"|c{self.number}u{upload}p{part}|"
        return text.encode().ljust(TAG_LEN, b"#")
