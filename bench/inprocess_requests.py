"""Per-request CPU in one process, without gunicorn: lean, the Flask floor, ours.

Each app's WSGI callable is called with a prepared environ (what gunicorn
would hand it for the bench client's requests), durability off, and the
process's CPU time (``getrusage``, every thread) is taken around:

* ``rt``: small-object round trips (create, one 4 KiB part, complete, GET with
  its bytes compared, delete): CPU ms per round trip;
* ``part``: parts of 16 B into one upload: CPU us per part.

Each figure comes twice: all CPU (user + system) and user mode alone. The
system time is mostly the kernel making inodes (a temp file, a symlink, a
directory), whose cost on this machine's virtual disk swings 10x from minute
to minute; the user time is the Python, what per-request changes move.

Every run is a fresh subprocess (its own data and metrics directories, the
code of one tree first on ``sys.path``); in each round every app runs once,
each round starting with the next app, so a slow phase of the machine hits
them all. The report: each figure's median [min-max] over the rounds, and
with ``--baseline`` the per-round ratio ours/base. From the repository root::

    .venv/bin/python bench/inprocess_requests.py                  # lean, floor, ours
    .venv/bin/python bench/inprocess_requests.py --baseline main  # + base (git archive)
    .venv/bin/python bench/inprocess_requests.py --baseline /work/main --no-floor
    .venv/bin/python bench/inprocess_requests.py --profile /tmp/ours.prof --only part

``--baseline`` is a git revision (archived to a temporary directory) or a
directory holding another tree. ``--profile FILE`` runs ours once under
cProfile instead and writes its stats to FILE.
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
    """Run one app's workloads in this process; print the figures as JSON."""
    work = Path(tempfile.mkdtemp(prefix="inproc-"))
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
        figures: dict[str, Any] = {}
        if args.kind == "ours":
            import mpuflask

            figures["code"] = str(Path(mpuflask.__file__).parent.parent)
        data = os.urandom(4096)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        profiler: Any = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        if "rt" in args.only.split(","):
            for number in range(20):  # warm-up
                _round_trip(app, f"warm/{number}", data, md5)
            if profiler:
                profiler.enable()
            began = _cpu()
            for number in range(args.ops):
                _round_trip(app, f"small/{number}", data, md5)
            spent, user = _since(began)
            if profiler:
                profiler.disable()
            figures["rt_ms"] = spent / args.ops * 1e3
            figures["rt_user_ms"] = user / args.ops * 1e3
        if "part" in args.only.split(","):
            _tiny_parts(app, "tinywarm", 20)
            if profiler:
                profiler.enable()
            spent, user = _tiny_parts(app, "tiny", args.parts)
            if profiler:
                profiler.disable()
            figures["part_us"] = spent / args.parts * 1e6
            figures["part_user_us"] = user / args.parts * 1e6
        if profiler:
            profiler.dump_stats(args.profile)
        print(json.dumps(figures))
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


# -- the driver: alternating rounds ---------------------------------------------


def _tree(rev: str, scratch: Path) -> str:
    if Path(rev).is_dir():
        return str(Path(rev).resolve())
    target = scratch / "base"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return str(target)


def _run(kind: str, code: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "ours" if kind.startswith(("ours", "base")) else kind,
        "--code",
        code,
        "--ops",
        str(args.ops),
        "--parts",
        str(args.parts),
        "--only",
        args.only,
    ]
    if args.profile:
        command += ["--profile", args.profile]
    env = {**os.environ, "PYTHONPATH": code, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{kind} failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if "code" in figures and figures["code"] != code:
        raise RuntimeError(f"{kind} ran the code of {figures['code']}, not {code}")
    return figures


FIGURES = (
    ("rt_ms", "CPU ms per round trip (user + system)"),
    ("rt_user_ms", "user-mode CPU ms per round trip (the Python)"),
    ("part_us", "CPU us per 16 B part (user + system)"),
    ("part_user_us", "user-mode CPU us per 16 B part (the Python)"),
)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f} [{min(values):.3f}-{max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=300, help="round trips a run")
    parser.add_argument("--parts", type=int, default=1500, help="16 B parts a run")
    parser.add_argument("--only", default="rt,part", help="rt, part or both")
    parser.add_argument("--baseline", help="a git revision or a directory")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--no-lean", action="store_true")
    parser.add_argument("--profile", help="run ours once under cProfile, to FILE")
    parser.add_argument("--worker", dest="kind", help=argparse.SUPPRESS)
    parser.add_argument("--code", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind:
        worker(args)
        return
    if args.profile:
        print(json.dumps(_run("ours", str(ROOT), args)))
        return
    with tempfile.TemporaryDirectory(prefix="inproc-trees-") as scratch:
        apps = [] if args.no_lean else [("lean", str(ROOT))]
        if not args.no_floor:
            apps.append(("floor", str(ROOT)))
        apps.append(("ours", str(ROOT)))
        if args.baseline:
            apps.append(("base", _tree(args.baseline, Path(scratch))))
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in apps}
        for round_number in range(args.rounds):
            turn = round_number % len(apps)
            line = []
            for name, code in apps[turn:] + apps[:turn]:
                figures = _run(name, code, args)
                results[name].append(figures)
                shown = " ".join(
                    f"{k}={v:.3f}" for k, v in figures.items() if k != "code"
                )
                line.append(f"{name}: {shown}")
            print(f"round {round_number + 1}: " + "; ".join(line), flush=True)
        for figure, unit in FIGURES:
            if figure not in results[apps[0][0]][0]:
                continue
            print(f"\n{unit}, median [min-max] of {args.rounds} rounds:")
            for name, _ in apps:
                print(f"  {name:6s} {_spread([r[figure] for r in results[name]])}")
            pairs = [("ours", "base"), ("ours", "lean"), ("ours", "floor")]
            for top, bottom in pairs:
                if top in results and bottom in results:
                    ratios = [
                        a[figure] / b[figure]
                        for a, b in zip(results[top], results[bottom], strict=True)
                    ]
                    print(f"  {top}/{bottom} {_spread(ratios)}")


if __name__ == "__main__":
    main()
