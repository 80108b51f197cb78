"""Real gunicorn servers on loopback, for tests where processes matter.

``gunicorn_server(...)`` starts ``gunicorn`` (our ``gunicorn.conf.py``) on a free
port with the given environment, waits until it answers, and stops it on exit.
Its log goes to a file under the test's ``tmp_path``, printed if start-up fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
#: How long gunicorn may take to answer its first request (a loaded 2-core
#: machine with several gateways starting at once needs tens of seconds).
START_TIMEOUT = 120.0


@dataclass
class Server:
    url: str  # ends with "/": f"{server.url}{key}?action=..."
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    def worker_pids(self) -> list[int]:
        """The pids of the master's worker processes (Linux /proc)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == self.process.pid:
                    pids.append(int(entry.name))
        return pids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gunicorn_executable() -> str:
    found = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    return found or "gunicorn"


#: Fresh ports to try when the one chosen is taken before gunicorn binds it.
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """gunicorn found its port in use (chosen free, taken meanwhile)."""


@contextmanager
def gunicorn_server(
    tmp_path: Path,
    *,
    workers: int = 4,
    threads: int = 8,
    env: dict[str, str] | None = None,
    app: str = "wsgi:app",
    data_dir: Path | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """Run ``gunicorn app`` until the ``with`` block ends.

    Without ``port``, on a free one. It is free when chosen, so another process
    (a second test worker's server, a client's connection) may take it before
    gunicorn binds it; then the start is tried again on a fresh port.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        with contextlib.ExitStack() as stack:
            try:
                server = stack.enter_context(
                    _started(
                        tmp_path,
                        workers,
                        threads,
                        env,
                        app,
                        data_dir,
                        port or free_port(),
                    )
                )
            except PortTaken:
                if port is not None or attempt == PORT_ATTEMPTS:
                    raise
                continue
            yield server
            return


@contextmanager
def _started(
    tmp_path: Path,
    workers: int,
    threads: int,
    env: dict[str, str] | None,
    app: str,
    data_dir: Path | None,
    port: int,
) -> Iterator[Server]:
    """gunicorn on ``port``, stopped on exit; PortTaken (stopped) if in use."""
    data_dir = data_dir or tmp_path / "data"
    log = tmp_path / f"gunicorn-{port}.log"
    environ = {
        **{k: v for k, v in os.environ.items() if k != "GUNICORN_ACCESSLOG"},
        "MPUFLASK_DATA_DIR": str(data_dir),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        **(env or {}),
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [gunicorn_executable(), app],
            cwd=ROOT,
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}/", process, log, data_dir)
    try:
        try:
            _wait_until_serving(server, port)
        except PortTaken:
            # Still retrying the bind, with its signals queued until it is
            # done (5 s): it has no worker yet, nothing to stop gracefully.
            process.kill()
            process.wait()
            raise
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(server: Server, port: int) -> None:
    """Poll until gunicorn answers (or died); a start-up wait, not a sync sleep.

    Any request error counts as "not yet": refused while it binds, reset or
    slow (a read timeout) while its workers import and sweep. An answer counts
    only once this gunicorn holds the socket listening on ``port``: another
    process holding the port would answer too.
    """
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log.read_text()}")
        said = server.log.read_text(errors="replace")
        if "Connection in use" in said:
            raise PortTaken(f"port {port} is taken:\n{said}")
        left = deadline - time.monotonic()
        try:
            requests.get(server.url, timeout=max(0.1, min(10.0, left)))
        except requests.RequestException as error:
            last = error
            time.sleep(0.05)
            continue
        if _listens_on(server.process.pid, port):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"gunicorn did not answer in {START_TIMEOUT} s ({last!r}):\n"
        f"{server.log.read_text()}"
    )


def _listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port`` (on
    any address), from Linux's /proc: whatever gunicorn logs, or not."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    try:
        held = list(Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:  # it exited
        return False
    except PermissionError:  # run as another user: no way to tell, trust it
        return True
    for fd in held:
        try:
            if os.readlink(fd) in inodes:
                return True
        except FileNotFoundError:  # closed meanwhile
            continue
    return False
