"""The crash harness's clients: threads that upload, overwrite, delete and read.

Each :class:`Client` loops over: start an upload of one of a few shared keys
(``mpu-create``), send its 2-4 parts in parallel, sometimes send a part again
with other bytes, then complete it (a new version of the key: an overwrite) or
abort it; delete a key; read a key whole or a range of it. The requests, each
recorded in the model, are ``workload.py``'s :class:`Workload`, whose gate
parks the clients between two steps while the server is down.
"""

from __future__ import annotations

import random
import traceback

from .model import Job
from .model import RangeSpec
from .workload import Workload


class Client:
    """One client thread: uploads, overwrites, deletes and reads, until stopped."""

    def __init__(self, workload: Workload, index: int) -> None:
        self.w = workload
        self.rng = random.Random(f"mpuflask-crash:{workload.model.seed}:client:{index}")
        self.job: Job | None = None

    def run(self) -> None:
        errors = 0
        try:
            while self.w.gate.checkpoint():
                try:
                    self.step()
                except Exception:  # a harness bug: recorded, never silent
                    self.w.findings.violation("harness errors", traceback.format_exc())
                    errors += 1
                    if errors >= 3:
                        break
        finally:
            self.w.gate.leave()

    def step(self) -> None:
        if self.job is not None and self.job.closed:
            self.job = None
        if self.job is None:
            self.job = self.w.model.take_resumable()
        key = self.rng.choice(self.w.model.keys)
        roll = self.rng.random()
        if roll < 0.55:
            if self.job is None:
                self.job = self.w.new_job(key, self.rng)
            self.advance(self.job)
        elif roll < 0.75:
            self.w.read(key, None)
        elif roll < 0.95:
            self.w.read(key, self.random_range())
        else:
            self.w.delete(key)
        if self.job is not None and self.job.closed:
            self.job = None  # before parking: a closed job may be reopened

    def advance(self, job: Job) -> None:
        """One step of an upload: create, send parts, replace one, complete/abort."""
        if job.upload_id is None:
            self.w.create(job)
            return
        pending = [slot for slot in job.slots if not slot.acked]
        if pending:
            self.w.upload_parts(job, pending)
            return
        roll = self.rng.random()
        if not job.replaced and roll < 0.25:
            # Send a part again with other bytes: the newer acknowledgement wins.
            job.replaced = True
            slot = self.rng.choice(job.slots)
            slot.spec = self.w.part_spec(
                job, slot.number, 1, slot.number == len(job.slots), self.rng
            )
            slot.acked = False
        elif roll < 0.32:
            self.w.abort(job)
        else:
            self.w.complete(job)

    def random_range(self) -> RangeSpec:
        """A range inside every version (each is longer than one minimum part)."""
        low = self.w.cfg.min_part
        first = self.rng.randrange(low)
        form = self.rng.random()
        if form < 0.5:
            return RangeSpec(first, first + self.rng.randint(0, 2 * low))
        if form < 0.75:
            return RangeSpec(first, None)
        return RangeSpec(None, self.rng.randint(1, 3 * low))
