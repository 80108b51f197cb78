"""The crash harness's requests: :class:`Workload` makes each request the
clients (``clients.py``) ask for and records in the model what it asked for
and how it ended; :class:`Gate` parks the clients between two steps while the
server is down.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .api import Api
from .api import target
from .checker import Checker
from .model import ACKED
from .model import FAILED
from .model import NO_SUCH_UPLOAD
from .model import UNKNOWN
from .model import Job
from .model import Model
from .model import Observation
from .model import PartSpec
from .model import RangeSpec
from .model import Slot
from .model import Write
from .report import Findings
from .report import HarnessConfig


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


class Workload:
    """The clients' requests, each recorded in the model as it ends."""

    def __init__(
        self,
        config: HarnessConfig,
        model: Model,
        findings: Findings,
        api: Api,
        checker: Checker,
    ) -> None:
        self.cfg = config
        self.model = model
        self.findings = findings
        self.api = api
        self.checker = checker
        self.gate = Gate(config.clients)
        self.pool = ThreadPoolExecutor(
            max_workers=config.clients * 4, thread_name_prefix="crash-part"
        )

    def new_job(self, key: str, rng: random.Random) -> Job:
        jid = self.model.new_id()
        count = rng.randint(2, 4)
        size = rng.randint(self.cfg.min_part, 2 * self.cfg.min_part)
        job = Job(jid, key, f"application/x-crash-{self.model.seed}-{jid}", size, [])
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
        reply = self.api.call(
            "POST",
            target(job.key, action="mpu-create"),
            headers={"Content-Type": job.content_type},
        )
        kind = self.api.classify(reply, f"create {job.key}")
        if kind == "ack":
            answer = json.loads(reply.body)
            if answer.get("key") != job.key or not answer.get("uploadId"):
                self.findings.violation(
                    "wrong acknowledgements", f"create answered {answer}"
                )
                job.closed = True
                return
            job.upload_id = answer["uploadId"]
            with self.model.lock:
                self.model.open_jobs[answer["uploadId"]] = job
            self.findings.acknowledged("ack_create")
        elif kind == "unknown":
            with self.model.lock:
                self.model.unknown_creates[job.key] += 1
            self.findings.count("unknown_create")
        elif kind == "refused":
            self.findings.violation(
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
        etag = spec.md5(self.model.seed)
        assert job.upload_id is not None
        reply = self.api.call(
            "PUT",
            target(
                job.key,
                action="mpu-uploadpart",
                uploadId=job.upload_id,
                partNumber=str(slot.number),
            ),
            spec.data(self.model.seed),
        )
        what = f"part {slot.number} of {job.key} upload {job.upload_id}"
        kind = self.api.classify(reply, what)
        if kind == "ack":
            answer = json.loads(reply.body)
            if answer != {"partNumber": slot.number, "etag": etag}:
                self.findings.violation(
                    "wrong acknowledgements", f"{what}: {answer}, expected {etag}"
                )
            with self.model.lock:
                slot.acked = True
                slot.must_exist = True
                slot.acceptable = {etag: spec.size}
            self.findings.acknowledged("ack_part")
        elif kind == "unknown":
            with self.model.lock:
                slot.acceptable[etag] = spec.size
            self.findings.count("unknown_part")
        elif kind == "refused":
            name = (
                "lost open uploads"
                if NO_SUCH_UPLOAD in reply.body.decode(errors="replace")
                else "unexpected refusals (4xx)"
            )
            self.findings.violation(
                name, f"{what}: {reply.status} {reply.body[:200]!r}"
            )
            self.drop(job)

    def drop(self, job: Job) -> None:
        """Give up on an upload after a refusal; the coordinator aborts it."""
        with self.model.lock:
            if job.closed:
                return
            job.closed = True
            assert job.upload_id is not None
            self.model.open_jobs.pop(job.upload_id, None)
            self.model.to_resolve.append((job, None))

    def complete(self, job: Job) -> None:
        assert job.upload_id is not None
        version = self.model.version_of(job)
        body = json.dumps(
            {
                "parts": [
                    {"partNumber": slot.number, "etag": slot.spec.md5(self.model.seed)}
                    for slot in job.slots
                ]
            }
        ).encode()
        what = f"complete {job.key} upload {job.upload_id} (version {version.vid})"
        write = Write(version.vid, time.monotonic(), what=what)
        with self.model.lock:
            self.model.writes[job.key].append(write)
        reply = self.api.call(
            "POST",
            target(job.key, action="mpu-complete", uploadId=job.upload_id),
            body,
            {"Content-Type": "application/json"},
        )
        kind = self.api.classify(reply, what)
        with self.model.lock:
            write.end = reply.end
            if kind == "ack":
                write.state = ACKED
                job.closed = True
                self.model.open_jobs.pop(job.upload_id, None)
            elif kind == "unknown":
                write.state = UNKNOWN
                job.closed = True
                self.model.open_jobs.pop(job.upload_id, None)
                self.model.to_resolve.append((job, write))
            else:
                write.state = FAILED
        if kind == "ack":
            if reply.headers.get("etag") != f'"{version.etag}"':
                self.findings.violation(
                    "wrong acknowledgements",
                    f"{what}: etag {reply.headers.get('etag')}, expected {version.etag}",
                )
            self.findings.acknowledged("ack_complete")
        elif kind == "unknown":
            self.findings.count("unknown_complete")
        elif kind == "refused":
            text = reply.body.decode(errors="replace")
            name = "unexpected refusals (4xx)"
            if NO_SUCH_UPLOAD in text:
                name = "lost open uploads"
            elif "(10025)" in text:
                name = "lost acknowledged parts"
            self.findings.violation(name, f"{what}: {reply.status} {text[:200]!r}")
            self.drop(job)

    def abort(self, job: Job) -> None:
        assert job.upload_id is not None
        reply = self.api.call(
            "DELETE",
            target(job.key, action="mpu-abort", uploadId=job.upload_id),
        )
        what = f"abort {job.key} upload {job.upload_id}"
        kind = self.api.classify(reply, what)
        if kind == "ack":
            with self.model.lock:
                job.closed = True
                self.model.open_jobs.pop(job.upload_id, None)
            self.findings.acknowledged("ack_abort")
        elif kind == "unknown":
            with self.model.lock:
                job.closed = True
                self.model.open_jobs.pop(job.upload_id, None)
                self.model.to_resolve.append((job, None))
            self.findings.count("unknown_abort")
        elif kind == "refused":
            self.findings.violation(
                "unexpected refusals (4xx)",
                f"{what}: {reply.status} {reply.body[:200]!r}",
            )
            self.drop(job)

    def delete(self, key: str) -> None:
        write = Write(None, time.monotonic(), what=f"delete {key}")
        with self.model.lock:
            self.model.writes[key].append(write)
        reply = self.api.call("DELETE", target(key, action="delete"))
        kind = self.api.classify(reply, f"delete {key}")
        with self.model.lock:
            write.end = reply.end
            write.state = {"ack": ACKED, "unknown": UNKNOWN}.get(kind, FAILED)
        if kind == "ack":
            self.findings.acknowledged("ack_delete")
        elif kind == "unknown":
            self.findings.count("unknown_delete")
        elif kind == "refused":
            self.findings.violation(
                "unexpected refusals (4xx)",
                f"delete {key}: {reply.status} {reply.body[:200]!r}",
            )

    def read(self, key: str, wanted: RangeSpec | None) -> None:
        """A GET during the run: verified now, its timing checked at the restart."""
        self.findings.count("reads_range" if wanted else "reads_full")
        headers = {"Range": wanted.header} if wanted else {}
        what = f"GET {key}" + (f" {wanted.header}" if wanted else "")
        reply = self.api.call("GET", target(key, action="get"), headers=headers)
        seen = self.checker.examine_read(key, reply, wanted, what)
        if seen is None:
            return
        with self.model.lock:
            self.model.observations.append(
                Observation(key, seen[1], reply.start, reply.end, what)
            )
        self.findings.acknowledged("reads_ok")
