"""Slow clients against the default gunicorn.conf.py (issue 10, finding 8).

Starts gunicorn with the repository's gunicorn.conf.py as it is (only the bind
address and the data directory are set), opens ``--slow`` slow connections of
three kinds, and keeps them open for ``--duration`` seconds, opening a new one
whenever the server cuts one (as an attacker would):

* ``headers``: a request head sent one byte every ``--trickle`` seconds, never
  finished;
* ``bodies``: a part upload announcing 64 MiB, then one byte every
  ``--trickle`` seconds;
* ``downloads``: a GET of a 32 MiB object with a 4 KiB receive buffer, never
  read (a server that cuts it resets the connection).

Meanwhile another client checks ``GET /?action=health`` continuously, each on
a new connection as a load balancer does, and uploads a 64 MiB object (create,
8 parts of 8 MiB, complete, etag checked). Printed: the share of health checks
answered 200 within 2 s (goal >= 99%), their latency, whether the upload
succeeded, and how many slow connections the server cut.

``--baseline REV`` runs the same against the gunicorn.conf.py of git revision
REV with the app's new deadlines off (``MPUFLASK_BODY_MIN_RATE=0``,
``MPUFLASK_SEND_TIMEOUT=0``): the settings before this bench existed.

    .venv/bin/python bench/slow_clients.py
    .venv/bin/python bench/slow_clients.py --baseline 745de21
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.oracle import md5  # noqa: E402
from tests.oracle import multipart_etag  # noqa: E402

MIB = 1024 * 1024
HEALTH_GOAL = 2.0  # seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bench:
    def __init__(self, args: argparse.Namespace, port: int) -> None:
        self.args = args
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.opened: Counter[str] = Counter()
        self.cut: Counter[str] = Counter()
        self.open_now: Counter[str] = Counter()
        self.health: list[tuple[float, bool]] = []  # (seconds, answered 200)
        self.upload: dict[str, object] = {}

    # -- plain HTTP helpers ------------------------------------------------------

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 300
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def connect(self, rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", self.port))
        return sock

    # -- the slow clients --------------------------------------------------------

    def slow_client(self, kind: str, index: int, upload_id: str) -> None:
        """One slot: keep one slow connection of ``kind`` open until the end."""
        while not self.stop.is_set():
            try:
                sock = self.connect(4096 if kind == "downloads" else None)
            except OSError:
                self.stop.wait(0.5)
                continue
            with self.lock:
                self.opened[kind] += 1
                self.open_now[kind] += 1
            try:
                if self.hold(kind, sock, index, upload_id):
                    with self.lock:
                        self.cut[kind] += 1
            except OSError:
                with self.lock:
                    self.cut[kind] += 1
            finally:
                with self.lock:
                    self.open_now[kind] -= 1
                sock.close()

    def hold(self, kind: str, sock: socket.socket, index: int, upload_id: str) -> bool:
        """Be slow on ``sock`` until the server cuts it (True) or the end (False)."""
        if kind == "headers":
            sock.sendall(b"GET /?action=health HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
        elif kind == "bodies":
            sock.sendall(
                f"PUT /trickle?action=mpu-uploadpart&uploadId={upload_id}"
                f"&partNumber={index + 1} HTTP/1.1\r\nHost: bench\r\n"
                f"Content-Length: {64 * MIB}\r\n\r\n".encode()
            )
        else:
            sock.sendall(b"GET /download?action=get HTTP/1.1\r\nHost: bench\r\n\r\n")
        poller = select.poll()
        if kind == "downloads":
            poller.register(sock, select.POLLERR | select.POLLHUP)
        else:
            poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        while not self.stop.is_set():
            if poller.poll(self.args.trickle * 1000):
                return True  # an answer (408), a close or a reset: cut
            if kind != "downloads":
                sock.send(b"x")
        return False

    # -- the well-behaved client ---------------------------------------------------

    def health_checks(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status, _, body = self.request("GET", "/?action=health", timeout=10)
                ok = status == 200 and json.loads(body) == {"status": "ok"}
            except (OSError, ValueError):
                ok = False
            elapsed = time.monotonic() - started
            with self.lock:
                self.health.append((elapsed, ok))
            self.stop.wait(self.args.health_interval)

    def big_upload(self) -> None:
        started = time.monotonic()
        part_size = 8 * MIB
        parts = [os.urandom(part_size) for _ in range(self.args.upload_mib // 8)]
        try:
            status, _, body = self.request("POST", "/big?action=mpu-create")
            assert status == 200, body
            upload_id = _json(body)["uploadId"]
            listed = []
            for number, data in enumerate(parts, 1):
                status, _, body = self.request(
                    "PUT",
                    f"/big?action=mpu-uploadpart&uploadId={upload_id}"
                    f"&partNumber={number}",
                    data,
                )
                assert status == 200, body
                listed.append(_json(body))
                assert listed[-1]["etag"] == md5(data)
            status, headers, body = self.request(
                "POST",
                f"/big?action=mpu-complete&uploadId={upload_id}",
                json.dumps({"parts": listed}).encode(),
            )
            assert status == 200, body
            expected = f'"{multipart_etag(parts)}"'
            assert headers.get("etag") == expected, (headers.get("etag"), expected)
            self.upload = {"ok": True, "seconds": time.monotonic() - started}
        except (AssertionError, OSError) as error:
            self.upload = {
                "ok": False,
                "seconds": time.monotonic() - started,
                "error": repr(error)[:200],
            }


def _json(body: bytes) -> dict[str, object]:
    value = json.loads(body)
    assert isinstance(value, dict)
    return value


def config_file(args: argparse.Namespace, tmp: Path) -> Path:
    if not args.baseline:
        return ROOT / "gunicorn.conf.py"
    text = subprocess.run(
        ["git", "show", f"{args.baseline}:gunicorn.conf.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp / "baseline.gunicorn.conf.py"
    path.write_text(text)
    return path


def start_server(
    args: argparse.Namespace, tmp: Path, port: int
) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GUNICORN_", "MPUFLASK_"))
    }
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        MPUFLASK_DATA_DIR=str(tmp / "data"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
    )
    if args.baseline:
        env.update(MPUFLASK_BODY_MIN_RATE="0", MPUFLASK_SEND_TIMEOUT="0")
    env.update(item.split("=", 1) for item in args.env)
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    log = (tmp / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [gunicorn or "gunicorn", "-c", str(config_file(args, tmp)), "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not start:\n{(tmp / 'gunicorn.log').read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slow", type=int, default=200, help="slow connections")
    parser.add_argument(
        "--mix", default="headers=70,bodies=65,downloads=65", help="kind=weight,..."
    )
    parser.add_argument("--duration", type=float, default=90.0, help="seconds")
    parser.add_argument("--trickle", type=float, default=1.0, help="s between bytes")
    parser.add_argument("--health-interval", type=float, default=0.1)
    parser.add_argument("--upload-mib", type=int, default=64)
    parser.add_argument("--baseline", metavar="REV", help="gunicorn.conf.py of REV")
    parser.add_argument("--tmp-dir", help="parent of the temporary directory")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server setting on top (GUNICORN_* or MPUFLASK_*), repeatable",
    )
    args = parser.parse_args()

    weights = {k: float(v) for k, v in (p.split("=") for p in args.mix.split(","))}
    total = sum(weights.values())
    kinds: list[str] = []
    for kind, weight in weights.items():
        kinds += [kind] * int(args.slow * weight / total)
    kinds += [kind] * (args.slow - len(kinds))  # rounding: the last kind

    tmp = Path(tempfile.mkdtemp(prefix="slow-clients-", dir=args.tmp_dir))
    port = free_port()
    server = start_server(args, tmp, port)
    bench = Bench(args, port)
    try:
        # The object the non-readers ask for, and the upload the tricklers feed.
        status, _, body = bench.request("POST", "/download?action=mpu-create")
        upload_id = _json(body)["uploadId"]
        data = os.urandom(32 * MIB)
        status, _, body = bench.request(
            "PUT",
            f"/download?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
            data,
        )
        status, _, _ = bench.request(
            "POST",
            f"/download?action=mpu-complete&uploadId={upload_id}",
            json.dumps({"parts": [_json(body)]}).encode(),
        )
        assert status == 200
        trickle_id = str(
            _json(bench.request("POST", "/trickle?action=mpu-create")[2])["uploadId"]
        )

        threads = [
            threading.Thread(
                target=bench.slow_client, args=(kind, i, trickle_id), daemon=True
            )
            for i, kind in enumerate(kinds)
        ]
        for thread in threads:
            thread.start()
            time.sleep(0.005)
        health = threading.Thread(target=bench.health_checks, daemon=True)
        upload = threading.Thread(target=bench.big_upload, daemon=True)
        started = time.monotonic()
        health.start()
        time.sleep(min(5.0, args.duration / 4))
        upload.start()
        time.sleep(max(0.0, args.duration - (time.monotonic() - started)))
        upload.join(timeout=600)
        bench.stop.set()
        health.join(timeout=30)
        report(args, bench, kinds, time.monotonic() - started)
    finally:
        bench.stop.set()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log = (tmp / "gunicorn.log").read_text(errors="replace")
        errors = [
            line
            for line in log.splitlines()
            if '"ERROR"' in line or "Traceback" in line
        ]
        print(
            f"server log: {len(errors)} error lines"
            + (f", first: {errors[0][:200]}" if errors else "")
        )
        shutil.rmtree(tmp, ignore_errors=True)


def report(
    args: argparse.Namespace, bench: Bench, kinds: list[str], elapsed: float
) -> None:
    config = (
        f"gunicorn.conf.py of {args.baseline}, app deadlines off"
        if args.baseline
        else "gunicorn.conf.py (default)"
    )
    config += "".join(f", {item}" for item in args.env)
    print(f"config: {config}; {os.cpu_count()} CPUs")
    mix = ", ".join(f"{kind} {n}" for kind, n in Counter(kinds).items())
    print(
        f"slow connections: {len(kinds)} ({mix}), "
        f"one byte every {args.trickle:g} s; {elapsed:.0f} s"
    )
    for kind in Counter(kinds):
        print(
            f"  {kind}: opened {bench.opened[kind]}, "
            f"cut by the server {bench.cut[kind]}"
        )
    checks = bench.health
    within = [s for s, ok in checks if ok and s <= HEALTH_GOAL]
    times = sorted(s for s, _ in checks)
    share = 100.0 * len(within) / len(checks) if checks else 0.0

    def pct(p: float) -> float:
        return times[min(len(times) - 1, int(p * len(times)))] if times else 0.0

    print(
        f"health checks: {len(checks)}, answered 200 within {HEALTH_GOAL:g} s: "
        f"{len(within)} = {share:.1f}% (goal >= 99%); "
        f"latency p50 {pct(0.5) * 1000:.0f} ms, p99 {pct(0.99) * 1000:.0f} ms, "
        f"max {times[-1] * 1000 if times else 0:.0f} ms"
    )
    upload = bench.upload or {"ok": False, "error": "still running"}
    line = (
        f"{args.upload_mib} MiB upload: {'succeeded' if upload.get('ok') else 'FAILED'}"
    )
    if "seconds" in upload:
        line += f" in {float(upload['seconds']):.1f} s"  # type: ignore[arg-type]
    if "error" in upload:
        line += f" ({upload['error']})"
    print(line)


if __name__ == "__main__":
    main()
