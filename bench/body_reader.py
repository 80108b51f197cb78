"""CPU per GiB of reading a request body: gunicorn's ``wsgi.input`` against
``mpuflask.socketbody.SocketBody`` (``recv_into`` a reused buffer).

One loopback TCP connection per run: a sender thread writes a request head
and a body of ``--mib`` MiB; the reader parses the head with gunicorn's own
parser and reads the body in ``--chunk-mib`` reads, one way or the other.
The figure is the reading thread's CPU (user + system, ``RUSAGE_THREAD``)
per GiB. The two ways alternate, ``--rounds`` times each; the report gives
median [min-max].

    .venv/bin/python bench/body_reader.py --mib 512 --rounds 5
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gunicorn.config import Config  # type: ignore[import-untyped]  # noqa: E402
from gunicorn.http.parser import RequestParser  # type: ignore[import-untyped]  # noqa: E402
from gunicorn.http.wsgi import create  # type: ignore[import-untyped]  # noqa: E402

from mpuflask.socketbody import socket_body  # noqa: E402

MIB = 1 << 20


def _thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def one_run(way: str, size: int, chunk: int) -> tuple[float, float]:
    """(reader CPU s/GiB, wall s) of reading a ``size``-byte body ``way``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    payload = memoryview(bytes(MIB))

    def send() -> None:
        client.sendall(
            f"PUT /k HTTP/1.1\r\nHost: a\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        left = size
        while left:
            step = min(left, MIB)
            client.sendall(payload[:step])
            left -= step

    sender = threading.Thread(target=send)
    sender.start()
    try:
        cpu, wall = _thread_cpu(), time.perf_counter()
        req = next(RequestParser(Config(), server, ("127.0.0.1", 1)))
        _, environ = create(req, server, ("127.0.0.1", 1), ("127.0.0.1", 2), Config())
        reader = socket_body(environ) if way == "socketbody" else environ["wsgi.input"]
        if reader is None:
            raise RuntimeError("socket_body() refused the request")
        got = 0
        while data := reader.read(chunk):
            got += len(data)
        cpu, wall = _thread_cpu() - cpu, time.perf_counter() - wall
        if got != size:
            raise RuntimeError(f"read {got} bytes of {size}")
    finally:
        sender.join()
        client.close()
        server.close()
    return cpu / (size / (1 << 30)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512, help="body size, MiB")
    parser.add_argument("--chunk-mib", type=int, default=1, help="read size, MiB")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ways = ["wsgi.input", "socketbody"]
    figures: dict[str, list[float]] = {way: [] for way in ways}
    for round_ in range(args.rounds):
        for way in ways if round_ % 2 == 0 else ways[::-1]:
            cpu, wall = one_run(way, args.mib * MIB, args.chunk_mib * MIB)
            figures[way].append(cpu)
            print(f"round {round_ + 1} {way:11s} {cpu:.3f} CPU s/GiB, {wall:.2f} s")
    print(f"\nreading thread's CPU s/GiB, median [min-max] of {args.rounds} rounds:")
    for way, values in figures.items():
        print(
            f"  {way:11s} {statistics.median(values):.3f} "
            f"[{min(values):.3f}-{max(values):.3f}]"
        )
    pairs = zip(figures["socketbody"], figures["wsgi.input"], strict=True)
    ratios = [ours / theirs for ours, theirs in pairs]
    print(
        f"  socketbody / wsgi.input: {statistics.median(ratios):.2f} "
        f"[{min(ratios):.2f}-{max(ratios):.2f}]"
    )


if __name__ == "__main__":
    main()
