"""Per-request CPU in one process, without gunicorn: lean, the Flask floor, ours.

Each app's WSGI callable is called with a prepared environ (what gunicorn
would hand it for the bench client's requests), durability off, and the
process's CPU time (``getrusage``, every thread) is taken around batches of:

* ``rt``: small-object round trips (create, one 4 KiB part, complete, GET with
  its bytes compared, delete): CPU ms per round trip;
* ``part``: parts of 16 B into a new upload: CPU us per part.

Each figure comes twice: all CPU (user + system) and user mode alone. The
system time is mostly the kernel making inodes (a temp file, a symlink, a
directory), whose cost on this machine's virtual disk swings 10x from minute
to minute; the user time is the Python, what per-request changes move.

Every app lives in its own process for the whole run (its own data and
metrics directories, the code of one tree first on ``sys.path``, checked),
warmed up, and runs the batches it is sent. In each round every app runs one
batch of each workload in turn, each round starting with the next app: the
batches take a fraction of a second, so the machine's slow and fast phases
hit every app alike. The report: each figure's median [min-max] over the
rounds, and the per-round ratios (ours/base with ``--baseline``, ours/floor,
ours/lean). From the repository root::

    .venv/bin/python bench/inprocess_requests.py                  # lean, floor, ours
    .venv/bin/python bench/inprocess_requests.py --baseline main  # + base (git archive)
    .venv/bin/python bench/inprocess_requests.py --baseline ../other-checkout --no-floor
    .venv/bin/python bench/inprocess_requests.py --profile /tmp/ours.prof --only part

``--baseline`` is a git revision (archived to a temporary directory) or a
directory holding another tree. ``--profile FILE`` runs ours alone under
cProfile and writes its stats to FILE.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper

ROOT = Path(__file__).resolve().parent.parent

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# -- the worker: one app, one process ------------------------------------------


def _environ(
    method: str, key: str, query: str, body: bytes | None = None
) -> dict[str, Any]:
    """What gunicorn hands an app for the bench client's request."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": f"/{key}",
        "RAW_URI": f"/{key}?{query}",
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "gunicorn",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body or b""),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    if body is not None:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, bytes]:
    answered: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        answered.append(status)

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return int(answered[-1][:3]), data


def _expect(app: WsgiApp, environ: dict[str, Any], status: int) -> bytes:
    got, data = _call(app, environ)
    if got != status:
        raise RuntimeError(
            f"{environ['REQUEST_METHOD']} {environ['QUERY_STRING']}: "
            f"{got}, not {status}: {data[:200]!r}"
        )
    return data


def _round_trip(app: WsgiApp, key: str, data: bytes, md5: str) -> None:
    created = _expect(app, _environ("POST", key, "action=mpu-create", b""), 200)
    upload_id = json.loads(created)["uploadId"]
    query = f"action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    part = json.loads(_expect(app, _environ("PUT", key, query, data), 200))
    if part["etag"] != md5:
        raise RuntimeError(f"etag {part['etag']}, not {md5}")
    parts = json.dumps({"parts": [{"partNumber": 1, "etag": md5}]}).encode()
    query = f"action=mpu-complete&uploadId={upload_id}"
    _expect(app, _environ("POST", key, query, parts), 200)
    if _expect(app, _environ("GET", key, "action=get"), 200) != data:
        raise RuntimeError("GET: other bytes")
    _expect(app, _environ("DELETE", key, "action=delete"), 204)


def _tiny_parts(
    app: WsgiApp, key: str, count: int, start: int = 1
) -> tuple[float, float]:
    created = _expect(app, _environ("POST", key, "action=mpu-create", b""), 200)
    upload_id = json.loads(created)["uploadId"]
    data = b"0123456789abcdef"
    environs = [
        _environ(
            "PUT",
            key,
            f"action=mpu-uploadpart&uploadId={upload_id}&partNumber={number}",
            data,
        )
        for number in range(start, start + count)
    ]
    began = _cpu()
    for environ in environs:
        _expect(app, environ, 200)
    return _since(began)


def _cpu() -> tuple[float, float]:
    """This process's CPU seconds so far: all, and in user mode (Python's)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_utime


def _since(began: tuple[float, float]) -> tuple[float, float]:
    now = _cpu()
    return now[0] - began[0], now[1] - began[1]


def _load_app(kind: str) -> WsgiApp:
    if kind == "lean":
        from bench import lean_app

        return lean_app.app
    if kind == "floor":
        from bench import flask_floor

        return flask_floor.app
    # As gunicorn.conf.py configures logging: one JSON access line per request
    # (written to /dev/null here).
    from mpuflask.observability import JsonFormatter
    from mpuflask.observability import RequestIdFilter

    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    from mpuflask.wsgi import app

    return app


def worker(args: argparse.Namespace) -> None:
    """Serve batches of one app's workloads in this process.

    Reads commands on stdin (``rt N``: N round trips; ``part N``: N parts of
    16 B into a new upload); answers each with one JSON line: the CPU
    seconds of the batch, all and user mode. ``ready`` first, with the code
    it runs.
    """
    work = Path(tempfile.mkdtemp(prefix="inproc-", dir=args.tmp))
    (work / "metrics").mkdir()
    os.environ.update(
        {
            "MPUFLASK_DATA_DIR": str(work / "data"),
            "MPUFLASK_DURABLE": "false",
            "MPUFLASK_MIN_PART_SIZE": "16",
            "MPUFLASK_CHUNK_SIZE": str(1 << 20),
            "LEAN_DURABLE": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        }
    )
    sys.path.insert(0, args.code)
    if args.kind != "ours":
        sys.path.insert(0, str(ROOT))  # bench.lean_app, bench.flask_floor
    try:
        app = _load_app(args.kind)
        code = ""
        if args.kind == "ours":
            import mpuflask

            code = str(Path(mpuflask.__file__).parent.parent)
        data = os.urandom(4096)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        for number in range(20):  # warm-up
            _round_trip(app, f"warm/{number}", data, md5)
        _tiny_parts(app, "warm", 20)
        profiler: Any = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        print(json.dumps({"ready": code}), flush=True)
        batches = 0
        for line in sys.stdin:
            what, count = line.split()
            batches += 1
            if profiler:
                profiler.enable()
            if what == "rt":
                began = _cpu()
                for number in range(int(count)):
                    _round_trip(app, f"small/{batches}/{number}", data, md5)
                spent = _since(began)
            else:
                spent = _tiny_parts(app, f"tiny/{batches}", int(count))
            if profiler:
                profiler.disable()
            print(json.dumps(spent), flush=True)
        if profiler:
            profiler.dump_stats(args.profile)
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


# -- the driver: alternating batches ----------------------------------------------


def _tree(rev: str, scratch: Path) -> str:
    """A directory of another tree as it is, else ``rev`` archived into ``scratch``."""
    if Path(rev).is_dir():
        return str(Path(rev).resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_procs import extract_revision  # the driver's only: not the workers'

    return str(extract_revision(rev, scratch / "base"))


class Worker:
    """One app in its own process, running the batches it is sent."""

    def __init__(
        self, name: str, code: str, profile: str | None, tmp: str | None
    ) -> None:
        self.name = name
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "ours" if name in ("ours", "base") else name,
            "--code",
            code,
        ]
        if profile:
            command += ["--profile", profile]
        if tmp:
            command += ["--tmp", tmp]
        env = {**os.environ, "PYTHONPATH": code, "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=code,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = json.loads(self._answer())["ready"]
        if ready and ready != code:
            raise RuntimeError(f"{name} runs the code of {ready}, not {code}")

    def _answer(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} failed (its stderr is above)")
        return line

    def batch(self, what: str, count: int) -> tuple[float, float]:
        """CPU seconds of ``count`` round trips or parts: all, user mode."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{what} {count}\n")
        self.process.stdin.flush()
        spent, user = json.loads(self._answer())
        return spent, user

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def _tenth(values: list[float]) -> float:
    """The 10th percentile: the figure in the machine's quiet moments."""
    return sorted(values)[len(values) // 10]


def _spread(values: list[float]) -> str:
    """Median, 10th percentile and [min-max]."""
    return (
        f"{statistics.median(values):9.3f} p10 {_tenth(values):9.3f} "
        f"[{min(values):.3f}-{max(values):.3f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--ops", type=int, default=50, help="round trips a batch")
    parser.add_argument("--parts", type=int, default=200, help="16 B parts a batch")
    parser.add_argument("--only", default="rt,part", help="rt, part or both")
    parser.add_argument("--baseline", help="a git revision or a directory")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--no-lean", action="store_true")
    parser.add_argument("--profile", help="run ours alone under cProfile, to FILE")
    parser.add_argument(
        "--tmp",
        help="where the data directories go (default: the system's temp dir); "
        "/dev/shm makes the kernel's share small and steady",
    )
    parser.add_argument("--worker", dest="kind", help=argparse.SUPPRESS)
    parser.add_argument("--code", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind:
        worker(args)
        return
    names = [] if args.no_lean or args.profile else ["lean"]
    if not (args.no_floor or args.profile):
        names.append("floor")
    names.append("ours")
    if args.baseline and not args.profile:
        names.append("base")
    workloads = [w for w in ("rt", "part") if w in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="inproc-trees-") as scratch:
        codes = {name: str(ROOT) for name in names}
        if "base" in codes:
            codes["base"] = _tree(args.baseline, Path(scratch))
        workers = [Worker(name, codes[name], args.profile, args.tmp) for name in names]
        results: dict[tuple[str, str], list[tuple[float, float]]] = {
            (w.name, what): [] for w in workers for what in workloads
        }
        try:
            for round_number in range(args.rounds):
                turn = round_number % len(workers)
                for what in workloads:
                    count = args.ops if what == "rt" else args.parts
                    for w in workers[turn:] + workers[:turn]:
                        results[w.name, what].append(w.batch(what, count))
        finally:
            for w in workers:
                w.close()
    print(
        f"{args.rounds} rounds; in each, every app runs a batch of {args.ops} "
        f"round trips, then of {args.parts} parts, in turn"
    )
    for what in workloads:
        count = args.ops if what == "rt" else args.parts
        scale, unit = (
            (1e3, "ms per round trip") if what == "rt" else (1e6, "us per part")
        )
        for index, mode in ((0, "user + system"), (1, "user mode: the Python")):
            print(f"\nCPU {unit} ({mode}), median, p10 [min-max] of the rounds:")
            figures = {
                name: [r[index] / count * scale for r in results[name, what]]
                for name in names
            }
            for name in names:
                print(f"  {name:10s} {_spread(figures[name])}")
            for top, bottom in (("ours", "base"), ("ours", "floor"), ("ours", "lean")):
                if top in figures and bottom in figures:
                    pairs = zip(figures[top], figures[bottom], strict=True)
                    # A batch too short for one clock tick of user time: left out.
                    ratios = [a / b for a, b in pairs if b > 0]
                    if ratios:
                        print(f"  {top + '/' + bottom:10s} {_spread(ratios)}")
                    if _tenth(figures[bottom]) > 0:
                        fast = _tenth(figures[top]) / _tenth(figures[bottom])
                        print(f"  {top + '/' + bottom:10s} of the p10s: {fast:.3f}")


if __name__ == "__main__":
    main()
