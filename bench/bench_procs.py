"""The servers a benchmark runs side by side, and what they cost (CPU, memory).

Used by ``server_bench.py``: gunicorn serving one app each (ours, the lean app,
ours at an earlier git revision) and, optionally, ``@tus/server`` (Node), every
one on a free 127.0.0.1 port with its own data directory under one temporary
directory. CPU is read from ``/proc`` (user + system of the server's processes),
peak memory from each worker's ``VmHWM``.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
START_TIMEOUT = 90.0
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """One server process (a gunicorn master, or node) on a loopback port."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    data_dir: Path
    durable: bool
    kind: str  # "ours", "lean", "floor", "base", "also" or "tus"

    def pids(self) -> list[int]:
        """The server's process and its children (gunicorn's workers)."""
        return [self.process.pid, *children(self.process.pid)]

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: gunicorn's workers, or node."""
        return children(self.process.pid) or [self.process.pid]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far."""
        return sum(process_cpu(pid) for pid in self.pids())

    def reset_peak_rss(self) -> None:
        """Reset every worker's VmHWM to its current RSS (where allowed)."""
        for pid in self.worker_pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass

    def peak_rss_mib(self) -> float:
        """The largest worker's VmHWM (peak resident set) since the reset, MiB."""
        return max(
            (status_kib(pid, "VmHWM") / 1024 for pid in self.worker_pids()), default=0.0
        )


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def process_cpu(pid: int) -> float:
    """CPU seconds one process's threads have run (0 if it is gone).

    The sum of each live thread's ``schedstat`` (nanoseconds on a CPU), finer
    than ``stat``'s clock ticks (10 ms: a GET of 512 MiB costs ~10 of them);
    ``stat``'s user + system where ``schedstat`` is missing.
    """
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        return 0.0
    if total:
        return total / 1e9
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / _TICK


def wait_until_quiet(
    idle_share: float = 0.1, window: float = 0.25, limit: float = 60.0
) -> float:
    """Wait until the machine is idle; return the seconds waited.

    Idle: over ``window`` seconds, all CPUs together busy less than
    ``idle_share`` of one. What the last run left behind (a delete's reclaim
    after its answer, the kernel freeing blocks and committing the journal)
    would otherwise run during the next run, on another server, and be
    measured there as slowness. Gives up after ``limit`` seconds (a machine
    with other work on it), saying so.
    """
    started = time.perf_counter()
    while True:
        before = machine_busy()
        time.sleep(window)
        if machine_busy() - before < idle_share * window:
            return time.perf_counter() - started
        waited = time.perf_counter() - started
        if waited >= limit:
            print(f"  (the machine stayed busy for {waited:.0f} s; measuring anyway)")
            return waited


def status_kib(pid: int, field_name: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return 0


@dataclass
class Meter:
    """Wall time and CPU of one measured phase, by whom."""

    wall: float = 0.0
    server: float = 0.0  # the server's processes
    client: float = 0.0  # this process
    others: float = 0.0  # everything else on the machine


@contextmanager
def metered(server: Server) -> Iterator[Meter]:
    """Measure the ``with`` block: the Meter is filled in on exit."""
    meter = Meter()
    wall, srv, machine = time.perf_counter(), server.cpu_seconds(), machine_busy()
    times = os.times()
    client = times.user + times.system
    yield meter
    times = os.times()
    meter.wall = time.perf_counter() - wall
    meter.server = server.cpu_seconds() - srv
    meter.client = times.user + times.system - client
    meter.others = max(0.0, machine_busy() - machine - meter.server - meter.client)


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def extract_revision(rev: str, into: Path) -> Path:
    """``git archive`` of ``rev`` unpacked in ``into`` (the baseline's code)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", rev],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    return into


@contextmanager
def gunicorn_server(
    name: str,
    kind: str,
    app: str,
    work_dir: Path,
    *,
    durable: bool,
    workers: int,
    threads: int,
    env: dict[str, str],
    code_dir: Path = ROOT,
) -> Iterator[Server]:
    """Run ``gunicorn -c gunicorn.conf.py app`` from ``code_dir`` until the end."""
    port = free_port()
    base = work_dir / name
    data_dir = base / "data"
    metrics_dir = base / "metrics"
    data_dir.mkdir(parents=True)
    metrics_dir.mkdir()
    log = base / "server.log"
    environ = {
        **{k: v for k, v in os.environ.items() if k != "GUNICORN_ACCESSLOG"},
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_WORKER_CLASS": "gthread",
        "MPUFLASK_DATA_DIR": str(data_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        # The code of code_dir first (a baseline revision), not the venv's.
        "PYTHONPATH": str(code_dir),
        # Nothing written into the repo, not even __pycache__.
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    command = [gunicorn or "gunicorn", "-c", str(code_dir / "gunicorn.conf.py"), app]
    with _serving(
        name, kind, command, code_dir, environ, port, log, data_dir, durable
    ) as server:
        _wait_until_serving(server, workers)
        yield server


@contextmanager
def tus_server(name: str, tus_dir: Path, work_dir: Path) -> Iterator[Server]:
    """Run ``node server.mjs`` of ``tus_dir`` (with its node_modules) until the end."""
    port = free_port()
    data_dir = work_dir / name / "data"
    data_dir.mkdir(parents=True)
    log = work_dir / name / "server.log"
    environ = {**os.environ, "TUS_PORT": str(port), "TUS_DIR": str(data_dir)}
    command = ["node", str(tus_dir / "server.mjs")]
    with _serving(
        name, "tus", command, tus_dir, environ, port, log, data_dir, False
    ) as server:
        _wait_until_serving(server, 0)
        yield server


@contextmanager
def _serving(
    name: str,
    kind: str,
    command: Sequence[str],
    cwd: Path,
    environ: dict[str, str],
    port: int,
    log: Path,
    data_dir: Path,
    durable: bool,
) -> Iterator[Server]:
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, port, log, data_dir, durable, kind)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(server: Server, workers: int) -> None:
    """Poll until the server answers and all its workers are up."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name}: exited:\n{tail(server.log)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
        except OSError:
            time.sleep(0.05)
            continue
        if len(children(server.process.pid)) >= workers:
            time.sleep(1.0)  # each worker imports the app after the fork
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name}: did not start:\n{tail(server.log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def disk_writer(path: Path, chunk_mib: int = 1, wrap_mib: int = 1024) -> Iterator[None]:
    """Another process writing to the disk (buffered, never fsynced) meanwhile.

    It rewrites ``path`` in ``chunk_mib`` writes, wrapping at ``wrap_mib``, so
    the page cache holds dirty bytes for the kernel to write back while the
    ``with`` block runs; a moment passes first so the writer is going.
    """
    code = (
        "import os,sys\n"
        f"block=os.urandom({chunk_mib << 20})\n"
        f"fd=os.open({str(path)!r},os.O_WRONLY|os.O_CREAT,0o644)\n"
        "n=0\n"
        "while True:\n"
        f"    os.pwrite(fd,block,(n%{max(1, wrap_mib // chunk_mib)})*len(block))\n"
        "    n+=1\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.5)
        yield
    finally:
        process.kill()
        process.wait()
        path.unlink(missing_ok=True)
