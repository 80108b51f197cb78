"""Load bench: many concurrent clients against a real gunicorn (issue 6, item 5).

Run from the repository root::

    .venv/bin/python bench/load_bench.py            # 64 clients, 60 s
    .venv/bin/python bench/load_bench.py --help

It starts gunicorn (our ``gunicorn.conf.py``, ``--workers`` x ``--threads``) on
a free 127.0.0.1 port with its data directory in a temporary directory that is
removed afterwards, then runs ``--clients`` threads, each with one keep-alive
``http.client`` connection, until ``--duration`` seconds have passed (or
``--ops`` operations were started). Each client picks operations from a mix:

* small upload: create, 1-3 parts (leading parts exactly the minimum part
  size, a small last part), sometimes listparts, complete;
* large upload: create, 3-5 parts of one size in 5-10 MiB (the last one no
  larger), sent in shuffled order, listparts half-way and at the end, complete;
* get: a whole completed object; range: ``bytes=a-b``, ``bytes=a-`` or
  ``bytes=-n`` of one;
* abort: an upload with a part or two, aborted; then listparts and uploadpart
  on it must answer 10024 (intentional negatives), and a second abort 204;
* delete: a completed object nobody is reading; then its GET must be 404.

Everything is verified: each part's etag is the MD5 of the bytes sent, the
complete's etag is ``md5(part md5s)-N``, listparts lists exactly the parts
sent, GET answers the object's etag, Content-Type, length (Content-Range for
ranges) and the very bytes uploaded, compared as they stream in (1 MiB reads).
Part bodies are slices of one pre-generated random buffer plus a 32-byte tag
unique to (client, upload, part), so every object is distinct while the MD5 of
a slice is computed once and reused (``hashlib`` state copy, then the tag).

It prints requests by action with latency percentiles, errors (any unexpected
status, connection error or mismatch; must be 0), throughput, and the CPU used
by the client process, the server processes and the whole machine, so one can
tell whether the client limited the figures.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import http.client
import json
import math
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections import defaultdict
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.oracle import etag_from_md5s  # noqa: E402

MiB = 1 << 20
KiB = 1 << 10
TAG_LEN = 32
READ_SIZE = MiB
SOCKET_TIMEOUT = 120.0
DEFAULT_MIX = "small=40,large=10,get=25,range=15,abort=5,delete=5"
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


# -- settings -----------------------------------------------------------------


def parse_size(text: str) -> int:
    """``5242880``, ``5MiB``, ``5M``, ``256KiB``, ``256k`` -> bytes."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    for suffix, factor in (("k", KiB), ("m", MiB), ("g", 1 << 30)):
        if value.endswith(suffix):
            return int(float(value[:-1]) * factor)
    return int(value)


def parse_mix(text: str) -> dict[str, float]:
    """``small=40,large=10,...`` -> weights by operation (others 0)."""
    weights = dict.fromkeys(OPERATIONS, 0.0)
    for item in text.split(","):
        name, _, weight = item.partition("=")
        name = name.strip()
        if name not in weights:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r} in --mix")
        weights[name] = float(weight)
    if weights["small"] + weights["large"] <= 0:
        raise argparse.ArgumentTypeError("--mix needs some small or large uploads")
    return weights


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Concurrent mixed load against mpuflask under gunicorn.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds to start operations"
    )
    parser.add_argument(
        "--ops", type=int, default=0, help="stop after this many operations (0: no cap)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument(
        "--min-part-size",
        type=parse_size,
        default=5 * MiB,
        help="MPUFLASK_MIN_PART_SIZE (leading parts of small uploads are this size)",
    )
    parser.add_argument(
        "--large-part-min", type=parse_size, default=5 * MiB, help="smallest large part"
    )
    parser.add_argument(
        "--large-part-max", type=parse_size, default=10 * MiB, help="largest large part"
    )
    parser.add_argument(
        "--large-parts", default="3-5", help="parts per large upload, as lo-hi"
    )
    parser.add_argument(
        "--small-last-max",
        type=parse_size,
        default=256 * KiB,
        help="largest last part of a small upload",
    )
    parser.add_argument(
        "--mix", type=parse_mix, default=DEFAULT_MIX, help="operation weights"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra server environment, e.g. MPUFLASK_DURABLE=false (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--tmp-dir", default=None, help="parent of the temporary data directory"
    )
    parser.add_argument(
        "--log", type=Path, default=None, help="keep the server log at this path"
    )
    args = parser.parse_args(argv)
    low, _, high = args.large_parts.partition("-")
    args.large_parts_range = (int(low), int(high or low))
    if args.large_part_min < args.min_part_size:
        args.large_part_min = args.min_part_size
    if args.large_part_max < args.large_part_min:
        parser.error("--large-part-max is below the large part minimum")
    if args.min_part_size <= TAG_LEN or args.small_last_max <= TAG_LEN:
        parser.error(f"part sizes must exceed the {TAG_LEN}-byte tag")
    if args.small_last_max > args.min_part_size:
        parser.error("--small-last-max must not exceed --min-part-size")
    if args.clients < 1 or args.duration <= 0:
        parser.error("--clients and --duration must be positive")
    return args


# -- generated content ----------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """``source[start:start + length]``: a piece of an object's expected bytes."""

    source: bytes
    start: int
    length: int

    def view(self) -> memoryview:
        return memoryview(self.source)[self.start : self.start + self.length]


@dataclass(frozen=True)
class Part:
    number: int
    body: Segment  # a slice of the shared buffer
    tag: bytes  # TAG_LEN bytes unique to this part
    md5: str

    @property
    def size(self) -> int:
        return self.body.length + len(self.tag)


class Payload:
    """One random buffer, sliced into part bodies; MD5s of slices are cached."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = random.Random(args.seed)
        largest = max(args.large_part_max, args.min_part_size)
        self.buffer = rng.randbytes(largest + 16 * MiB)
        self.small_last_max = args.small_last_max
        # Large uploads: 8 part sizes, each at 8 offsets (64 cached MD5 states).
        sizes = sorted(
            {rng.randint(args.large_part_min, args.large_part_max) for _ in range(8)}
        )
        self.large: dict[int, list[int]] = {
            size: [rng.randrange(len(self.buffer) - size) for _ in range(8)]
            for size in sizes
        }
        # Leading parts of small uploads: exactly the minimum part size.
        self.leading_size = args.min_part_size
        self.leading_offsets = [
            rng.randrange(len(self.buffer) - args.min_part_size) for _ in range(16)
        ]
        self._states: dict[tuple[int, int], hashlib._Hash] = {}
        self._lock = threading.Lock()

    def _state(self, offset: int, length: int) -> hashlib._Hash:
        key = (offset, length)
        with self._lock:
            state = self._states.get(key)
        if state is None:
            state = hashlib.md5(memoryview(self.buffer)[offset : offset + length])
            with self._lock:
                self._states.setdefault(key, state)
        return state

    def part(
        self, number: int, offset: int, size: int, tag: bytes, *, cache: bool
    ) -> Part:
        """Part ``number`` of ``size`` bytes: the buffer at ``offset``, then ``tag``."""
        length = size - len(tag)
        view = memoryview(self.buffer)[offset : offset + length]
        digest = self._state(offset, length).copy() if cache else hashlib.md5(view)
        digest.update(tag)
        return Part(
            number, Segment(self.buffer, offset, length), tag, digest.hexdigest()
        )

    def small_part(self, number: int, rng: random.Random, tag: bytes) -> Part:
        size = rng.randint(len(tag) + 1, self.small_last_max)
        offset = rng.randrange(len(self.buffer) - size)
        return self.part(number, offset, size, tag, cache=False)


@dataclass(eq=False)
class StoredObject:
    """A completed object: where it is and exactly which bytes it must hold."""

    key: str
    path: str
    etag: str
    content_type: str
    segments: list[Segment]
    starts: list[int]
    size: int
    readers: int = 0

    @classmethod
    def from_parts(
        cls, key: str, path: str, etag: str, content_type: str, parts: Sequence[Part]
    ) -> StoredObject:
        segments: list[Segment] = []
        for part in parts:
            segments.append(part.body)
            segments.append(Segment(part.tag, 0, len(part.tag)))
        starts, position = [], 0
        for segment in segments:
            starts.append(position)
            position += segment.length
        return cls(key, path, etag, content_type, segments, starts, position)

    def matches(self, position: int, data: memoryview) -> bool:
        """Whether ``data`` is this object's bytes from ``position`` (memcmp)."""
        if position + len(data) > self.size:
            return False
        index = bisect.bisect_right(self.starts, position) - 1
        done = 0
        while done < len(data):
            segment = self.segments[index]
            within = position + done - self.starts[index]
            count = min(len(data) - done, segment.length - within)
            piece = data[done : done + count]
            if not segment.source.startswith(piece, segment.start + within):
                return False
            done += count
            index += 1
        return True


class Registry:
    """Completed objects, shared by all clients; deletes never race a reader."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: list[StoredObject] = []

    def add(self, obj: StoredObject) -> None:
        with self._lock:
            self._objects.append(obj)

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def borrow(self, rng: random.Random) -> StoredObject | None:
        with self._lock:
            if not self._objects:
                return None
            obj = rng.choice(self._objects)
            obj.readers += 1
            return obj

    def give_back(self, obj: StoredObject) -> None:
        with self._lock:
            obj.readers -= 1

    def take_for_delete(self, rng: random.Random) -> StoredObject | None:
        """Remove an object no one is reading, so no GET may see it vanish."""
        with self._lock:
            for _ in range(8):
                if not self._objects:
                    return None
                index = rng.randrange(len(self._objects))
                obj = self._objects[index]
                if obj.readers == 0:
                    self._objects[index] = self._objects[-1]
                    self._objects.pop()
                    return obj
            return None


# -- the clients ------------------------------------------------------------------


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


class LoadClient:
    """One client: one connection, one operation at a time, all answers checked."""

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

    # -- plumbing ---------------------------------------------------------------

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

    # -- operations ---------------------------------------------------------------

    def run(self, budget: Budget) -> None:
        while budget.take():
            (name,) = self.rng.choices(self.operation_names, self.operation_weights)
            if name in ("get", "range", "delete") and not len(self.registry):
                name = "small"
            try:
                getattr(self, f"op_{name}")()
            except Exception as exc:  # a bench bug must show, not kill the thread
                self.fail(name, "-", f"client exception: {exc!r}")
                self.conn.close()
            self.stats.operations[name] += 1

    def op_small(self) -> None:
        count = self.rng.randint(1, 3)
        self.upload("small", "text/plain; charset=utf-8", count, large=False)

    def op_large(self) -> None:
        low, high = self.args.large_parts_range
        self.upload("large", "video/mp4", self.rng.randint(low, high), large=True)

    def plan(self, count: int, *, large: bool) -> list[Part]:
        """Parts 1..count: equal leading parts, a last part no larger."""
        upload = self.uploads
        tags = [self.tag(upload, number) for number in range(1, count + 1)]
        payload = self.payload
        if large:
            size = self.rng.choice(list(payload.large))
            parts = [
                payload.part(
                    number,
                    self.rng.choice(payload.large[size]),
                    size,
                    tags[number - 1],
                    cache=True,
                )
                for number in range(1, count)
            ]
            last = self.rng.choice([s for s in payload.large if s <= size])
            offset = self.rng.choice(payload.large[last])
            parts.append(payload.part(count, offset, last, tags[-1], cache=True))
            return parts
        parts = [
            payload.part(
                number,
                self.rng.choice(payload.leading_offsets),
                payload.leading_size,
                tags[number - 1],
                cache=True,
            )
            for number in range(1, count)
        ]
        parts.append(payload.small_part(count, self.rng, tags[-1]))
        return parts

    def create(self, key: str, path: str, content_type: str) -> str | None:
        reply = self.call(
            "create",
            "POST",
            f"{path}?action=mpu-create",
            headers={"Content-Type": content_type},
        )
        if reply is None or (doc := self.json_of("create", reply)) is None:
            return None
        upload_id = doc.get("uploadId")
        if doc.get("key") != key or not isinstance(upload_id, str) or not upload_id:
            self.fail("create", reply.request_id, f"create answered {doc!r}")
            return None
        return upload_id

    def upload_part(self, path: str, upload_id: str, part: Part) -> bool:
        query = f"action=mpu-uploadpart&uploadId={quote(upload_id)}"
        reply = self.call(
            "uploadpart",
            "PUT",
            f"{path}?{query}&partNumber={part.number}",
            body=[part.body.view(), part.tag],
        )
        if reply is None or (doc := self.json_of("uploadpart", reply)) is None:
            return False
        if doc != {"partNumber": part.number, "etag": part.md5}:
            self.fail(
                "uploadpart",
                reply.request_id,
                f"part {part.number} answered {doc!r}, expected etag {part.md5}",
            )
            return False
        return True

    def check_listparts(self, path: str, upload_id: str, sent: Sequence[Part]) -> bool:
        reply = self.call(
            "listparts",
            "GET",
            f"{path}?action=mpu-listparts&uploadId={quote(upload_id)}",
        )
        if reply is None or (doc := self.json_of("listparts", reply)) is None:
            return False
        expected = [
            {"partNumber": p.number, "etag": p.md5, "size": p.size}
            for p in sorted(sent, key=lambda p: p.number)
        ]
        if doc.get("uploadId") != upload_id or doc.get("parts") != expected:
            self.fail(
                "listparts",
                reply.request_id,
                f"listparts answered {doc!r}, expected parts {expected!r}",
            )
            return False
        return True

    def upload(self, kind: str, content_type: str, count: int, *, large: bool) -> None:
        key, path = self.new_key(kind)
        upload_id = self.create(key, path, content_type)
        if upload_id is None:
            return
        parts = self.plan(count, large=large)
        order = list(parts)
        if large:
            self.rng.shuffle(order)
        sent: list[Part] = []
        for index, part in enumerate(order):
            if not self.upload_part(path, upload_id, part):
                return
            sent.append(part)
            if large and index == len(order) // 2 - 1:
                if not self.check_listparts(path, upload_id, sent):
                    return
        if large or self.rng.random() < 0.3:
            if not self.check_listparts(path, upload_id, sent):
                return
        body = json.dumps(
            {"parts": [{"partNumber": p.number, "etag": p.md5} for p in parts]}
        ).encode()
        reply = self.call(
            "complete",
            "POST",
            f"{path}?action=mpu-complete&uploadId={quote(upload_id)}",
            body=[body],
            headers={"Content-Type": "application/json"},
        )
        if reply is None:
            return
        etag = etag_from_md5s(part.md5 for part in parts)
        if reply.headers.get("etag") != f'"{etag}"':
            self.fail(
                "complete",
                reply.request_id,
                f"{key}: etag {reply.headers.get('etag')!r}, expected {etag!r}",
            )
            return
        obj = StoredObject.from_parts(key, path, etag, content_type, parts)
        self.registry.add(obj)

    def op_get(self) -> None:
        obj = self.registry.borrow(self.rng)
        if obj is None:
            return
        try:
            self.get(obj, None)
        finally:
            self.registry.give_back(obj)

    def op_range(self) -> None:
        obj = self.registry.borrow(self.rng)
        if obj is None:
            return
        try:
            shape = self.rng.random()
            if shape < 0.6:
                first = self.rng.randrange(obj.size)
                span = self.rng.choice([1, 100, 64 * KiB, MiB, 3 * MiB, obj.size])
                self.get(obj, (first, min(obj.size, first + span) - 1, "closed"))
            elif shape < 0.8:
                first = self.rng.randrange(obj.size)
                self.get(obj, (first, obj.size - 1, "open"))
            else:
                count = self.rng.randint(1, min(obj.size, 2 * MiB))
                self.get(obj, (obj.size - count, obj.size - 1, "suffix"))
        finally:
            self.registry.give_back(obj)

    def get(self, obj: StoredObject, wanted: tuple[int, int, str] | None) -> None:
        """GET the object (or a range), streaming and comparing 1 MiB at a time."""
        action = "get" if wanted is None else "get-range"
        headers: dict[str, str] = {}
        first, last, status = 0, obj.size - 1, 200
        if wanted is not None:
            first, last, shape = wanted
            status = 206
            headers["Range"] = {
                "closed": f"bytes={first}-{last}",
                "open": f"bytes={first}-",
                "suffix": f"bytes=-{last - first + 1}",
            }[shape]
        began = time.perf_counter()
        request_id = f"lb-{self.number}-{self.requests + 1}"
        what = f"GET {obj.path} {headers.get('Range', '')}".rstrip()
        try:
            response, request_id, _ = self._start(
                "GET", f"{obj.path}?action=get", headers, ()
            )
            if response.status != status:
                data = response.read()
                self.fail(
                    action,
                    request_id,
                    f"{what} -> {response.status} (expected {status}): {data[:300]!r}",
                )
                return
            problems = self.check_get_headers(obj, response, first, last, wanted)
            position, view, same = first, memoryview(self.buffer), True
            while True:
                count = response.readinto(view)
                if not count:
                    break
                if same and not obj.matches(position, view[:count]):
                    same = False
                    problems.append(f"bytes differ in the MiB read at {position}")
                position += count
        except (OSError, http.client.HTTPException) as exc:
            self._broken(action, request_id, exc)
            return
        self.stats.latencies[action].append(time.perf_counter() - began)
        self.stats.bytes_down += position - first
        if position != last + 1:
            problems.append(
                f"got {position - first} bytes, expected {last + 1 - first}"
            )
        if problems:
            self.fail(action, request_id, f"{what}: {'; '.join(problems)}")

    @staticmethod
    def check_get_headers(
        obj: StoredObject,
        response: http.client.HTTPResponse,
        first: int,
        last: int,
        wanted: tuple[int, int, str] | None,
    ) -> list[str]:
        problems = []
        if response.getheader("ETag") != f'"{obj.etag}"':
            problems.append(f"ETag {response.getheader('ETag')!r} != {obj.etag!r}")
        if response.getheader("Content-Type") != obj.content_type:
            problems.append(f"Content-Type {response.getheader('Content-Type')!r}")
        if response.getheader("Content-Length") != str(last + 1 - first):
            problems.append(f"Content-Length {response.getheader('Content-Length')}")
        if wanted is not None:
            expected = f"bytes {first}-{last}/{obj.size}"
            if response.getheader("Content-Range") != expected:
                got = response.getheader("Content-Range")
                problems.append(f"Content-Range {got!r} != {expected!r}")
        return problems

    def op_abort(self) -> None:
        key, path = self.new_key("abort")
        upload_id = self.create(key, path, "application/octet-stream")
        if upload_id is None:
            return
        parts = self.plan(self.rng.randint(1, 2), large=False)
        for part in parts:
            if not self.upload_part(path, upload_id, part):
                return
        if not self.check_listparts(path, upload_id, parts):
            return
        query = f"uploadId={quote(upload_id)}"
        if self.call("abort", "DELETE", f"{path}?action=mpu-abort&{query}", expect=204):
            # Intentional negatives: the upload is gone (10024), abort is idempotent.
            self.negative(
                "neg-listparts", "GET", f"{path}?action=mpu-listparts&{query}"
            )
            self.negative(
                "neg-uploadpart",
                "PUT",
                f"{path}?action=mpu-uploadpart&{query}&partNumber=3",
                body=[b"x" * 100],
            )
            self.call("abort", "DELETE", f"{path}?action=mpu-abort&{query}", expect=204)

    def negative(
        self,
        action: str,
        method: str,
        path: str,
        body: Sequence[bytes | memoryview] = (),
    ) -> None:
        reply = self.call(action, method, path, body=body, expect=400)
        if reply is not None and b"(10024)" not in reply.body:
            self.fail(action, reply.request_id, f"{path}: answered {reply.body!r}")

    def op_delete(self) -> None:
        obj = self.registry.take_for_delete(self.rng)
        if obj is None:
            return
        if self.call("delete", "DELETE", f"{obj.path}?action=delete", expect=204):
            self.call("neg-get", "GET", f"{obj.path}?action=get", expect=404)


# -- measuring ------------------------------------------------------------------


def process_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by these live processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def all_processes() -> dict[int, tuple[str, float]]:
    """Every process's (command, CPU seconds so far), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return found


def busiest_others(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    ours: set[int],
) -> list[tuple[str, float]]:
    """The other processes that used the most CPU between two snapshots."""
    used: dict[str, float] = defaultdict(float)
    for pid, (name, seconds) in after.items():
        if pid not in ours:
            used[name] += seconds - before.get(pid, (name, 0.0))[1]
    return [
        (name, seconds)
        for name, seconds in sorted(used.items(), key=lambda i: -i[1])[:4]
        if seconds >= 0.1
    ]


def machine_cpu() -> tuple[float, float, float]:
    """(busy, iowait, total) CPU seconds of the machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle, iowait = values[3], values[4]
    total = sum(values[:8])
    return (total - idle - iowait) / ticks, iowait / ticks, total / ticks


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    index = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def scrape_metrics(port: int) -> dict[str, float]:
    """Requests counted by the server (all workers), by status class."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/?action=metrics")
        response = conn.getresponse()
        text = response.read().decode()
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        conn.close()
    if response.status != 200:
        return {}
    counts: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("mpuflask_requests_total{") and 'status="' in line:
            status = line.split('status="', 1)[1][0]
            counts[f"{status}xx"] += float(line.rsplit(" ", 1)[1])
    return counts


def booted_workers(running: Any, workers: int) -> list[int]:
    """The worker pids, once all ``workers`` have forked (at most 30 s)."""
    deadline = time.monotonic() + 30
    pids: list[int] = running.worker_pids()
    while len(pids) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = running.worker_pids()
    return pids


@contextmanager
def server(args: argparse.Namespace, tmp: Path) -> Iterator[Any]:
    """gunicorn from ``gunicorn.conf.py``, via the test suite's helper."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import gunicorn_server

    env = {"MPUFLASK_MIN_PART_SIZE": str(args.min_part_size)}
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    with gunicorn_server(
        tmp, workers=args.workers, threads=args.threads, env=env
    ) as running:
        yield running


def log_findings(log: Path, request_ids: set[str]) -> tuple[list[str], list[str]]:
    """Server log lines for the failed requests, and its ERROR/worker lines."""
    related, alarming = [], []
    alarms = ('"level": "ERROR"', '"level": "CRITICAL"', "WORKER TIMEOUT", "Traceback")
    for line in log.read_text(errors="replace").splitlines():
        if any(f'"request_id": "{rid}"' in line for rid in request_ids):
            related.append(line)
        if any(alarm in line for alarm in alarms):
            alarming.append(line)
    return related, alarming


# -- the run ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"load bench: {args.clients} clients, {args.duration:g} s"
        + (f" or {args.ops} operations" if args.ops else "")
        + f"; gunicorn {args.workers} workers x {args.threads} threads;"
        f" min part {args.min_part_size / MiB:g} MiB; large parts"
        f" {args.large_part_min / MiB:g}-{args.large_part_max / MiB:g} MiB"
        f" x {args.large_parts}; mix {args.mix}; server env {args.env or '-'};"
        f" {os.cpu_count()} CPUs",
        flush=True,
    )
    payload = Payload(args)
    registry = Registry()
    errors = ErrorLog()
    with tempfile.TemporaryDirectory(prefix="mpuflask-load-", dir=args.tmp_dir) as td:
        tmp = Path(td)
        with server(args, tmp) as running:
            port = int(running.url.rsplit(":", 1)[1].strip("/"))
            pids = [running.process.pid, *booted_workers(running, args.workers)]
            metrics0 = scrape_metrics(port)
            clients = [
                LoadClient(n, port, args, payload, registry, errors)
                for n in range(args.clients)
            ]
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            server0, machine0 = process_cpu(pids), machine_cpu()
            processes0 = all_processes()
            began = time.monotonic()
            budget = Budget(args.duration, args.ops)
            threads = [
                threading.Thread(target=c.run, args=(budget,), name=f"client-{n}")
                for n, c in enumerate(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(max(1.0, budget.deadline + 600 - time.monotonic()))
            wall = time.monotonic() - began
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            server1, machine1 = process_cpu(pids), machine_cpu()
            others = busiest_others(processes0, all_processes(), {os.getpid(), *pids})
            hung = [t.name for t in threads if t.is_alive()]
            for name in hung:
                errors.add("-", "-", f"{name} still running 600 s after the deadline")
            for client in clients:
                client.conn.close()
            final_workers = running.worker_pids()
            metrics1 = scrape_metrics(port)
            metrics = {k: v - metrics0.get(k, 0.0) for k, v in metrics1.items()}
            stored_bytes = sum(
                f.stat().st_size for f in running.data_dir.rglob("*") if f.is_file()
            )
        log_path = running.log
        failed_ids = {rid for _, rid, _ in errors.entries if rid != "-"}
        related, alarming = log_findings(log_path, failed_ids)
        kept = args.log
        if kept is None and (errors.entries or alarming):
            kept = Path(tempfile.gettempdir()) / f"mpuflask-load-{os.getpid()}.log"
        if kept is not None:
            shutil.copyfile(log_path, kept)

    report(
        args,
        clients,
        errors,
        wall=wall,
        client_cpu=(usage1.ru_utime + usage1.ru_stime)
        - (usage0.ru_utime + usage0.ru_stime),
        server_cpu=server1 - server0,
        machine=(
            machine1[0] - machine0[0],
            machine1[1] - machine0[1],
            machine1[2] - machine0[2],
        ),
        metrics=metrics,
        others=others,
        objects=len(registry),
        stored_bytes=stored_bytes,
        restarts=sorted(set(final_workers) ^ set(pids[1:])),
    )
    if related:
        print("\nserver log lines of the failed requests:")
        for line in related[:40]:
            print("  " + line[:1000])
    if alarming:
        print(f"\nserver log: {len(alarming)} ERROR/worker lines, the first:")
        for line in alarming[:20]:
            print("  " + line[:2000])
    if kept is not None:
        print(f"\nserver log kept at {kept}")
    return 1 if errors.entries or alarming else 0


def report(
    args: argparse.Namespace,
    clients: Sequence[LoadClient],
    errors: ErrorLog,
    *,
    wall: float,
    client_cpu: float,
    server_cpu: float,
    machine: tuple[float, float, float],
    metrics: dict[str, float],
    others: list[tuple[str, float]],
    objects: int,
    stored_bytes: int,
    restarts: list[int],
) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)
    operations: Counter[str] = Counter()
    for client in clients:
        for action, values in client.stats.latencies.items():
            latencies[action].extend(values)
        operations.update(client.stats.operations)
    errors_by_action = Counter(action for action, _, _ in errors.entries)
    up = sum(c.stats.bytes_up for c in clients)
    down = sum(c.stats.bytes_down for c in clients)
    total = sum(len(v) for v in latencies.values())
    negatives = sum(len(v) for a, v in latencies.items() if a.startswith("neg-"))

    print(
        f"\nran {wall:.1f} s; operations: "
        + ", ".join(f"{name} {operations[name]}" for name in OPERATIONS)
    )
    print(
        f"\n{'action':<15}{'requests':>9}{'errors':>7}"
        f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    )
    for action in ACTIONS:
        values = sorted(latencies.get(action, []))
        if not values and not errors_by_action[action]:
            continue
        cells = [
            f"{percentile(values, q) * 1000:9.1f}" if values else f"{'-':>9}"
            for q in (0.5, 0.9, 0.99, 1.0)
        ]
        print(
            f"{action:<15}{len(values):>9}{errors_by_action[action]:>7}"
            + "".join(cells)
        )
    print(f"{'total':<15}{total:>9}{len(errors.entries):>7}")

    print(
        f"\nERRORS: {len(errors.entries)}"
        f" (intentional negatives answered as expected: {negatives})"
    )
    for action, request_id, text in errors.entries[:30]:
        print(f"  [{action}] request {request_id}: {text[:600]}")
    if len(errors.entries) > 30:
        print(f"  ... and {len(errors.entries) - 30} more")

    print(
        f"\nthroughput: {total / wall:.1f} requests/s;"
        f" up {up / MiB:.0f} MiB = {up / MiB / wall:.1f} MiB/s;"
        f" down {down / MiB:.0f} MiB = {down / MiB / wall:.1f} MiB/s"
    )
    busy, iowait, span = machine
    cpus = os.cpu_count() or 1
    other = busy - client_cpu - server_cpu

    def share(seconds: float) -> str:
        cores = seconds / wall
        return (
            f"{seconds:6.1f} CPU-s = {cores:4.2f} cores = {100 * seconds / span:3.0f}%"
        )

    print(f"\nCPU during the run ({cpus} CPUs, {span:.0f} CPU-s in all):")
    print(f"  {'client (this process)':<36}{share(client_cpu)}")
    print(f"  {'server (gunicorn master + workers)':<36}{share(server_cpu)}")
    print(f"  {'everything else (others, kernel)':<36}{share(other)}")
    if others:
        busiest = ", ".join(f"{name} {seconds:.1f}" for name, seconds in others)
        print(f"    busiest other processes (CPU-s): {busiest}")
    print(f"  machine busy {100 * busy / span:.0f}%, iowait {100 * iowait / span:.0f}%")
    statuses = ", ".join(f"{k} {v:.0f}" for k, v in sorted(metrics.items()))
    print(
        f"\nserver: requests its metrics counted during the run (plus one scrape):"
        f" {statuses or 'unavailable'}; worker pids changed: {restarts or 'none'};"
        f" {objects} objects left, {stored_bytes / MiB:.0f} MiB in the data dir"
    )


if __name__ == "__main__":
    sys.exit(main())
