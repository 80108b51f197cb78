"""Benchmark mpuflask under gunicorn against the leanest WSGI app doing its bytes.

Run: ``python bench/server_bench.py`` (``--help`` for the knobs; bench/README.md).

In one run it starts, side by side, gunicorn serving

* ``ours``: mpuflask (``wsgi:app``), with its store's fsyncs on or off;
* ``lean``: ``bench/lean_app.py``, a raw WSGI callable doing the same byte work
  (stream + MD5 on PUT, a naive copy of the parts on complete, sendfile on GET),
  once with fsync and once without,

all with the same ``gunicorn.conf.py`` and the same gthread workers and threads,
each with its own temporary data directory. For each it measures, ``--repeat``
times (the apps interleaved, each round starting with the next app, the page
cache's dirty bytes flushed between phases, outside the timings):

* upload throughput from mpu-create to the end of mpu-complete, with the seed
  client's pattern (``--part-mib`` parts, 25 client threads);
* the time mpu-complete alone takes;
* GET throughput of the object, read by one client (``--get-streams`` clients
  at once) in 1 MiB ``readinto`` calls and discarded;
* the peak RSS (``VmHWM``) of each gunicorn worker in each phase, reset at the
  start of the phase through ``/proc/<pid>/clear_refs`` where the kernel allows.

It prints a table and the ratios against the targets. Every byte it writes is
under one temporary directory, removed at the end; nothing goes into the repo.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
MIB = 1 << 20
START_TIMEOUT = 60.0

#: The targets the table is checked against.
TARGET_UPLOAD_RATIO = 0.85
TARGET_GET_RATIO = 0.5
TARGET_COMPLETE_MS = 50.0
TARGET_RSS_MIB = 100.0


# -- gunicorn processes ---------------------------------------------------------


@dataclass
class Server:
    """One gunicorn master serving one app on a loopback port."""

    name: str
    label: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def worker_pids(self) -> list[int]:
        """The pids of the master's children (its workers), from /proc."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                pids.append(int(entry.name))
        return sorted(pids)

    def reset_peak_rss(self) -> bool:
        """Reset every worker's VmHWM to its current RSS; False if not allowed."""
        done = True
        for pid in self.worker_pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                done = False
        return done

    def peak_rss_mib(self) -> list[float]:
        """Each worker's VmHWM (peak resident set), in MiB."""
        return [_status_kib(pid, "VmHWM") / 1024 for pid in self.worker_pids()]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the master and its workers have used."""
        return sum(_process_cpu(pid) for pid in [self.process.pid, *self.worker_pids()])


_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _machine_busy() -> float:
    """CPU seconds all processes on the machine have used since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / _TICK


@dataclass
class Cpu:
    """CPU used during one phase, in seconds, by whom."""

    wall: float
    server: float
    client: float
    others: float  # everything else on the machine (other jobs, kernel threads)


@contextmanager
def cpu_meter(server: Server) -> Iterator[list[Cpu]]:
    """Measure the CPU the ``with`` block costs; the result is appended on exit."""
    out: list[Cpu] = []
    wall, srv, machine = time.perf_counter(), server.cpu_seconds(), _machine_busy()
    times = os.times()
    client = times.user + times.system
    yield out
    times = os.times()
    client = times.user + times.system - client
    srv = server.cpu_seconds() - srv
    machine = _machine_busy() - machine
    others = max(0.0, machine - srv - client)
    out.append(Cpu(time.perf_counter() - wall, srv, client, others))


def _status_kib(pid: int, field_name: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def gunicorn_server(
    name: str,
    label: str,
    app: str,
    work_dir: Path,
    *,
    workers: int,
    threads: int,
    env: dict[str, str],
) -> Iterator[Server]:
    """Run ``gunicorn -c gunicorn.conf.py app`` until the ``with`` block ends."""
    port = free_port()
    base = work_dir / name
    data_dir = base / "data"
    metrics_dir = base / "metrics"
    data_dir.mkdir(parents=True)
    metrics_dir.mkdir()
    log = base / "gunicorn.log"
    environ = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_WORKER_CLASS": "gthread",
        "GUNICORN_ACCESSLOG": "",
        "MPUFLASK_DATA_DIR": str(data_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        # Nothing written into the repo, not even __pycache__.
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [gunicorn or "gunicorn", "-c", str(GUNICORN_CONF), app],
            cwd=ROOT,
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, label, process, port, log, data_dir)
    try:
        _wait_until_serving(server, workers)
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
    """Poll until gunicorn answers and all its workers are up."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name}: gunicorn exited:\n{_tail(server.log)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
        except OSError:
            time.sleep(0.05)
            continue
        if len(server.worker_pids()) >= workers:
            # Each worker imports the app after the fork: give them a moment.
            time.sleep(1.0)
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name}: gunicorn did not start:\n{_tail(server.log)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the source file --------------------------------------------------------------


@dataclass
class Source:
    """The file uploaded, with the MD5s the servers must answer."""

    path: Path
    size: int
    part_size: int
    part_md5s: list[str]
    md5: str

    @property
    def part_count(self) -> int:
        return len(self.part_md5s)


def make_source(path: Path, size: int, part_size: int) -> Source:
    """Write ``size`` random bytes to ``path``; hash each part and the whole."""
    whole = hashlib.md5(usedforsecurity=False)
    part_md5s = []
    with path.open("wb") as out:
        written = 0
        while written < size:
            part = hashlib.md5(usedforsecurity=False)
            part_end = min(written + part_size, size)
            while written < part_end:
                block = os.urandom(min(8 * MIB, part_end - written))
                out.write(block)
                part.update(block)
                whole.update(block)
                written += len(block)
            part_md5s.append(part.hexdigest())
    return Source(path, size, part_size, part_md5s, whole.hexdigest())


# -- the client -----------------------------------------------------------------


@dataclass
class UploadResult:
    total_s: float  # mpu-create sent -> mpu-complete answered
    parts_s: float  # mpu-create sent -> last part answered
    complete_s: float  # mpu-complete alone
    rss_upload: list[float]  # per worker, MiB, peak during create + parts
    rss_complete: list[float]  # per worker, MiB, peak during complete
    cpu: Cpu  # the whole upload, create to complete


@dataclass
class GetResult:
    seconds: float
    rss: list[float]
    cpu: Cpu


def upload(
    server: Server, key: str, source: Source, client_threads: int
) -> UploadResult:
    """The seed client's upload: create, parts from ``client_threads`` threads,
    complete. One keep-alive ``requests`` session per client thread."""
    url = f"{server.url}{quote(key)}"
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session  # type: ignore[no-any-return]

    def put_part(index: int, upload_id: str) -> dict[str, object]:
        with source.path.open("rb") as file:
            file.seek(source.part_size * index)
            data = file.read(source.part_size)
        response = session().put(
            url,
            params={
                "action": "mpu-uploadpart",
                "uploadId": upload_id,
                "partNumber": str(index + 1),
            },
            data=data,
            timeout=600,
        )
        response.raise_for_status()
        answer: dict[str, object] = response.json()
        if answer.get("etag") != source.part_md5s[index]:
            raise RuntimeError(f"{server.name}: part {index + 1}: wrong etag {answer}")
        return answer

    server.reset_peak_rss()
    with (
        cpu_meter(server) as cpu,
        requests.Session() as control,
        concurrent.futures.ThreadPoolExecutor(client_threads) as pool,
    ):
        start = time.perf_counter()
        created = control.post(url, params={"action": "mpu-create"}, timeout=60)
        created.raise_for_status()
        upload_id = created.json()["uploadId"]
        futures = [
            pool.submit(put_part, index, upload_id)
            for index in range(source.part_count)
        ]
        parts = [future.result() for future in futures]
        parts_done = time.perf_counter()
        rss_upload = server.peak_rss_mib()

        server.reset_peak_rss()
        complete_start = time.perf_counter()
        done = control.post(
            url,
            params={"action": "mpu-complete", "uploadId": upload_id},
            json={"parts": parts},
            timeout=600,
        )
        end = time.perf_counter()
        rss_complete = server.peak_rss_mib()
    if done.status_code != 200:
        raise RuntimeError(f"{server.name}: complete: {done.status_code} {done.text}")
    return UploadResult(
        total_s=end - start,
        parts_s=parts_done - start,
        complete_s=end - complete_start,
        rss_upload=rss_upload,
        rss_complete=rss_complete,
        cpu=cpu[0],
    )


def download(
    server: Server, key: str, size: int, streams: int = 1, md5: str | None = None
) -> GetResult:
    """GET the object on ``streams`` connections at once; ``seconds`` is the wall
    time until the last byte of the last one. See :func:`fetch`."""
    server.reset_peak_rss()
    with (
        cpu_meter(server) as cpu,
        concurrent.futures.ThreadPoolExecutor(streams) as pool,
    ):
        start = time.perf_counter()
        futures = [pool.submit(fetch, server, key, size, md5) for _ in range(streams)]
        for future in futures:
            future.result()
        seconds = time.perf_counter() - start
    return GetResult(seconds, server.peak_rss_mib(), cpu[0])


def fetch(server: Server, key: str, size: int, md5: str | None = None) -> None:
    """GET the object with http.client, 1 MiB ``readinto`` calls, bytes discarded.

    With ``md5`` the bytes are hashed too (a correctness check, not timed).
    """
    view = memoryview(bytearray(MIB))
    digest = hashlib.md5(usedforsecurity=False) if md5 else None
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        conn.request("GET", f"/{quote(key)}?action=get")
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{server.name}: GET: {response.status}")
        received = 0
        while count := response.readinto(view):
            received += count
            if digest is not None:
                digest.update(view[:count])
    finally:
        conn.close()
    if received != size:
        raise RuntimeError(f"{server.name}: GET gave {received} bytes, not {size}")
    if digest is not None and digest.hexdigest() != md5:
        raise RuntimeError(f"{server.name}: GET gave other bytes than uploaded")


def delete(server: Server, key: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("DELETE", f"/{quote(key)}?action=delete")
        response = conn.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"{server.name}: delete: {response.status}")
    finally:
        conn.close()


# -- running and reporting ----------------------------------------------------------


@dataclass
class Results:
    server: Server
    durable: bool
    uploads: list[UploadResult] = field(default_factory=list)
    gets: list[GetResult] = field(default_factory=list)
    idle_rss: list[float] = field(default_factory=list)


def run_round(
    results: Results, source: Source, client_threads: int, streams: int, rnd: int
) -> None:
    """One upload, one GET and one delete of a fresh key."""
    key = f"bench/{results.server.name}-{rnd}.bin"
    os.sync()  # no dirty bytes of an earlier phase written back during this one
    results.uploads.append(upload(results.server, key, source, client_threads))
    os.sync()
    results.gets.append(download(results.server, key, source.size, streams))
    delete(results.server, key)


def verify(results: Results, source: Source, client_threads: int) -> None:
    """An untimed upload + GET whose bytes are hashed: each app serves our bytes."""
    key = f"bench/{results.server.name}-verify.bin"
    upload(results.server, key, source, client_threads)
    download(results.server, key, source.size, md5=source.md5)
    delete(results.server, key)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spread(values: Sequence[float], fmt: str) -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    low, high = min(values), max(values)
    return f"{format(_median(values), fmt)} [{format(low, fmt)}-{format(high, fmt)}]"


@dataclass
class Row:
    """One app's figures over its rounds (lists: one value per round)."""

    label: str
    fsync: str
    upload_mibs: list[float]
    parts_mibs: list[float]
    complete_ms: list[float]
    get_mibs: list[float]
    server_cpu_upload: list[float]  # CPU seconds per GiB uploaded
    server_cpu_get: list[float]  # CPU seconds per GiB served
    client_cpu_upload: list[float]
    client_cpu_get: list[float]
    others_upload: list[float]  # cores busy with other processes, on average
    others_get: list[float]
    rss_upload: float
    rss_complete: float
    rss_get: float

    @property
    def rss_peak(self) -> float:
        return max(self.rss_upload, self.rss_complete, self.rss_get)


def make_row(results: Results, size_mib: float, streams: int) -> Row:
    ups, gets = results.uploads, results.gets
    gib = size_mib / 1024
    return Row(
        label=results.server.label,
        fsync="yes" if results.durable else "no",
        upload_mibs=[size_mib / u.total_s for u in ups],
        parts_mibs=[size_mib / u.parts_s for u in ups],
        complete_ms=[u.complete_s * 1000 for u in ups],
        get_mibs=[size_mib * streams / g.seconds for g in gets],
        server_cpu_upload=[u.cpu.server / gib for u in ups],
        server_cpu_get=[g.cpu.server / (gib * streams) for g in gets],
        client_cpu_upload=[u.cpu.client / gib for u in ups],
        client_cpu_get=[g.cpu.client / (gib * streams) for g in gets],
        others_upload=[u.cpu.others / u.cpu.wall for u in ups],
        others_get=[g.cpu.others / g.cpu.wall for g in gets],
        rss_upload=max(max(u.rss_upload) for u in ups),
        rss_complete=max(max(u.rss_complete) for u in ups),
        rss_get=max(max(g.rss) for g in gets),
    )


def print_table(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    print("-" * len(line.rstrip()))
    for cell in cells:
        print("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())


def print_tables(rows: list[Row]) -> None:
    """Wall-clock figures, then what they cost (CPU, memory) and the noise."""
    print_table(
        (
            "app",
            "fsync",
            "upload MiB/s",
            "parts only MiB/s",
            "complete ms",
            "GET MiB/s",
        ),
        [
            (
                row.label,
                row.fsync,
                _spread(row.upload_mibs, ".0f"),
                _spread(row.parts_mibs, ".0f"),
                _spread(row.complete_ms, ".1f"),
                _spread(row.get_mibs, ".0f"),
            )
            for row in rows
        ],
    )
    print()
    print_table(
        (
            "app",
            "fsync",
            "server CPU s/GiB up",
            "server CPU s/GiB GET",
            "client CPU s/GiB up/GET",
            "peak RSS/worker MiB up/cpl/GET",
            "other load (cores) up/GET",
        ),
        [
            (
                row.label,
                row.fsync,
                _spread(row.server_cpu_upload, ".2f"),
                _spread(row.server_cpu_get, ".2f"),
                f"{_median(row.client_cpu_upload):.2f} / "
                f"{_median(row.client_cpu_get):.2f}",
                f"{row.rss_upload:.0f} / {row.rss_complete:.0f} / {row.rss_get:.0f}",
                f"{_median(row.others_upload):.2f} / {_median(row.others_get):.2f}",
            )
            for row in rows
        ],
    )


def print_verdict(ours: Row, lean: Row) -> bool:
    """The ratios that matter, each against its target; True if all are met."""
    upload_ratio = _median(ours.upload_mibs) / _median(lean.upload_mibs)
    upload_best = max(ours.upload_mibs) / max(lean.upload_mibs)
    parts_ratio = _median(ours.parts_mibs) / _median(lean.parts_mibs)
    get_ratio = _median(ours.get_mibs) / _median(lean.get_mibs)
    get_best = max(ours.get_mibs) / max(lean.get_mibs)
    complete_ms = _median(ours.complete_ms)
    cpu_up = _median(lean.server_cpu_upload) / _median(ours.server_cpu_upload)
    cpu_get = _median(lean.server_cpu_get) / _median(ours.server_cpu_get)
    checks: list[tuple[str, str, str, bool | None]] = [
        (
            "upload create->complete, ours/lean",
            f"{upload_ratio:.2f}",
            f">= {TARGET_UPLOAD_RATIO}",
            upload_ratio >= TARGET_UPLOAD_RATIO,
        ),
        ("  best round vs best round", f"{upload_best:.2f}", "(info)", None),
        ("  parts only (complete excluded)", f"{parts_ratio:.2f}", "(info)", None),
        (
            "  server CPU per GiB, lean/ours",
            f"{cpu_up:.2f}",
            "(info: 1 = as lean)",
            None,
        ),
        (
            "GET, ours/lean",
            f"{get_ratio:.2f}",
            f">= {TARGET_GET_RATIO}",
            get_ratio >= TARGET_GET_RATIO,
        ),
        ("  best round vs best round", f"{get_best:.2f}", "(info)", None),
        (
            "  server CPU per GiB, lean/ours",
            f"{cpu_get:.2f}",
            "(info: 1 = as lean)",
            None,
        ),
        (
            "complete of the object, ours (ms)",
            f"{complete_ms:.1f}",
            f"< {TARGET_COMPLETE_MS:.0f}",
            complete_ms < TARGET_COMPLETE_MS,
        ),
        (
            "  lean's naive copy (ms)",
            f"{_median(lean.complete_ms):.1f}",
            "(info)",
            None,
        ),
        (
            "peak RSS per worker, ours (MiB)",
            f"{ours.rss_peak:.0f}",
            f"< {TARGET_RSS_MIB:.0f}",
            ours.rss_peak < TARGET_RSS_MIB,
        ),
        ("  lean (MiB)", f"{lean.rss_peak:.0f}", "(info)", None),
    ]
    width = max(len(c[0]) for c in checks)
    for name, value, target, ok in checks:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        print(f"  {name.ljust(width)}  {value:>7}  {target:<19}  {verdict}".rstrip())
    return all(ok for *_, ok in checks if ok is not None)


def filesystem_of(path: Path) -> str:
    """The type of the filesystem ``path`` is on (longest mount point prefix)."""
    best, kind = "", "?"
    resolved = str(path.resolve())
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def machine() -> str:
    mem_kib = _meminfo_kib("MemTotal")
    python = sys.version.split()[0]
    return f"{os.cpu_count()} CPUs, {mem_kib / MIB:.1f} GiB RAM, Python {python}"


def _meminfo_kib(name: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="mpuflask vs the leanest WSGI app, under the same gunicorn.",
    )
    parser.add_argument("--size-mib", type=int, default=512, help="object size")
    parser.add_argument("--part-mib", type=int, default=10, help="part size")
    parser.add_argument(
        "--threads", type=int, default=16, help="gunicorn threads per worker"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument(
        "--client-threads", type=int, default=25, help="parallel part uploads"
    )
    parser.add_argument(
        "--durable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fsync in ours (MPUFLASK_DURABLE) and in the lean app compared with it",
    )
    parser.add_argument(
        "--chunk-mib",
        type=float,
        default=1.0,
        help="MPUFLASK_CHUNK_SIZE for both apps (read size for bodies and files)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds per app")
    parser.add_argument(
        "--get-streams",
        type=int,
        default=1,
        help="GETs of the object at once, each on its own connection (GET MiB/s "
        "is their sum)",
    )
    parser.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run ours with the other durability (the lean app always "
        "runs both ways)",
    )
    parser.add_argument(
        "--ours-app",
        default="wsgi:app",
        help="the WSGI app measured as 'ours' (module:callable, from the repo root)",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="MODULE:APP[,NAME=VALUE...]",
        help="also measure this app with ours' settings plus the given environment "
        "(e.g. bench.variants:sendfile_app, or wsgi:app,MALLOC_ARENA_MAX=2); "
        "repeatable",
    )
    parser.add_argument(
        "--ours-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for ours (and --also apps); repeatable",
    )
    args = parser.parse_args(argv)
    for item in args.ours_env:
        if "=" not in item:
            parser.error(f"--ours-env {item!r}: expected NAME=VALUE")
    for also in args.also:
        if any("=" not in item for item in also.split(",")[1:]):
            parser.error(f"--also {also!r}: expected MODULE:APP[,NAME=VALUE...]")
    if args.part_mib < 5 and args.size_mib > args.part_mib:
        parser.error("--part-mib: R2 (and mpuflask) need parts of at least 5 MiB")
    if min(args.size_mib, args.part_mib, args.threads, args.workers) <= 0:
        parser.error("sizes, threads and workers must be positive")
    if min(args.client_threads, args.repeat, args.get_streams) <= 0:
        parser.error("--client-threads, --repeat and --get-streams must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    size, part_size = args.size_mib * MIB, args.part_mib * MIB
    chunk = int(args.chunk_mib * MIB)
    common = {"MPUFLASK_CHUNK_SIZE": str(chunk)}

    extra = dict(item.split("=", 1) for item in args.ours_env)

    def ours_env(durable: bool) -> dict[str, str]:
        return {**common, "MPUFLASK_DURABLE": "true" if durable else "false", **extra}

    def lean_env(durable: bool) -> dict[str, str]:
        return {**common, "LEAN_DURABLE": "1" if durable else "0"}

    # (name, label, app, env, durable); the first two are compared.
    d = args.durable
    specs = [
        ("ours", "ours (mpuflask)", args.ours_app, ours_env(d), d),
        ("lean", "lean (naive copy)", "bench.lean_app:app", lean_env(d), d),
    ]
    for index, also in enumerate(args.also):
        app, *settings = also.split(",")
        env = {**ours_env(d), **dict(item.split("=", 1) for item in settings)}
        specs.append((f"also-{index + 1}", also, app, env, d))
    if args.reference:
        specs.append(
            ("ours-other", "ours (mpuflask)", args.ours_app, ours_env(not d), not d)
        )
    specs.append(
        (
            "lean-other",
            "lean (naive copy)",
            "bench.lean_app:app",
            lean_env(not d),
            not d,
        )
    )

    work_dir = Path(tempfile.mkdtemp(prefix="mpuflask-bench-"))
    try:
        print(
            f"mpuflask server benchmark: {args.size_mib} MiB object, "
            f"{args.part_mib} MiB parts ({-(-size // part_size)}), "
            f"{args.client_threads} client threads, {args.get_streams} GET "
            f"stream(s), {args.repeat} rounds per app"
        )
        print(
            f"gunicorn: gthread, {args.workers} workers x {args.threads} threads "
            f"(gunicorn.conf.py), MPUFLASK_CHUNK_SIZE={chunk} for both apps"
        )
        if extra:
            print(f"ours' extra environment: {extra}")
        print(
            f"machine: {machine()}; data dirs on {filesystem_of(work_dir)} "
            f"under {tempfile.gettempdir()}"
        )
        source = make_source(work_dir / "source.bin", size, part_size)
        with ExitStack() as stack:
            all_results = []
            for name, label, app, env, durable in specs:
                server = stack.enter_context(
                    gunicorn_server(
                        name,
                        label,
                        app,
                        work_dir,
                        workers=args.workers,
                        threads=args.threads,
                        env=env,
                    )
                )
                all_results.append(Results(server, durable))
            for results in all_results:
                verify(results, source, args.client_threads)
            for rnd in range(args.repeat):
                # Each round starts with the next app: no app always runs first.
                shift = rnd % len(all_results)
                for results in all_results[shift:] + all_results[:shift]:
                    run_round(
                        results, source, args.client_threads, args.get_streams, rnd
                    )
                    print(
                        f"  round {rnd + 1}/{args.repeat} {results.server.name:<10} "
                        f"upload {results.uploads[-1].total_s:6.2f} s "
                        f"(complete {results.uploads[-1].complete_s * 1000:7.1f} ms), "
                        f"GET {results.gets[-1].seconds:5.2f} s",
                        flush=True,
                    )
        rows = [make_row(r, args.size_mib, args.get_streams) for r in all_results]
        print()
        print(
            f"median [min-max] of {args.repeat} rounds; upload = mpu-create sent "
            "to mpu-complete answered; RSS = VmHWM, max over workers and rounds;"
        )
        print(
            "CPU = user + system of gunicorn's processes (client: this process) per "
            "GiB moved; other load = cores busy with anything else meanwhile"
        )
        print_tables(rows)
        print()
        fsync = "with" if d else "without"
        print(f"ours vs lean, both {fsync} fsync:")
        ok = print_verdict(rows[0], rows[1])
        return 0 if ok else 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
