"""The crash harness's checker: every answer and every restart, judged.

During the run, :meth:`Checker.examine_read` checks each GET's answer is one
whole version with its very bytes. After each restart (nothing in flight,
the clients parked), :meth:`Checker.check_after_restart` checks the start-up
sweep's work, resolves the writes a kill cut, lists every open upload's parts,
reads every key, and judges the reads made during the run against
:meth:`.model.Model.may_see`. At the end, :meth:`Checker.final_sweep_check` runs
the store's own sweep with gunicorn stopped. What each check means is in the
package docstring.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import timedelta

from .api import Api
from .api import target
from .driver import Driver
from .driver import HarnessError
from .model import HAPPENED
from .model import NO_SUCH_UPLOAD
from .model import NOT_HAPPENED
from .model import OK
from .model import Job
from .model import Model
from .model import RangeSpec
from .model import Reply
from .model import Version
from .report import Findings
from .report import HarnessConfig


class Checker:
    """Judges the server's answers and state against the model."""

    def __init__(
        self,
        config: HarnessConfig,
        model: Model,
        findings: Findings,
        api: Api,
        driver: Driver,
    ) -> None:
        self.cfg = config
        self.model = model
        self.findings = findings
        self.api = api
        self.driver = driver

    # -- a GET's answer -----------------------------------------------------------

    def examine_read(
        self, key: str, reply: Reply, wanted: RangeSpec | None, what: str
    ) -> tuple[str, int | None] | None:
        """Check a GET's answer; ("version"|"absent", vid) or None if it failed."""
        if reply.outcome != OK:
            self.findings.count("reads_failed")
            return None
        if reply.status == 404:
            self.findings.count("reads_absent")
            return ("absent", None)
        if reply.status >= 500:
            self.api.classify(reply, what)
            self.findings.count("reads_failed")
            return None
        if reply.status not in (200, 206):
            self.findings.violation(
                "unexpected refusals (4xx)",
                f"{what}: {reply.status} {reply.body[:200]!r}",
            )
            return None
        version = self.verify_body(key, reply, wanted, what)
        if version is None:
            return None
        self.findings.count("reads_verified")
        return ("version", version.vid)

    def verify_body(
        self, key: str, reply: Reply, wanted: RangeSpec | None, what: str
    ) -> Version | None:
        """The version a 200/206 answered with, or None (a torn read, recorded)."""
        etag = reply.headers.get("etag", "").removeprefix("W/").strip('"')
        with self.model.lock:
            version = self.model.versions.get(etag)
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
                elif body != version.content(self.model.seed)[first : last + 1]:
                    problem = f"bytes {first}-{last} are not version {version.vid}'s"
        if problem:
            self.findings.violation("torn reads", f"{what}: {problem}")
            return None
        return version

    # -- after a restart --------------------------------------------------------------

    def check_after_restart(self) -> None:
        """Everything, in order, while the clients are parked."""
        self.wait_swept()
        self.resolve_unknowns()
        self.adopt_orphans()
        self.check_open_uploads()
        self.check_keys()
        self.judge_observations()
        self.model.compact()

    def wait_swept(self, timeout: float = 20.0) -> None:
        """Poll until the start-up sweep emptied tmp/, staging/ and trash/."""
        deadline = time.monotonic() + timeout
        while True:
            left = {
                area: names for area, names in self.driver.debris().items() if names
            }
            if not left:
                return
            if time.monotonic() > deadline:
                self.findings.violation(
                    "leftover temp files after restart",
                    f"{timeout:.0f} s after the restart: {left}",
                )
                return
            time.sleep(0.02)  # a bounded poll of the server's effect

    def must_call(self, method: str, target: str) -> Reply:
        """A check's request: the server is up and idle, so it must answer."""
        for _ in range(3):
            reply = self.api.call(method, target)
            if reply.outcome == OK:
                return reply
        server = self.driver.server
        if server is not None and server.process.poll() is not None:
            self.driver.master_died()
        raise HarnessError(
            f"{method} {target} got no answer: {reply.error}; "
            f"{self.driver.describe()}\n{self.driver.log_tail()}"
        )

    def resolve_unknowns(self) -> None:
        """Completes and aborts cut by a kill: did they happen?"""
        items, self.model.to_resolve = self.model.to_resolve, []
        for job, write in items:
            assert job.upload_id is not None
            reply = self.must_call(
                "GET",
                target(job.key, action="mpu-listparts", uploadId=job.upload_id),
            )
            if reply.status == 200:
                self.check_parts(job, reply)
                if write is not None:
                    write.state = NOT_HAPPENED
                    self.findings.count("resolved_rolled_back")
                    # Open again: hand it back to the clients to complete.
                    job.closed = False
                    self.model.open_jobs[job.upload_id] = job
                    self.model.resumable.append(job)
                else:
                    self.abort_now(job.key, job.upload_id)
            elif NO_SUCH_UPLOAD in reply.body.decode(errors="replace"):
                if write is not None:
                    write.state = HAPPENED
                    self.findings.count("resolved_published")
            else:
                self.findings.violation(
                    "unexpected refusals (4xx)",
                    f"listparts of {job.key} {job.upload_id}: {reply.status} "
                    f"{reply.body[:200]!r}",
                )

    def abort_now(self, key: str, upload_id: str) -> None:
        reply = self.must_call(
            "DELETE", target(key, action="mpu-abort", uploadId=upload_id)
        )
        if reply.status != 204:
            self.findings.violation(
                "unexpected refusals (4xx)",
                f"abort {key} {upload_id}: {reply.status} {reply.body[:200]!r}",
            )

    def uploads_on_disk(self) -> set[str]:
        return set(os.listdir(self.cfg.data_dir / "uploads"))

    def adopt_orphans(self) -> None:
        """Uploads nobody knows: each must be a create cut by a kill (then abort it)."""
        for upload_id in sorted(self.uploads_on_disk() - set(self.model.open_jobs)):
            record_path = self.cfg.data_dir / "uploads" / upload_id / "upload.json"
            try:
                key = json.loads(record_path.read_text())["key"]
            except (OSError, ValueError, KeyError) as error:
                self.findings.violation(
                    "leftover temp files after restart",
                    f"uploads/{upload_id} has no readable record: {error!r}",
                )
                continue
            if self.model.unknown_creates[key] > 0:
                self.model.unknown_creates[key] -= 1
                self.findings.count("orphan_uploads")
                self.abort_now(key, upload_id)
            else:
                self.findings.violation(
                    "leftover temp files after restart",
                    f"uploads/{upload_id} of {key!r}: no client created it",
                )
        # A cut create did whatever it did before its client saw the cut.
        self.model.unknown_creates.clear()
        self.check_uploads_dir("after the restart")

    def check_uploads_dir(self, when: str) -> None:
        on_disk, expected = self.uploads_on_disk(), set(self.model.open_jobs)
        for upload_id in sorted(expected - on_disk):
            job = self.model.open_jobs[upload_id]
            self.findings.violation(
                "lost open uploads", f"{when}: upload {upload_id} of {job.key} is gone"
            )
        for upload_id in sorted(on_disk - expected):
            self.findings.violation(
                "leftover temp files after restart",
                f"{when}: uploads/{upload_id} is no open upload",
            )

    def check_open_uploads(self) -> None:
        for job in list(self.model.open_jobs.values()):
            assert job.upload_id is not None
            reply = self.must_call(
                "GET",
                target(job.key, action="mpu-listparts", uploadId=job.upload_id),
            )
            self.findings.count("checked_uploads")
            if reply.status == 200:
                self.check_parts(job, reply)
            else:
                self.findings.violation(
                    "lost open uploads",
                    f"listparts of {job.key} {job.upload_id}: {reply.status} "
                    f"{reply.body[:200]!r}",
                )

    def check_parts(self, job: Job, reply: Reply) -> None:
        listed = {part["partNumber"]: part for part in json.loads(reply.body)["parts"]}
        where = f"upload {job.upload_id} of {job.key}"
        slots = {slot.number: slot for slot in job.slots}
        for number in sorted(set(listed) - set(slots)):
            self.findings.violation(
                "lost acknowledged parts", f"{where}: part {number} was never sent"
            )
        for number, slot in slots.items():
            part = listed.get(number)
            if part is None:
                if slot.must_exist:
                    self.findings.violation(
                        "lost acknowledged parts",
                        f"{where}: acknowledged part {number} is missing "
                        f"(expected one of {slot.acceptable})",
                    )
            elif slot.acceptable.get(part["etag"]) != part["size"]:
                self.findings.violation(
                    "lost acknowledged parts",
                    f"{where}: part {number} is {part}, expected one of "
                    f"{slot.acceptable}",
                )

    def check_keys(self) -> None:
        """Every key shows a state it may be in, with that version's bytes."""
        for key in self.model.keys:
            reply = self.must_call("GET", target(key, action="get"))
            self.findings.count("checked_keys")
            seen = self.examine_read(key, reply, None, f"check GET {key}")
            if seen is None:
                continue  # torn (recorded) or refused (recorded)
            if not self.model.may_see(key, seen[1], reply.start, reply.end):
                self.findings.violation(
                    "lost acknowledged writes",
                    f"after restart {self.findings.counts['restarts']}: {key} shows "
                    f"{seen[0]} {seen[1]}; recent writes: {self.model.explain(key)}",
                )

    def judge_observations(self) -> None:
        observations, self.model.observations = self.model.observations, []
        for seen in observations:
            if not self.model.may_see(seen.key, seen.vid, seen.start, seen.end):
                self.findings.violation(
                    "stale reads",
                    f"{seen.what} saw {'absent' if seen.vid is None else seen.vid}; "
                    f"recent writes: {self.model.explain(seen.key)}",
                )

    # -- the end ----------------------------------------------------------------------

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
                upload_ttl=timedelta(days=7),
            )
            self.findings.count("final_sweep_removed", bucket.sweep())
        finally:
            fssweep.TEMP_GRACE_SECONDS = saved
        left = {area: names for area, names in self.driver.debris().items() if names}
        if left:
            self.findings.violation(
                "leftover temp files after restart", f"after the final sweep: {left}"
            )
        self.check_uploads_dir("after the final sweep")
        indexed = sorted(
            entry.name.split(".", 1)[1]
            for entry in (self.cfg.data_dir / "owners").glob("*/*")
        )
        if indexed != sorted(self.uploads_on_disk()):
            self.findings.violation(
                "owner index out of step",
                f"after the final sweep: indexed {indexed}, "
                f"open {sorted(self.uploads_on_disk())}",
            )
