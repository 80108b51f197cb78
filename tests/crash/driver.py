"""The crash harness's process driver: gunicorn started, killed, restarted.

:class:`Driver` runs gunicorn (our ``gunicorn.conf.py``, through
``tests/servers.py``) on one data directory and port, SIGKILLs a worker or the
master with every worker, waits until nothing of a killed server runs or
listens, keeps every server's log in one file (noting the errors no kill
explains, with their tracebacks), and shows what a crash left in the data
directory. Every wait is a bounded poll.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import requests

from tests.servers import Server
from tests.servers import gunicorn_server

from .report import Findings
from .report import HarnessConfig

#: What the start-up sweep must empty after a crash.
AREAS_EMPTIED_BY_SWEEP = ("tmp", "staging", "trash")
#: Messages of gunicorn's log that a kill explains (not findings).
_EXPECTED_LOG = re.compile(r"was sent SIGKILL|Perhaps out of memory")


class HarnessError(Exception):
    """The harness could not go on (the server would not start, clients hung)."""


def _state(pid: int) -> str:
    """The process state letter (R, S, T, Z, ...), or "" if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has closed its sockets: not alive)."""
    return _state(pid) not in ("", "Z", "X")


def _wait_gone(pids: list[int], timeout: float = 20.0) -> bool:
    """Poll until every pid has exited (a bounded wait, not a synchronising sleep)."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def listening(port: int) -> bool:
    """Whether a socket listens on 127.0.0.1:``port`` (Linux /proc/net/tcp)."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            return True
    return False


def kill_master(server: Server) -> list[int]:
    """SIGKILL gunicorn's master and every worker it has; return the workers.

    The master is stopped first so it cannot fork a worker we would miss; the
    workers share our process group, so each is killed by pid.
    """
    master = server.process.pid
    os.kill(master, signal.SIGSTOP)
    # SIGSTOP is asynchronous: until the master is really stopped it may still
    # fork a worker, which would outlive it holding the listening socket.
    deadline = time.monotonic() + 10
    while _state(master) not in ("T", "t", "Z", ""):
        if time.monotonic() > deadline:
            raise HarnessError(f"gunicorn's master {master} did not stop")
        time.sleep(0.001)  # a bounded poll of the kernel's state
    workers = server.worker_pids()
    os.kill(master, signal.SIGKILL)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.process.wait(timeout=30)
    return workers


def readable_log(text: str) -> list[str]:
    """gunicorn's JSON log lines as ``LEVEL logger: message``, tracebacks in full."""
    lines = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
            lines.append(
                f"{record.get('level')} {record.get('logger')}: {record.get('message')}"
            )
            if record.get("exc_info"):
                lines.append(str(record["exc_info"]))
        except (ValueError, AttributeError):
            lines.append(line[:300])
    return lines


class Driver:
    """gunicorn on the run's data directory and port, started and killed."""

    def __init__(self, config: HarnessConfig, port: int, findings: Findings) -> None:
        self.cfg = config
        self.port = port
        self.findings = findings
        self.server: Server | None = None
        self.killed_workers: list[int] = []
        self.stack = ExitStack()
        self.all_log = config.workdir / "gunicorn-all.log"
        #: The server's environment (the power-loss harness sets durability).
        self.env = {
            "MPUFLASK_MIN_PART_SIZE": str(config.min_part),
            "MPUFLASK_DURABLE": "true",
            "MPUFLASK_SWEEP_INTERVAL": str(config.sweep_interval),
            "PROMETHEUS_MULTIPROC_DIR": str(config.workdir / "metrics"),
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "GUNICORN_LOGLEVEL": "info",
        }

    # -- starting and stopping ------------------------------------------------------

    def start(self) -> None:
        """Start gunicorn on our data directory and port (a few tries)."""
        failures = 0
        for _ in range(6):
            stack = ExitStack()
            try:
                self.server = stack.enter_context(
                    gunicorn_server(
                        self.cfg.workdir,
                        workers=self.cfg.workers,
                        threads=self.cfg.threads,
                        env=self.env,
                        data_dir=self.cfg.data_dir,
                        port=self.port,
                    )
                )
            except RuntimeError as error:  # gunicorn exited, or never answered
                stack.close()
                self.findings.violation(
                    "server exits", f"restart failed: {error}"[-3000:]
                )
                self.collect_log()
                failures += 1
                if failures == 3:
                    break
                continue
            except requests.RequestException:
                # tests/servers.py's probe timed out (1 s) on a loaded machine:
                # a slow start, not a fault; the context has stopped gunicorn.
                stack.close()
                self.findings.count("slow_starts")
                self.collect_log()
                continue
            self.stack = stack
            return
        raise HarnessError("gunicorn would not start")

    def stop(self) -> None:
        """Stop gunicorn (SIGTERM; nothing if it was killed) and keep its log."""
        server, self.server = self.server, None
        killed, self.killed_workers = self.killed_workers, []
        if not _wait_gone(killed):
            raise HarnessError(f"killed workers {killed} still run after 20 s")
        self.stack.close()
        if server is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        deadline = time.monotonic() + 20
        while listening(self.port):  # nothing of this server may serve on
            if time.monotonic() > deadline:
                raise HarnessError(f"port {self.port} still listens after a stop")
            time.sleep(0.01)
        self.collect_log()

    # -- kills ------------------------------------------------------------------------

    def kill_worker(self, rng: random.Random) -> None:
        """SIGKILL one of the workers (gunicorn respawns it)."""
        assert self.server is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            workers = self.server.worker_pids()
            if workers:
                try:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self.findings.count("kills_worker")
                return
            time.sleep(0.01)  # bounded poll while gunicorn respawns
        raise HarnessError("gunicorn had no worker to kill for 10 s")

    def kill_master(self) -> None:
        """SIGKILL the master and every worker; :meth:`stop` waits them out."""
        assert self.server is not None
        self.findings.count("kills_master")
        self.killed_workers = kill_master(self.server)

    def running(self) -> bool:
        return self.server is not None and self.server.process.poll() is None

    def master_died(self) -> None:
        """gunicorn's master ended without our kill: halted, or killed by others."""
        code = None if self.server is None else self.server.process.returncode
        if code is not None and code < 0:
            # A signal we did not send (another process on the machine).
            self.findings.count("external_kills")
        else:
            self.findings.violation(
                "server exits",
                f"gunicorn's master exited by itself ({code}):\n{self.log_tail()}",
            )

    def describe(self) -> str:
        """The server's processes now, for a message."""
        server = self.server
        if server is None:
            return "no server"
        return (
            f"master {server.process.pid} returncode {server.process.poll()}, "
            f"workers {server.worker_pids()}, listening: {listening(self.port)}"
        )

    # -- logs -------------------------------------------------------------------------

    def log_path(self) -> Path:
        return self.cfg.workdir / f"gunicorn-{self.port}.log"

    def log_tail(self, records: int = 15) -> str:
        """The last server's last log records, one a line, tracebacks in full."""
        try:
            text = self.log_path().read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(readable_log("\n".join(text.splitlines()[-records:])))

    def collect_log(self) -> None:
        """Append the last server's log to one file, and note its errors."""
        path = self.log_path()
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return
        path.unlink()
        with self.all_log.open("a") as log:
            log.write(text)
        for line in text.splitlines():
            try:
                record = json.loads(line)
                level, message = record.get("level"), str(record.get("message"))
            except (ValueError, AttributeError):
                level, message = "", line
            if level in ("ERROR", "CRITICAL") and not _EXPECTED_LOG.search(message):
                # A worker that fails to boot logs its traceback as exc_info.
                trace = record.get("exc_info")
                entry = f"{message}\n{trace}" if trace else message
                self.findings.log_errors.append(entry)
            elif level == "" and "Traceback" in line:
                self.findings.log_errors.append(line)

    # -- what a crash left --------------------------------------------------------------

    def debris(self) -> dict[str, list[str]]:
        """What is in the areas the start-up sweep must empty."""
        return {
            area: sorted(os.listdir(self.cfg.data_dir / area))
            for area in AREAS_EMPTIED_BY_SWEEP
            if (self.cfg.data_dir / area).is_dir()
        }

    def age_debris(self) -> None:
        """Count the crash's leftovers; age tmp/ past the grace period.

        Every process is dead, so everything in tmp/ is a leftover. The store
        spares temp files younger than 60 s (they may be a live request's); we
        move their clock back so the start-up sweep must remove them.
        """
        old = time.time() - 3600
        for area, names in self.debris().items():
            self.findings.count(f"debris_{area}", len(names))
            if area == "tmp":
                for name in names:
                    os.utime(
                        self.cfg.data_dir / area / name,
                        (old, old),
                        follow_symlinks=False,
                    )
