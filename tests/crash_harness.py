"""The crash harness (issue 6, item 1): real gunicorn, SIGKILLs, checked invariants.

Used by ``tests/test_crash.py`` (a short run inside the suite) and by
``bench/crash_harness.py`` (the long run: hundreds of kills, figures printed).

What it does
------------
It runs gunicorn (our ``gunicorn.conf.py``) with several workers on one data
directory, durability on, parts as small as 64 KiB, and drives ``clients``
threads against it. Each client loops over: start an upload of one of a few
shared keys (``mpu-create``), send its 2-4 parts in parallel, sometimes send a
part again with other bytes, then complete it (a new version of the key: an
overwrite) or abort it; delete a key; read a key whole or a range of it. Every
byte a client sends is generated from ``(seed, salt)``, so the harness knows the
exact content, MD5s and etag of every version it ever asked for.

A coordinator waits for progress (a random number of acknowledged requests,
seeded), then SIGKILLs one worker (gunicorn respawns it) or the master and all
its workers, whatever they are doing. After a master kill it waits for the
clients to park, ages the crash's leftovers in ``tmp/`` past the temp files'
grace period (as if the restart came a minute later), restarts gunicorn on the
same data directory and port, and checks:

* leftovers: ``tmp/``, ``staging/`` and ``trash/`` are emptied by the start-up
  sweep, and ``uploads/`` holds exactly the uploads the clients still consider
  open (plus uploads whose mpu-create was cut by a kill, which the harness
  recognises by key, counts, and aborts); after the final sweep, the owner
  index (``owners/``, behind ``MPUFLASK_MAX_OPEN_UPLOADS``) has exactly one
  entry per open upload;
* the listings agree: ``action=list`` (the SQLite index, repaired at start-up)
  shows exactly the keys GET finds, each with the etag and size GET answered,
  and ``action=mpu-list`` exactly the open uploads;
* no acknowledged part is lost: ``mpu-listparts`` of every open upload lists
  each acknowledged part with its etag and size (or, if a later attempt at
  that part number was cut by a kill, that attempt's etag);
* no acknowledged write is lost: a GET of every key answers a state the key
  may be in (see below), with the very bytes of that version;
* no read was stale: every GET made during the run (they are recorded) saw a
  state the key may have been in during that GET.

On every GET answered 200/206, at any time, it checks that the response is one
whole version: the etag names a version of this key, Content-Type is that
version's (it is set at mpu-create and unique per upload), Content-Length is
honoured, and the bytes (or the range, with its Content-Range) are exactly that
version's. A read cut short by a kill (fewer bytes than Content-Length) is a
failed read, never a torn one; a complete 200/206 with other bytes is torn.

Which states a key may be in
----------------------------
Each write to a key (a complete publishes one version, a delete publishes
"absent", the initial state is an absent written at -inf) is recorded with the
instants its request started and ended, and how it ended: acknowledged, refused
(it did nothing), or unknown (cut by a kill: a kill ends the process before its
socket closes, so whatever an unknown write did, it did before its client saw
the failure). Unknown completes are resolved at the next restart with
mpu-listparts: the upload is still open (the complete was rolled back, it never
happened) or gone (it was published). A read that started at ``s`` and ended at
``e`` may see the state written by ``w`` if ``w`` may have happened, started
before ``e``, and no write that surely happened started after ``w`` ended and
ended before ``s``. That is necessary for linearizability, so any violation is
a real bug; at a restart (nothing in flight) it says: the GET shows the last
acknowledged write, or a cut write that came after it.

Everything is bounded: requests time out, waits have deadlines, the kills are
counted and the run has a time budget; traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import random
import re
import signal
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

import requests

from tests.servers import Server
from tests.servers import free_port
from tests.servers import gunicorn_server

#: What must never happen; each is a count of 0 in a passing run.
INVARIANTS = (
    "lost acknowledged writes",
    "lost acknowledged parts",
    "lost open uploads",
    "wrong acknowledgements",
    "torn reads",
    "stale reads",
    "leftover temp files after restart",
    "owner index out of step",
    "listing out of step",
    "server errors (5xx)",
    "unexpected refusals (4xx)",
    "server exits",
    "harness errors",
)

#: How a request ended, seen from the client.
OK = "ok"  # a whole response arrived
REFUSED = "refused"  # no connection: the request never reached a server
CUT = "cut"  # connection lost after sending: it may or may not have happened
TIMEOUT = "timeout"  # no answer in time: it may still happen later

#: What became of a write.
PENDING = "pending"
ACKED = "acked"
UNKNOWN = "unknown"
FAILED = "failed"  # refused: it did nothing
HAPPENED = "happened"  # unknown, then resolved: published
NOT_HAPPENED = "not happened"  # unknown, then resolved: rolled back
DEFINITE = frozenset({ACKED, HAPPENED})
IMPOSSIBLE = frozenset({FAILED, NOT_HAPPENED})

AREAS_EMPTIED_BY_SWEEP = ("tmp", "staging", "trash")
MAX_PART_SIZE = 5 * 1024**3
NO_SUCH_UPLOAD = "(10024)"
#: Messages of gunicorn's log that a kill explains (not findings).
_EXPECTED_LOG = re.compile(r"was sent SIGKILL|Perhaps out of memory")


@dataclass
class HarnessConfig:
    """One run: the server's shape, the workload's and the kills'."""

    workdir: Path
    seed: int = 1
    kills: int = 10
    #: Every this-many-th kill is the master's (and the last one always is).
    master_every: int = 4
    workers: int = 3
    threads: int = 4
    clients: int = 6
    keys: int = 4
    min_part: int = 64 * 1024
    #: Acknowledged requests between two kills: a seeded random count in this.
    progress: tuple[int, int] = (5, 25)
    #: An extra random delay before each kill, up to this (long form only).
    jitter: float = 0.0
    #: Time budget for the kills, seconds; then a last master kill and checks.
    duration: float = 600.0
    #: A kill happens anyway when no progress came for this long.
    stall_timeout: float = 30.0
    sweep_interval: float = 1.0
    request_timeout: float = 30.0

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"


@dataclass
class Report:
    """Counts, violations (each with details) and the elapsed time of a run."""

    config: HarnessConfig
    counts: Counter[str]
    violations: dict[str, list[str]]
    log_errors: list[str]
    elapsed: float

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def violation_count(self, name: str) -> int:
        return len(self.violations.get(name, []))

    def format(self, details: int = 5) -> str:
        c, cfg = self.counts, self.config
        lines = [
            f"crash harness: seed {cfg.seed}, gunicorn {cfg.workers} workers x "
            f"{cfg.threads} threads, {cfg.clients} clients on {cfg.keys} keys, "
            f"parts >= {cfg.min_part} bytes, durable",
            f"kills: {c['kills_worker'] + c['kills_master']} "
            f"(workers {c['kills_worker']}, master {c['kills_master']}); "
            f"restarts {c['restarts']} (slow starts retried {c['slow_starts']}); "
            f"kills forced by {c['stalls']} stalls; masters killed by others "
            f"{c['external_kills']}",
            f"acknowledged: completes {c['ack_complete']}, parts {c['ack_part']}, "
            f"deletes {c['ack_delete']}, creates {c['ack_create']}, "
            f"aborts {c['ack_abort']}",
            f"cut by kills (outcome unknown): completes {c['unknown_complete']} "
            f"(resolved: published {c['resolved_published']}, rolled back "
            f"{c['resolved_rolled_back']}), parts {c['unknown_part']}, deletes "
            f"{c['unknown_delete']}, creates {c['unknown_create']} (orphan uploads "
            f"found and aborted {c['orphan_uploads']}), aborts {c['unknown_abort']}",
            f"reads: {c['reads_full']} whole, {c['reads_range']} ranged; "
            f"{c['reads_verified']} answered a version (bytes checked), "
            f"{c['reads_absent']} 404, {c['reads_failed']} cut by kills",
            f"checks after restarts: {c['checked_keys']} key reads, "
            f"{c['checked_uploads']} open uploads listed, "
            f"{c['checked_listings']} listings compared",
            f"crash leftovers found before restarts: tmp {c['debris_tmp']}, "
            f"staging {c['debris_staging']}, trash {c['debris_trash']} (all to be "
            f"removed by the start-up sweep); final sweep removed "
            f"{c['final_sweep_removed']}",
        ]
        for name in INVARIANTS:
            lines.append(f"{name}: {self.violation_count(name)}")
        lines.append(f"elapsed: {self.elapsed:.1f} s")
        for name in INVARIANTS:
            for detail in self.violations.get(name, [])[:details]:
                lines.append(f"  [{name}] {detail}")
        if self.log_errors:
            lines.append(
                f"server log errors (not explained by kills): {len(self.log_errors)}"
            )
            lines.extend(f"  {line[:300]}" for line in self.log_errors[:details])
        lines.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(lines)


# -- content ----------------------------------------------------------------------


@dataclass(frozen=True)
class PartSpec:
    """The bytes of one part attempt: ``size`` bytes generated from ``salt``."""

    salt: str
    size: int

    def data(self, seed: int) -> bytes:
        return _part_bytes(seed, self.salt, self.size)

    def md5(self, seed: int) -> str:
        return _part_md5(seed, self.salt, self.size)


@lru_cache(maxsize=512)
def _part_bytes(seed: int, salt: str, size: int) -> bytes:
    return random.Random(f"mpuflask-crash:{seed}:{salt}").randbytes(size)


@lru_cache(maxsize=65536)
def _part_md5(seed: int, salt: str, size: int) -> str:
    return hashlib.md5(_part_bytes(seed, salt, size)).hexdigest()


def multipart_etag(md5s: list[str]) -> str:
    """R2's object etag: MD5 of the parts' binary MD5s, ``-`` and their count."""
    joined = b"".join(bytes.fromhex(md5) for md5 in md5s)
    return f"{hashlib.md5(joined).hexdigest()}-{len(md5s)}"


@dataclass(frozen=True)
class Version:
    """One object version a client asked for (a complete's parts, in order)."""

    vid: int
    key: str
    etag: str  # unquoted
    content_type: str
    parts: tuple[PartSpec, ...]
    size: int
    sha256: str

    def content(self, seed: int) -> bytes:
        return b"".join(part.data(seed) for part in self.parts)


@dataclass(frozen=True)
class RangeSpec:
    """``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix``."""

    first: int | None
    last: int | None

    @property
    def header(self) -> str:
        return f"bytes={'' if self.first is None else self.first}-" + (
            "" if self.last is None else str(self.last)
        )

    def bounds(self, size: int) -> tuple[int, int]:
        """The inclusive byte range RFC 9110 selects in ``size`` bytes."""
        if self.first is None:
            assert self.last is not None
            return max(0, size - self.last), size - 1
        if self.last is None:
            return self.first, size - 1
        return self.first, min(self.last, size - 1)


# -- the model --------------------------------------------------------------------


@dataclass(eq=False)
class Write:
    """A complete (``vid``) or a delete (``vid`` None) of one key."""

    vid: int | None
    start: float
    end: float = math.inf
    state: str = PENDING
    what: str = ""


@dataclass(eq=False)
class Slot:
    """One part number of an upload: what the client wants there, what may be."""

    number: int
    spec: PartSpec
    acked: bool = False  # ``spec`` was acknowledged
    must_exist: bool = False  # some attempt was acknowledged
    #: etag -> size of what mpu-listparts may show for this part number.
    acceptable: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class Job:
    """One upload as a client sees it."""

    jid: int
    key: str
    content_type: str
    part_size: int  # of every part but the last
    slots: list[Slot]
    upload_id: str | None = None
    replaced: bool = False
    closed: bool = False  # no longer the client's to continue


@dataclass(frozen=True)
class Reply:
    outcome: str
    start: float
    end: float
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class Observation:
    key: str
    vid: int | None
    start: float
    end: float
    what: str


class HarnessError(Exception):
    """The harness could not go on (the server would not start, clients hung)."""


class Gate:
    """Lets clients run, or parks them between two steps while the server is down."""

    def __init__(self, members: int) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._stopping = False
        self._parked = 0
        self._members = members

    def checkpoint(self) -> bool:
        """Wait while the gate is closed; False once the run is stopping."""
        with self._cond:
            if self._stopping:
                return False
            if self._open:
                return True
            self._parked += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._open or self._stopping)
            self._parked -= 1
            return not self._stopping

    def leave(self) -> None:
        with self._cond:
            self._members -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open = False

    def wait_parked(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self._parked >= self._members, timeout=timeout
            )

    def reopen(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()


# -- processes --------------------------------------------------------------------


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


def _listening(port: int) -> bool:
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


# -- the harness ------------------------------------------------------------------


class CrashHarness:
    """Runs one :class:`HarnessConfig`; :meth:`run` returns the :class:`Report`."""

    def __init__(self, config: HarnessConfig) -> None:
        self.cfg = config
        self.seed = config.seed
        self.port = free_port()
        self.keys = [f"crash/key-{index}" for index in range(config.keys)]
        self.lock = threading.Lock()
        self.progress = threading.Condition()
        self.acks = 0
        self.counts: Counter[str] = Counter()
        self.violations: dict[str, list[str]] = {}
        self.log_errors: list[str] = []
        self.versions: dict[str, Version] = {}  # by etag
        self.writes: dict[str, list[Write]] = {
            key: [Write(None, -math.inf, -math.inf, ACKED, "initial")]
            for key in self.keys
        }
        self.observations: list[Observation] = []
        self.open_jobs: dict[str, Job] = {}  # by uploadId
        self.resumable: list[Job] = []
        #: Uploads whose complete (its write) or abort (None) was cut by a kill.
        self.to_resolve: list[tuple[Job, Write | None]] = []
        self.unknown_creates: Counter[str] = Counter()
        self.next_id = 0
        self.gate = Gate(config.clients)
        self.pool = ThreadPoolExecutor(
            max_workers=config.clients * 4, thread_name_prefix="crash-part"
        )
        self.server: Server | None = None
        self.killed_workers: list[int] = []
        self.stack = ExitStack()
        self.all_log = config.workdir / "gunicorn-all.log"
        self.env = {
            "MPUFLASK_MIN_PART_SIZE": str(config.min_part),
            "MPUFLASK_DURABLE": "true",
            "MPUFLASK_SWEEP_INTERVAL": str(config.sweep_interval),
            "PROMETHEUS_MULTIPROC_DIR": str(config.workdir / "metrics"),
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "GUNICORN_LOGLEVEL": "info",
        }

    # -- bookkeeping ----------------------------------------------------------

    def violation(self, name: str, detail: str) -> None:
        assert name in INVARIANTS, name
        with self.lock:
            self.violations.setdefault(name, []).append(detail)

    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counts[name] += by

    def acknowledged(self, name: str) -> None:
        self.count(name)
        with self.progress:
            self.acks += 1
            self.progress.notify_all()

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    # -- HTTP -----------------------------------------------------------------

    def target(self, key: str, **params: str) -> str:
        return f"/{quote(key, safe='/')}?{urlencode(params)}"

    def call(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request on its own connection (nothing kept alive across kills)."""
        start = time.monotonic()
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=self.cfg.request_timeout
        )
        try:
            try:
                connection.connect()
            except (ConnectionRefusedError, TimeoutError) as error:
                return Reply(REFUSED, start, time.monotonic(), error=repr(error))
            except OSError as error:
                return Reply(CUT, start, time.monotonic(), error=repr(error))
            try:
                connection.request(
                    method, target, body, {"Connection": "close", **(headers or {})}
                )
                response = connection.getresponse()
                data = response.read()
            except TimeoutError as error:
                return Reply(TIMEOUT, start, math.inf, error=repr(error))
            except (OSError, http.client.HTTPException) as error:
                return Reply(CUT, start, time.monotonic(), error=repr(error))
            headers_seen = {
                name.lower(): value for name, value in response.getheaders()
            }
            return Reply(
                OK, start, time.monotonic(), response.status, headers_seen, data
            )
        finally:
            connection.close()

    def classify(self, reply: Reply, what: str) -> str:
        """``ack``, ``refused`` (a 4xx: nothing done), ``none`` (never sent), ``unknown``."""
        if reply.outcome == REFUSED:
            return "none"
        if reply.outcome != OK:
            return "unknown"
        if 200 <= reply.status < 300:
            return "ack"
        if reply.status >= 500:
            self.violation(
                "server errors (5xx)", f"{what}: {reply.status} {reply.body[:300]!r}"
            )
            return "unknown"
        return "refused"

    # -- client operations --------------------------------------------------------

    def new_job(self, key: str, rng: random.Random) -> Job:
        jid = self.new_id()
        count = rng.randint(2, 4)
        size = rng.randint(self.cfg.min_part, 2 * self.cfg.min_part)
        job = Job(jid, key, f"application/x-crash-{self.seed}-{jid}", size, [])
        job.slots = [
            Slot(number, self.part_spec(job, number, 0, number == count, rng))
            for number in range(1, count + 1)
        ]
        return job

    def part_spec(
        self, job: Job, number: int, attempt: int, last: bool, rng: random.Random
    ) -> PartSpec:
        """R2's rule: the leading parts have one size, the last one no more."""
        size = rng.randint(1, job.part_size) if last else job.part_size
        return PartSpec(f"{job.jid}.{number}.{attempt}", size)

    def create(self, job: Job) -> None:
        reply = self.call(
            "POST",
            self.target(job.key, action="mpu-create"),
            headers={"Content-Type": job.content_type},
        )
        kind = self.classify(reply, f"create {job.key}")
        if kind == "ack":
            answer = json.loads(reply.body)
            if answer.get("key") != job.key or not answer.get("uploadId"):
                self.violation("wrong acknowledgements", f"create answered {answer}")
                job.closed = True
                return
            job.upload_id = answer["uploadId"]
            with self.lock:
                self.open_jobs[answer["uploadId"]] = job
            self.acknowledged("ack_create")
        elif kind == "unknown":
            with self.lock:
                self.unknown_creates[job.key] += 1
            self.count("unknown_create")
        elif kind == "refused":
            self.violation(
                "unexpected refusals (4xx)",
                f"create {job.key}: {reply.status} {reply.body[:200]!r}",
            )
            job.closed = True

    def upload_parts(self, job: Job, slots: list[Slot]) -> None:
        futures = [self.pool.submit(self.put_part, job, slot) for slot in slots]
        for future in futures:
            future.result()

    def put_part(self, job: Job, slot: Slot) -> None:
        spec = slot.spec
        etag = spec.md5(self.seed)
        assert job.upload_id is not None
        reply = self.call(
            "PUT",
            self.target(
                job.key,
                action="mpu-uploadpart",
                uploadId=job.upload_id,
                partNumber=str(slot.number),
            ),
            spec.data(self.seed),
        )
        what = f"part {slot.number} of {job.key} upload {job.upload_id}"
        kind = self.classify(reply, what)
        if kind == "ack":
            answer = json.loads(reply.body)
            if answer != {"partNumber": slot.number, "etag": etag}:
                self.violation(
                    "wrong acknowledgements", f"{what}: {answer}, expected {etag}"
                )
            with self.lock:
                slot.acked = True
                slot.must_exist = True
                slot.acceptable = {etag: spec.size}
            self.acknowledged("ack_part")
        elif kind == "unknown":
            with self.lock:
                slot.acceptable[etag] = spec.size
            self.count("unknown_part")
        elif kind == "refused":
            name = (
                "lost open uploads"
                if NO_SUCH_UPLOAD in reply.body.decode(errors="replace")
                else "unexpected refusals (4xx)"
            )
            self.violation(name, f"{what}: {reply.status} {reply.body[:200]!r}")
            self.drop(job)

    def drop(self, job: Job) -> None:
        """Give up on an upload after a refusal; the coordinator aborts it."""
        with self.lock:
            if job.closed:
                return
            job.closed = True
            assert job.upload_id is not None
            self.open_jobs.pop(job.upload_id, None)
            self.to_resolve.append((job, None))

    def version_of(self, job: Job) -> Version:
        parts = tuple(slot.spec for slot in job.slots)
        etag = multipart_etag([part.md5(self.seed) for part in parts])
        with self.lock:
            known = self.versions.get(etag)
            if known is not None:
                return known
            self.next_id += 1
            content = b"".join(part.data(self.seed) for part in parts)
            version = Version(
                self.next_id,
                job.key,
                etag,
                job.content_type,
                parts,
                len(content),
                hashlib.sha256(content).hexdigest(),
            )
            self.versions[etag] = version
            return version

    def complete(self, job: Job) -> None:
        assert job.upload_id is not None
        version = self.version_of(job)
        body = json.dumps(
            {
                "parts": [
                    {"partNumber": slot.number, "etag": slot.spec.md5(self.seed)}
                    for slot in job.slots
                ]
            }
        ).encode()
        what = f"complete {job.key} upload {job.upload_id} (version {version.vid})"
        write = Write(version.vid, time.monotonic(), what=what)
        with self.lock:
            self.writes[job.key].append(write)
        reply = self.call(
            "POST",
            self.target(job.key, action="mpu-complete", uploadId=job.upload_id),
            body,
            {"Content-Type": "application/json"},
        )
        kind = self.classify(reply, what)
        with self.lock:
            write.end = reply.end
            if kind == "ack":
                write.state = ACKED
                job.closed = True
                self.open_jobs.pop(job.upload_id, None)
            elif kind == "unknown":
                write.state = UNKNOWN
                job.closed = True
                self.open_jobs.pop(job.upload_id, None)
                self.to_resolve.append((job, write))
            else:
                write.state = FAILED
        if kind == "ack":
            if reply.headers.get("etag") != f'"{version.etag}"':
                self.violation(
                    "wrong acknowledgements",
                    f"{what}: etag {reply.headers.get('etag')}, expected {version.etag}",
                )
            self.acknowledged("ack_complete")
        elif kind == "unknown":
            self.count("unknown_complete")
        elif kind == "refused":
            text = reply.body.decode(errors="replace")
            name = "unexpected refusals (4xx)"
            if NO_SUCH_UPLOAD in text:
                name = "lost open uploads"
            elif "(10025)" in text:
                name = "lost acknowledged parts"
            self.violation(name, f"{what}: {reply.status} {text[:200]!r}")
            self.drop(job)

    def abort(self, job: Job) -> None:
        assert job.upload_id is not None
        reply = self.call(
            "DELETE",
            self.target(job.key, action="mpu-abort", uploadId=job.upload_id),
        )
        what = f"abort {job.key} upload {job.upload_id}"
        kind = self.classify(reply, what)
        if kind == "ack":
            with self.lock:
                job.closed = True
                self.open_jobs.pop(job.upload_id, None)
            self.acknowledged("ack_abort")
        elif kind == "unknown":
            with self.lock:
                job.closed = True
                self.open_jobs.pop(job.upload_id, None)
                self.to_resolve.append((job, None))
            self.count("unknown_abort")
        elif kind == "refused":
            self.violation(
                "unexpected refusals (4xx)",
                f"{what}: {reply.status} {reply.body[:200]!r}",
            )
            self.drop(job)

    def delete(self, key: str) -> None:
        write = Write(None, time.monotonic(), what=f"delete {key}")
        with self.lock:
            self.writes[key].append(write)
        reply = self.call("DELETE", self.target(key, action="delete"))
        kind = self.classify(reply, f"delete {key}")
        with self.lock:
            write.end = reply.end
            write.state = {"ack": ACKED, "unknown": UNKNOWN}.get(kind, FAILED)
        if kind == "ack":
            self.acknowledged("ack_delete")
        elif kind == "unknown":
            self.count("unknown_delete")
        elif kind == "refused":
            self.violation(
                "unexpected refusals (4xx)",
                f"delete {key}: {reply.status} {reply.body[:200]!r}",
            )

    def read(self, key: str, wanted: RangeSpec | None) -> None:
        """A GET during the run: verified now, its timing checked at the restart."""
        self.count("reads_range" if wanted else "reads_full")
        headers = {"Range": wanted.header} if wanted else {}
        what = f"GET {key}" + (f" {wanted.header}" if wanted else "")
        reply = self.call("GET", self.target(key, action="get"), headers=headers)
        seen = self.examine_read(key, reply, wanted, what)
        if seen is None:
            return
        with self.lock:
            self.observations.append(
                Observation(key, seen[1], reply.start, reply.end, what)
            )
        self.acknowledged("reads_ok")

    def examine_read(
        self, key: str, reply: Reply, wanted: RangeSpec | None, what: str
    ) -> tuple[str, int | None] | None:
        """Check a GET's answer; ("version"|"absent", vid) or None if it failed."""
        if reply.outcome != OK:
            self.count("reads_failed")
            return None
        if reply.status == 404:
            self.count("reads_absent")
            return ("absent", None)
        if reply.status >= 500:
            self.classify(reply, what)
            self.count("reads_failed")
            return None
        if reply.status not in (200, 206):
            self.violation(
                "unexpected refusals (4xx)",
                f"{what}: {reply.status} {reply.body[:200]!r}",
            )
            return None
        version = self.verify_body(key, reply, wanted, what)
        if version is None:
            return None
        self.count("reads_verified")
        return ("version", version.vid)

    def verify_body(
        self, key: str, reply: Reply, wanted: RangeSpec | None, what: str
    ) -> Version | None:
        """The version a 200/206 answered with, or None (a torn read, recorded)."""
        etag = reply.headers.get("etag", "").removeprefix("W/").strip('"')
        with self.lock:
            version = self.versions.get(etag)
        body = reply.body
        problem = ""
        if version is None:
            problem = f"etag {etag!r} is no version a client wrote"
        elif version.key != key:
            problem = f"etag {etag!r} is a version of {version.key!r}"
        elif reply.headers.get("content-type") != version.content_type:
            problem = (
                f"Content-Type {reply.headers.get('content-type')!r} is not version "
                f"{version.vid}'s {version.content_type!r}"
            )
        elif reply.headers.get("content-length") != str(len(body)):
            problem = (
                f"Content-Length {reply.headers.get('content-length')} but "
                f"{len(body)} bytes"
            )
        elif reply.status == 200:
            if len(body) != version.size:
                problem = f"{len(body)} bytes, version {version.vid} has {version.size}"
            elif hashlib.sha256(body).hexdigest() != version.sha256:
                problem = f"the bytes are not version {version.vid}'s"
        else:
            found = re.fullmatch(
                r"bytes (\d+)-(\d+)/(\d+)", reply.headers.get("content-range", "")
            )
            if wanted is None or found is None:
                problem = (
                    f"206 with Content-Range {reply.headers.get('content-range')!r}"
                )
            else:
                first, last, total = (int(group) for group in found.groups())
                expected = wanted.bounds(version.size)
                if total != version.size:
                    problem = f"Content-Range total {total}, version has {version.size}"
                elif (first, last) != expected:
                    problem = f"Content-Range {first}-{last}, expected {expected}"
                elif body != version.content(self.seed)[first : last + 1]:
                    problem = f"bytes {first}-{last} are not version {version.vid}'s"
        if problem:
            self.violation("torn reads", f"{what}: {problem}")
            return None
        return version

    # -- the model's verdicts -------------------------------------------------------

    def may_see(self, key: str, vid: int | None, start: float, end: float) -> bool:
        """Whether a read over [start, end] may see the state ``vid`` (None: absent)."""
        writes = self.writes[key]
        definite = [w for w in writes if w.state in DEFINITE]
        for write in writes:
            if write.vid != vid or write.state in IMPOSSIBLE or write.start >= end:
                continue
            if any(d.start > write.end and d.end < start for d in definite):
                continue  # surely overwritten before the read began
            return True
        return False

    def explain(self, key: str) -> str:
        """The key's recent writes, for a violation's message."""
        recent = self.writes[key][-6:]
        return "; ".join(
            f"{w.what or 'initial'} [{w.state}] vid={w.vid}" for w in recent
        )

    # -- the coordinator ------------------------------------------------------------

    def run(self) -> Report:
        started = time.monotonic()
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"mpuflask-crash:{self.seed}:kills")
        clients = [
            threading.Thread(
                target=Client(self, index).run, name=f"crash-client-{index}"
            )
            for index in range(self.cfg.clients)
        ]
        finished = False
        try:
            self.start_server()
            for thread in clients:
                thread.start()
            for index in range(self.cfg.kills):
                last = index == self.cfg.kills - 1
                if time.monotonic() - started > self.cfg.duration:
                    last = True  # out of time: end with a master kill and checks
                master = last or (index + 1) % self.cfg.master_every == 0
                alive = self.wait_progress(rng.randint(*self.cfg.progress))
                if alive and self.cfg.jitter > 0:
                    time.sleep(rng.uniform(0, self.cfg.jitter))  # workload timing
                if alive and not master:
                    self.kill_worker(rng)
                    continue
                if alive:
                    self.count("kills_master")
                    assert self.server is not None
                    self.killed_workers = kill_master(self.server)
                self.after_master_crash()
                if last:
                    break
                self.gate.reopen()
            finished = True
        except HarnessError as error:
            self.violation("harness errors", str(error))
        except Exception:
            self.violation("harness errors", traceback.format_exc())
        finally:
            self.gate.stop()
            for thread in clients:
                if thread.ident is not None:
                    thread.join(timeout=120)
            self.pool.shutdown(wait=True)
            self.stop_server()
        if finished:
            self.final_sweep_check()
        self.collect_log()
        return Report(
            self.cfg,
            self.counts,
            self.violations,
            self.log_errors,
            time.monotonic() - started,
        )

    def wait_progress(self, count: int) -> bool:
        """Wait for ``count`` more acknowledged requests; False if gunicorn died."""
        deadline = time.monotonic() + self.cfg.stall_timeout
        with self.progress:
            target = self.acks + count
            while self.acks < target:
                if self.server is None or self.server.process.poll() is not None:
                    self.master_died()
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.count("stalls")
                    break
                self.progress.wait(min(0.5, remaining))
        return True

    def master_died(self) -> None:
        """gunicorn's master ended without our kill: halted, or killed by others."""
        code = None if self.server is None else self.server.process.returncode
        if code is not None and code < 0:
            # A signal we did not send (another process on the machine).
            self.count("external_kills")
        else:
            self.violation(
                "server exits",
                f"gunicorn's master exited by itself ({code}):\n{self.log_tail()}",
            )

    def kill_worker(self, rng: random.Random) -> None:
        assert self.server is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            workers = self.server.worker_pids()
            if workers:
                try:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self.count("kills_worker")
                return
            time.sleep(0.01)  # bounded poll while gunicorn respawns
        raise HarnessError("gunicorn had no worker to kill for 10 s")

    def after_master_crash(self) -> None:
        """Park the clients, look at the leftovers, restart, check everything."""
        self.gate.close()
        if not self.gate.wait_parked(timeout=3 * self.cfg.request_timeout):
            raise HarnessError("clients did not park after a master kill")
        self.stop_server()
        self.while_down()
        self.start_server()
        self.count("restarts")
        self.check_after_restart()

    def while_down(self) -> None:
        """Between the crash and the restart: no process runs on the data dir.

        (The power-loss harness cuts the power here.)
        """
        self.age_debris()

    def start_server(self) -> None:
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
                self.violation("server exits", f"restart failed: {error}"[-3000:])
                self.collect_log()
                failures += 1
                if failures == 3:
                    break
                continue
            except requests.RequestException:
                # tests/servers.py's probe timed out (1 s) on a loaded machine:
                # a slow start, not a fault; the context has stopped gunicorn.
                stack.close()
                self.count("slow_starts")
                self.collect_log()
                continue
            self.stack = stack
            return
        raise HarnessError("gunicorn would not start")

    def stop_server(self) -> None:
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
        while _listening(self.port):  # nothing of this server may serve on
            if time.monotonic() > deadline:
                raise HarnessError(f"port {self.port} still listens after a stop")
            time.sleep(0.01)
        self.collect_log()

    def log_path(self) -> Path:
        return self.cfg.workdir / f"gunicorn-{self.port}.log"

    def log_tail(self) -> str:
        try:
            return self.log_path().read_text(errors="replace")[-3000:]
        except OSError:
            return ""

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
                self.log_errors.append(message)
            elif level == "" and "Traceback" in line:
                self.log_errors.append(line)

    def debris(self) -> dict[str, list[str]]:
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
            self.count(f"debris_{area}", len(names))
            if area == "tmp":
                for name in names:
                    os.utime(
                        self.cfg.data_dir / area / name,
                        (old, old),
                        follow_symlinks=False,
                    )

    # -- checks after a restart ---------------------------------------------------

    def check_after_restart(self) -> None:
        self.wait_swept()
        self.resolve_unknowns()
        self.adopt_orphans()
        self.check_open_uploads()
        shown = self.check_keys()
        self.check_listing(shown)
        self.judge_observations()
        self.compact()

    def wait_swept(self, timeout: float = 20.0) -> None:
        """Poll until the start-up sweep emptied tmp/, staging/ and trash/."""
        deadline = time.monotonic() + timeout
        while True:
            left = {area: names for area, names in self.debris().items() if names}
            if not left:
                return
            if time.monotonic() > deadline:
                self.violation(
                    "leftover temp files after restart",
                    f"{timeout:.0f} s after the restart: {left}",
                )
                return
            time.sleep(0.02)  # a bounded poll of the server's effect

    def must_call(self, method: str, target: str) -> Reply:
        """A check's request: the server is up and idle, so it must answer."""
        for _ in range(3):
            reply = self.call(method, target)
            if reply.outcome == OK:
                return reply
        server = self.server
        if server is not None and server.process.poll() is not None:
            self.master_died()
        state = (
            "no server"
            if server is None
            else (
                f"master {server.process.pid} returncode {server.process.poll()}, "
                f"workers {server.worker_pids()}, listening: {_listening(self.port)}"
            )
        )
        raise HarnessError(
            f"{method} {target} got no answer: {reply.error}; {state}\n"
            f"{self.log_tail()}"
        )

    def resolve_unknowns(self) -> None:
        """Completes and aborts cut by a kill: did they happen?"""
        items, self.to_resolve = self.to_resolve, []
        for job, write in items:
            assert job.upload_id is not None
            reply = self.must_call(
                "GET",
                self.target(job.key, action="mpu-listparts", uploadId=job.upload_id),
            )
            if reply.status == 200:
                self.check_parts(job, reply)
                if write is not None:
                    write.state = NOT_HAPPENED
                    self.count("resolved_rolled_back")
                    # Open again: hand it back to the clients to complete.
                    job.closed = False
                    self.open_jobs[job.upload_id] = job
                    self.resumable.append(job)
                else:
                    self.abort_now(job.key, job.upload_id)
            elif NO_SUCH_UPLOAD in reply.body.decode(errors="replace"):
                if write is not None:
                    write.state = HAPPENED
                    self.count("resolved_published")
            else:
                self.violation(
                    "unexpected refusals (4xx)",
                    f"listparts of {job.key} {job.upload_id}: {reply.status} "
                    f"{reply.body[:200]!r}",
                )

    def abort_now(self, key: str, upload_id: str) -> None:
        reply = self.must_call(
            "DELETE", self.target(key, action="mpu-abort", uploadId=upload_id)
        )
        if reply.status != 204:
            self.violation(
                "unexpected refusals (4xx)",
                f"abort {key} {upload_id}: {reply.status} {reply.body[:200]!r}",
            )

    def uploads_on_disk(self) -> set[str]:
        return set(os.listdir(self.cfg.data_dir / "uploads"))

    def adopt_orphans(self) -> None:
        """Uploads nobody knows: each must be a create cut by a kill (then abort it)."""
        for upload_id in sorted(self.uploads_on_disk() - set(self.open_jobs)):
            record_path = self.cfg.data_dir / "uploads" / upload_id / "upload.json"
            try:
                key = json.loads(record_path.read_text())["key"]
            except (OSError, ValueError, KeyError) as error:
                self.violation(
                    "leftover temp files after restart",
                    f"uploads/{upload_id} has no readable record: {error!r}",
                )
                continue
            if self.unknown_creates[key] > 0:
                self.unknown_creates[key] -= 1
                self.count("orphan_uploads")
                self.abort_now(key, upload_id)
            else:
                self.violation(
                    "leftover temp files after restart",
                    f"uploads/{upload_id} of {key!r}: no client created it",
                )
        # A cut create did whatever it did before its client saw the cut.
        self.unknown_creates.clear()
        self.check_uploads_dir("after the restart")

    def check_uploads_dir(self, when: str) -> None:
        on_disk, expected = self.uploads_on_disk(), set(self.open_jobs)
        for upload_id in sorted(expected - on_disk):
            job = self.open_jobs[upload_id]
            self.violation(
                "lost open uploads", f"{when}: upload {upload_id} of {job.key} is gone"
            )
        for upload_id in sorted(on_disk - expected):
            self.violation(
                "leftover temp files after restart",
                f"{when}: uploads/{upload_id} is no open upload",
            )

    def check_open_uploads(self) -> None:
        for job in list(self.open_jobs.values()):
            assert job.upload_id is not None
            reply = self.must_call(
                "GET",
                self.target(job.key, action="mpu-listparts", uploadId=job.upload_id),
            )
            self.count("checked_uploads")
            if reply.status == 200:
                self.check_parts(job, reply)
            else:
                self.violation(
                    "lost open uploads",
                    f"listparts of {job.key} {job.upload_id}: {reply.status} "
                    f"{reply.body[:200]!r}",
                )

    def check_parts(self, job: Job, reply: Reply) -> None:
        listed = {part["partNumber"]: part for part in json.loads(reply.body)["parts"]}
        where = f"upload {job.upload_id} of {job.key}"
        slots = {slot.number: slot for slot in job.slots}
        for number in sorted(set(listed) - set(slots)):
            self.violation(
                "lost acknowledged parts", f"{where}: part {number} was never sent"
            )
        for number, slot in slots.items():
            part = listed.get(number)
            if part is None:
                if slot.must_exist:
                    self.violation(
                        "lost acknowledged parts",
                        f"{where}: acknowledged part {number} is missing "
                        f"(expected one of {slot.acceptable})",
                    )
            elif slot.acceptable.get(part["etag"]) != part["size"]:
                self.violation(
                    "lost acknowledged parts",
                    f"{where}: part {number} is {part}, expected one of "
                    f"{slot.acceptable}",
                )

    def check_keys(self) -> dict[str, int | None]:
        """Every key shows a state it may be in, with that version's bytes.

        Returns what each key showed (a version's vid, None: absent).
        """
        shown: dict[str, int | None] = {}
        for key in self.keys:
            reply = self.must_call("GET", self.target(key, action="get"))
            self.count("checked_keys")
            seen = self.examine_read(key, reply, None, f"check GET {key}")
            if seen is None:
                continue  # torn (recorded) or refused (recorded)
            shown[key] = seen[1]
            if not self.may_see(key, seen[1], reply.start, reply.end):
                self.violation(
                    "lost acknowledged writes",
                    f"after restart {self.counts['restarts']}: {key} shows "
                    f"{seen[0]} {seen[1]}; recent writes: {self.explain(key)}",
                )
        return shown

    def check_listing(self, shown: dict[str, int | None]) -> None:
        """The listings show what GET shows and which uploads are open."""
        self.count("checked_listings")
        by_vid = {version.vid: version for version in self.versions.values()}
        expected = {
            key: (by_vid[vid].etag, by_vid[vid].size)
            for key, vid in shown.items()
            if vid is not None
        }
        objects = self.list_all("list", "objects")
        listed = {item["key"]: (item["etag"], item["size"]) for item in objects}
        unchecked = set(self.keys) - set(shown)  # a check GET failed: recorded
        for key in sorted(set(listed) | set(expected)):
            if key not in unchecked and listed.get(key) != expected.get(key):
                self.violation(
                    "listing out of step",
                    f"after restart {self.counts['restarts']}: {key} listed as "
                    f"{listed.get(key)}, GET shows {expected.get(key)}",
                )
        uploads = self.list_all("mpu-list", "uploads")
        listed_ids = sorted(item["uploadId"] for item in uploads)
        if listed_ids != sorted(self.open_jobs):
            self.violation(
                "listing out of step",
                f"after restart {self.counts['restarts']}: mpu-list shows "
                f"{listed_ids}, open are {sorted(self.open_jobs)}",
            )

    def list_all(self, action: str, field: str) -> list[dict[str, Any]]:
        """Every entry of a listing under crash/, page by page (bounded)."""
        found: list[dict[str, Any]] = []
        params = {"action": action, "prefix": "crash/", "limit": "7"}
        for _ in range(1000):
            reply = self.must_call("GET", f"/?{urlencode(params)}")
            if reply.status != 200:
                self.violation(
                    "listing out of step",
                    f"{action}: {reply.status} {reply.body[:200]!r}",
                )
                return found
            answer = json.loads(reply.body)
            found += answer[field]
            if not answer["truncated"]:
                return found
            params["cursor"] = answer["cursor"]
        raise HarnessError(f"{action}: the cursor never ended")

    def judge_observations(self) -> None:
        observations, self.observations = self.observations, []
        for seen in observations:
            if not self.may_see(seen.key, seen.vid, seen.start, seen.end):
                self.violation(
                    "stale reads",
                    f"{seen.what} saw {'absent' if seen.vid is None else seen.vid}; "
                    f"recent writes: {self.explain(seen.key)}",
                )

    def compact(self) -> None:
        """Forget writes no later read may see (nothing is in flight now)."""
        for key, writes in self.writes.items():
            definite = [w for w in writes if w.state in DEFINITE]
            self.writes[key] = [
                w
                for w in writes
                if w.state not in IMPOSSIBLE
                and not any(d.start > w.end for d in definite)
            ]

    # -- the end ------------------------------------------------------------------

    def final_sweep_check(self) -> None:
        """With gunicorn stopped, our own sweep (no grace) must leave nothing."""
        from mpuflask.storage import filesystem
        from mpuflask.storage import fssweep

        saved = fssweep.TEMP_GRACE_SECONDS
        fssweep.TEMP_GRACE_SECONDS = 0.0
        try:
            bucket = filesystem.FilesystemBucket(
                self.cfg.data_dir,
                min_part_size=self.cfg.min_part,
                max_part_size=MAX_PART_SIZE,
                upload_ttl=timedelta(days=7),
            )
            self.count("final_sweep_removed", bucket.sweep())
        finally:
            fssweep.TEMP_GRACE_SECONDS = saved
        left = {area: names for area, names in self.debris().items() if names}
        if left:
            self.violation(
                "leftover temp files after restart", f"after the final sweep: {left}"
            )
        self.check_uploads_dir("after the final sweep")
        indexed = sorted(
            entry.name.split(".", 1)[1]
            for entry in (self.cfg.data_dir / "owners").glob("*/*")
        )
        if indexed != sorted(self.uploads_on_disk()):
            self.violation(
                "owner index out of step",
                f"after the final sweep: indexed {indexed}, "
                f"open {sorted(self.uploads_on_disk())}",
            )

    def take_resumable(self) -> Job | None:
        with self.lock:
            return self.resumable.pop() if self.resumable else None


class Client:
    """One client thread: uploads, overwrites, deletes and reads, until stopped."""

    def __init__(self, harness: CrashHarness, index: int) -> None:
        self.h = harness
        self.rng = random.Random(f"mpuflask-crash:{harness.seed}:client:{index}")
        self.job: Job | None = None

    def run(self) -> None:
        errors = 0
        try:
            while self.h.gate.checkpoint():
                try:
                    self.step()
                except Exception:  # a harness bug: recorded, never silent
                    self.h.violation("harness errors", traceback.format_exc())
                    errors += 1
                    if errors >= 3:
                        break
        finally:
            self.h.gate.leave()

    def step(self) -> None:
        if self.job is not None and self.job.closed:
            self.job = None
        if self.job is None:
            self.job = self.h.take_resumable()
        key = self.rng.choice(self.h.keys)
        roll = self.rng.random()
        if roll < 0.55:
            if self.job is None:
                self.job = self.h.new_job(key, self.rng)
            self.advance(self.job)
        elif roll < 0.75:
            self.h.read(key, None)
        elif roll < 0.95:
            self.h.read(key, self.random_range())
        else:
            self.h.delete(key)
        if self.job is not None and self.job.closed:
            self.job = None  # before parking: a closed job may be reopened

    def advance(self, job: Job) -> None:
        """One step of an upload: create, send parts, replace one, complete/abort."""
        if job.upload_id is None:
            self.h.create(job)
            return
        pending = [slot for slot in job.slots if not slot.acked]
        if pending:
            self.h.upload_parts(job, pending)
            return
        roll = self.rng.random()
        if not job.replaced and roll < 0.25:
            # Send a part again with other bytes: the newer acknowledgement wins.
            job.replaced = True
            slot = self.rng.choice(job.slots)
            slot.spec = self.h.part_spec(
                job, slot.number, 1, slot.number == len(job.slots), self.rng
            )
            slot.acked = False
        elif roll < 0.32:
            self.h.abort(job)
        else:
            self.h.complete(job)

    def random_range(self) -> RangeSpec:
        """A range inside every version (each is longer than one minimum part)."""
        low = self.h.cfg.min_part
        first = self.rng.randrange(low)
        form = self.rng.random()
        if form < 0.5:
            return RangeSpec(first, first + self.rng.randint(0, 2 * low))
        if form < 0.75:
            return RangeSpec(first, None)
        return RangeSpec(None, self.rng.randint(1, 3 * low))


def run_harness(config: HarnessConfig) -> Report:
    """Run the harness once; the report says whether every invariant held."""
    return CrashHarness(config).run()
