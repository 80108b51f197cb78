"""The workloads of the server benchmark, each measured on one server.

Each function drives one server (ours, the lean app, a baseline revision, or
tus for the single stream), checks every answer, and returns its figures as a
``{name: value}`` dict; ``server_bench.py`` runs them alternately on every
server and compares. CPU figures are the server's own (user + system of its
processes, from ``/proc``) during exactly the phase named, so two apps are
compared on the same work: "parts" never includes a complete (the lean app's
complete copies every byte; ours copies none).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench_client import Answer
from bench_client import Connection
from bench_client import expect
from bench_procs import MIB
from bench_procs import Server
from bench_procs import disk_writer
from bench_procs import metered

GIB = 1 << 30
Figures = dict[str, float]


@dataclass
class Source:
    """The bytes uploaded (in memory: the client must not read a disk), hashed."""

    data: bytes
    part_size: int
    part_md5s: list[str]
    md5: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def part_count(self) -> int:
        return len(self.part_md5s)

    def part(self, index: int) -> memoryview:
        return memoryview(self.data)[
            index * self.part_size : (index + 1) * self.part_size
        ]


def make_source(size: int, part_size: int) -> Source:
    """``size`` random bytes, with the MD5 of each part and of the whole."""
    data = os.urandom(size)
    md5s = [
        hashlib.md5(data[i : i + part_size], usedforsecurity=False).hexdigest()
        for i in range(0, size, part_size)
    ]
    whole = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return Source(data, part_size, md5s, whole)


# -- mpuflask's API (the lean app answers the same URLs) -------------------------


def create(conn: Connection, key: str) -> str:
    answer = expect(conn.request("POST", f"/{key}?action=mpu-create"), 200, "create")
    upload_id: str = answer.json()["uploadId"]
    return upload_id


def put_part(
    conn: Connection,
    key: str,
    upload_id: str,
    number: int,
    body: bytes | memoryview,
    md5: str,
) -> dict[str, object]:
    target = f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber={number}"
    answer = expect(conn.request("PUT", target, body), 200, f"part {number}")
    part: dict[str, object] = answer.json()
    if part.get("etag") != md5:
        raise RuntimeError(f"part {number}: etag {part.get('etag')}, not {md5}")
    return {"partNumber": number, "etag": md5}


def complete(
    conn: Connection, key: str, upload_id: str, parts: list[dict[str, object]]
) -> Answer:
    body = json.dumps({"parts": parts}).encode()
    target = f"/{key}?action=mpu-complete&uploadId={upload_id}"
    return expect(conn.request("POST", target, body), 200, "complete")


def delete(conn: Connection, key: str) -> None:
    expect(conn.request("DELETE", f"/{key}?action=delete"), 204, "delete")


def get(
    conn: Connection,
    key: str,
    size: int,
    byte_range: tuple[int, int] | None = None,
    keep: bool = False,
) -> Answer:
    headers = None
    status = 200
    if byte_range is not None:
        headers = {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"}
        status, size = 206, byte_range[1] - byte_range[0]
    answer = expect(
        conn.request("GET", f"/{key}?action=get", headers=headers, keep_body=keep),
        status,
        "get",
    )
    if int(answer.headers.get("content-length", -1)) != size:
        raise RuntimeError(
            f"get: {answer.headers.get('content-length')} bytes, not {size}"
        )
    return answer


@contextmanager
def connections(server: Server, count: int) -> Iterator[list[Connection]]:
    conns = [Connection(server.port) for _ in range(count)]
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


def _run_threads(count: int, work: Callable[[int], None]) -> None:
    with ThreadPoolExecutor(count) as pool:
        for future in [pool.submit(work, index) for index in range(count)]:
            future.result()


# -- the workloads ------------------------------------------------------------------


def small_objects(server: Server, clients: int, ops: int, size: int = 4096) -> Figures:
    """``ops`` round trips by ``clients``: create, a part, complete, GET, delete."""
    body = bytes(range(256)) * (size // 256)
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    per_client = -(-ops // clients)
    tag = f"{time.monotonic_ns():x}"

    with connections(server, clients) as conns:

        def work(index: int) -> None:
            conn = conns[index]
            for op in range(per_client):
                key = f"small/{tag}/{index}/{op}"
                upload_id = create(conn, key)
                part = put_part(conn, key, upload_id, 1, body, md5)
                complete(conn, key, upload_id, [part])
                if get(conn, key, size, keep=True).body != body:
                    raise RuntimeError("small object: GET gave other bytes")
                delete(conn, key)

        with metered(server) as meter:
            _run_threads(clients, work)
    done = per_client * clients
    return {
        "small_ops": done / meter.wall,
        "small_cpu_ms": meter.server / done * 1000,
        "others": meter.others / meter.wall,
    }


def tiny_parts(server: Server, clients: int, parts: int, size: int = 16) -> Figures:
    """``parts`` parts of ``size`` bytes in one upload; then listparts and complete."""
    key = f"tiny/{time.monotonic_ns():x}"
    bodies = [f"{n:0{size}d}"[-size:].encode() for n in range(1, parts + 1)]
    md5s = [hashlib.md5(b, usedforsecurity=False).hexdigest() for b in bodies]
    refs: list[dict[str, object]] = [{} for _ in bodies]
    with connections(server, clients) as conns:
        upload_id = create(conns[0], key)

        def work(index: int) -> None:
            for n in range(index, parts, clients):
                refs[n] = put_part(
                    conns[index], key, upload_id, n + 1, bodies[n], md5s[n]
                )

        with metered(server) as meter:
            _run_threads(clients, work)
        start = time.perf_counter()
        target = f"/{key}?action=mpu-listparts&uploadId={upload_id}"
        listed = expect(conns[0].request("GET", target), 200, "listparts").json()
        list_s = time.perf_counter() - start
        if len(listed["parts"]) != parts:
            raise RuntimeError(f"listparts: {len(listed['parts'])} parts, not {parts}")
        start = time.perf_counter()
        complete(conns[0], key, upload_id, refs)
        complete_s = time.perf_counter() - start
        range_ms = _small_range_ms(conns[0], key, b"".join(bodies))
        start = time.perf_counter()
        delete(conns[0], key)
        delete_s = time.perf_counter() - start
    return {
        "tiny_parts": parts / meter.wall,
        "tiny_list_ms": list_s * 1000,
        "tiny_complete_ms": complete_s * 1000,
        "tiny_delete_ms": delete_s * 1000,
        "tiny_range_ms": range_ms,
    }


def _small_range_ms(conn: Connection, key: str, data: bytes, times: int = 21) -> float:
    """The median time of a 100-byte range GET of ``key`` (holding ``data``),
    from its middle: what a reader seeking in a many-part object waits."""
    start = len(data) // 2
    span = (start, start + 100)
    took = []
    for _ in range(times):
        begun = time.perf_counter()
        answer = get(conn, key, len(data), span, keep=True)
        took.append(time.perf_counter() - begun)
        if answer.body != data[span[0] : span[1]]:
            raise RuntimeError("get: the range's bytes are not the object's")
    return statistics.median(took) * 1000


def upload_parts(
    server: Server, conns: list[Connection], key: str, source: Source
) -> tuple[str, list[dict[str, object]]]:
    """Create, then every part of ``source`` from ``len(conns)`` threads."""
    upload_id = create(conns[0], key)
    refs: list[dict[str, object]] = [{} for _ in range(source.part_count)]
    lock = threading.Lock()
    queue = list(range(source.part_count - 1, -1, -1))

    def work(index: int) -> None:
        while True:
            with lock:
                if not queue:
                    return
                n = queue.pop()
            refs[n] = put_part(
                conns[index], key, upload_id, n + 1, source.part(n), source.part_md5s[n]
            )

    _run_threads(len(conns), work)
    return upload_id, refs


def parallel_upload(
    server: Server,
    source: Source,
    threads: int,
    noise: Path | None = None,
    reads: bool = False,
    ranges: int = 64,
    range_size: int = 16 * MIB,
) -> Figures:
    """Parts from ``threads`` threads, complete (with another process writing
    to the disk if ``noise``), then with ``reads`` a GET and ranged GETs."""
    key = f"multi/{time.monotonic_ns():x}"
    gib = source.size / GIB
    out: Figures = {}
    with connections(server, threads) as conns:
        server.reset_peak_rss()
        with metered(server) as meter:
            upload_id, refs = upload_parts(server, conns, key, source)
        out[f"parts{threads}_mibs"] = source.size / MIB / meter.wall
        out[f"parts{threads}_cpu"] = meter.server / gib
        out[f"parts{threads}_rss"] = server.peak_rss_mib()
        with disk_writer(noise) if noise else nullcontext():
            start = time.perf_counter()
            complete(conns[0], key, upload_id, refs)
            out[f"complete{threads}_ms"] = (time.perf_counter() - start) * 1000
        if reads:
            times = _get_times(source.size)
            with metered(server) as meter:
                for _ in range(times):
                    get(conns[0], key, source.size)
            out["get_multi_cpu"] = meter.server / (gib * times)
            out["get_multi_mibs"] = source.size * times / MIB / meter.wall
            step = (source.size - range_size) // max(1, ranges - 1)
            # Ranges that start mid-part and cross part boundaries.
            spans = [
                (i * step + 12345, i * step + 12345 + range_size) for i in range(ranges)
            ]
            spans = [(a, min(b, source.size)) for a, b in spans if a < source.size]
            with metered(server) as meter:
                for span in spans:
                    get(conns[0], key, source.size, span)
            out["get_range_cpu"] = meter.server / (sum(b - a for a, b in spans) / GIB)
        delete(conns[0], key)
    return out


def single_part_get(server: Server, source: Source, size: int) -> Figures:
    """A one-part object of ``size`` bytes, then its GET (CPU per GiB)."""
    key = f"single/{time.monotonic_ns():x}"
    body = memoryview(source.data)[:size]
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    with connections(server, 1) as (conn,):
        upload_id = create(conn, key)
        part = put_part(conn, key, upload_id, 1, body, md5)
        complete(conn, key, upload_id, [part])
        times = _get_times(size)
        with metered(server) as meter:
            for _ in range(times):
                get(conn, key, size)
        delete(conn, key)
    return {
        "get_single_cpu": meter.server / (size * times / GIB),
        "get_single_mibs": size * times / MIB / meter.wall,
    }


def _get_times(size: int) -> int:
    """How many GETs of ``size`` bytes read about 1 GiB: a GET's CPU is a
    tenth of a second, which the kernel's 10 ms ticks would make noisy."""
    return max(1, round(GIB / size))


def single_stream(server: Server, source: Source) -> Figures:
    """Parts one after another on one connection (tus: PATCHes of a part each)."""
    if server.kind == "tus":
        return _tus_stream(server, source)
    key = f"stream/{time.monotonic_ns():x}"
    with connections(server, 1) as (conn,):
        with metered(server) as meter:
            upload_id = create(conn, key)
            refs = [
                put_part(
                    conn, key, upload_id, n + 1, source.part(n), source.part_md5s[n]
                )
                for n in range(source.part_count)
            ]
        complete(conn, key, upload_id, refs)
        delete(conn, key)
    return {
        "stream_mibs": source.size / MIB / meter.wall,
        "stream_cpu": meter.server / (source.size / GIB),
    }


def _tus_stream(server: Server, source: Source) -> Figures:
    tus = {"Tus-Resumable": "1.0.0"}
    with connections(server, 1) as (conn,), metered(server) as meter:
        made = conn.request(
            "POST", "/files", headers={**tus, "Upload-Length": str(source.size)}
        )
        expect(made, 201, "tus create")
        location = made.headers["location"]
        path = "/" + location.split("://", 1)[-1].split("/", 1)[1]
        offset = 0
        for n in range(source.part_count):
            body = source.part(n)
            headers = {
                **tus,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            }
            expect(conn.request("PATCH", path, body, headers), 204, "tus patch")
            offset += len(body)
    expect(
        Connection(server.port).request("DELETE", path, headers=tus), 204, "tus delete"
    )
    return {
        "stream_mibs": source.size / MIB / meter.wall,
        "stream_cpu": meter.server / (source.size / GIB),
    }


def verify(server: Server, source: Source) -> None:
    """Untimed: the server stores and serves our bytes (whole and a range)."""
    key = f"verify/{time.monotonic_ns():x}"
    with connections(server, 4) as conns:
        upload_id, refs = upload_parts(server, conns, key, source)
        complete(conns[0], key, upload_id, refs)
        whole = get(conns[0], key, source.size, keep=True).body
        if hashlib.md5(whole, usedforsecurity=False).hexdigest() != source.md5:
            raise RuntimeError(f"{server.name}: GET gave other bytes than uploaded")
        span = (source.part_size - 1000, source.part_size + 5000)
        if (
            get(conns[0], key, source.size, span, keep=True).body
            != source.data[span[0] : span[1]]
        ):
            raise RuntimeError(f"{server.name}: a range gave other bytes")
        delete(conns[0], key)
