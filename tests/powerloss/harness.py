"""The power-loss harness: gunicorn on the lazy disk, clients, power cuts, checks.

Used by ``tests/test_power.py`` (a short run in the suite) and by
``bench/power_harness.py`` (the long run: hundreds of cuts, figures printed).

It is the crash harness (``tests/crash/``: its clients, its record of every
request and answer, its checks after each restart) with a different crash. The data directory is on a lazy disk (``lazyfs``, mounted by
``fusefs.LazyMount``); every crash is a power cut:

1. after a seeded number of acknowledged requests (and a random delay), the
   master and every worker are SIGKILLed at once, whatever they are doing;
2. the disk drops everything that was not fsynced (or, in a seeded share of
   the cuts, keeps a random part of it, as a disk whose cache was partly
   written back: see ``lazyfs``) and is remounted;
3. gunicorn restarts on it (its start-up sweep runs) and the checks run:
   every part answered 200 is listed with its etag and size, every key reads
   back whole as its last acknowledged write left it (or as a write cut by the
   power), nothing is torn, no upload is half-published or lost, and ``tmp/``,
   ``staging/`` and ``trash/`` are emptied by the start-up sweep.

What a power cut adds to a SIGKILL: a write in flight can be seen and then
undone. A complete publishes (a rename) before it fsyncs the directories and
answers, so a GET may read the new version; if the power goes before the
answer, the disk may forget the rename and the upload is open again. The
client never got an acknowledgement, so nothing promised was lost; such reads
are counted ("reads of a write the cut undid"), and only reads no write could
explain are stale.

With ``durable=False`` (``MPUFLASK_DURABLE=false``) the store fsyncs nothing,
and the same checks find what a power cut loses.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from mpuflask.storage.filesystem import UPLOAD_RECORD
from mpuflask.storage.fsobject import MANIFEST
from tests.crash.checker import Checker
from tests.crash.harness import CrashHarness
from tests.crash.model import NOT_HAPPENED
from tests.crash.model import UNKNOWN
from tests.crash.model import Job
from tests.crash.model import Reply
from tests.crash.report import HarnessConfig
from tests.crash.report import Report

from .fusefs import LazyMount

PART_LINK = re.compile(r"[0-9]{5}")

#: Figures of each cut (``LazyDisk.cut``), summed over the run.
CUT_FIGURES = (
    "dropped_changes",
    "written_back_changes",
    "unsynced_files",
    "files_undone",
    "files_torn",
    "files_written_back",
    "bytes_undone",
)


@dataclass
class PowerConfig(HarnessConfig):
    """A crash harness run whose every crash is a power cut."""

    #: MPUFLASK_DURABLE for the server.
    durable: bool = True
    #: Share of the cuts after which a random part of the unsynced state is kept.
    writeback: float = 0.5
    #: Every crash kills the master and all workers: the power is cut.
    master_every: int = 1

    @property
    def data_dir(self) -> Path:
        return self.workdir / "mnt" / "data"


@dataclass
class PowerReport(Report):
    """The crash harness's report, with the power cuts' own figures first."""

    def format(self, details: int = 5) -> str:
        c, cfg = self.counts, self.config
        durable = getattr(cfg, "durable", True)
        cuts = c["cuts_drop"] + c["cuts_writeback"]
        lines = [
            f"power harness: seed {cfg.seed}, gunicorn {cfg.workers} workers x "
            f"{cfg.threads} threads, {cfg.clients} clients on {cfg.keys} keys, "
            f"parts >= {cfg.min_part} bytes, "
            + ("durable" if durable else "NOT durable (MPUFLASK_DURABLE=false)"),
            f"power cuts: {cuts} (all unsynced state dropped: {c['cuts_drop']}; "
            f"part of it written back: {c['cuts_writeback']})",
            f"unsynced at the cuts: {c['cut_dropped_changes']} changes of names "
            f"dropped ({c['cut_written_back_changes']} others written back), "
            f"{c['cut_unsynced_files']} files with unsynced bytes: "
            f"{c['cut_files_undone']} undone ({c['cut_files_torn']} of them torn "
            f"by block, {c['cut_bytes_undone']} bytes), "
            f"{c['cut_files_written_back']} kept",
            f"checked after the cuts: {c['checked_parts']} acknowledged parts "
            f"listed with their etag and size, {c['checked_objects']} keys read "
            f"back whole as a version ({c['checked_absent']} absent as their last "
            f"write left them), {c['checked_uploads']} open uploads listed",
            f"reads of a write the cut undid (in flight, never acknowledged): "
            f"{c['reads_of_undone_writes']}",
            f"links of parts a complete left out, back in published objects after "
            f"the cuts (removed without an fsync; harmless, gone with the object): "
            f"{c['litter_links']} (counted at each restart)",
            f"losses: acknowledged parts {self.violation_count('lost acknowledged parts')}, "
            f"acknowledged writes {self.violation_count('lost acknowledged writes')}, "
            f"open uploads {self.violation_count('lost open uploads')}",
        ]
        crash = super().format(details).splitlines()[1:]  # without its title
        return "\n".join(lines + crash)


class PowerChecker(Checker):
    """The crash harness's checks, with a power cut's own allowances and figures."""

    def check_after_restart(self) -> None:
        super().check_after_restart()
        self.count_litter()

    def check_parts(self, job: Job, reply: Reply) -> None:
        super().check_parts(job, reply)
        self.findings.count("checked_parts", sum(slot.must_exist for slot in job.slots))

    def check_keys(self) -> dict[str, int | None]:
        counts = self.findings.counts
        verified, absent = counts["reads_verified"], counts["reads_absent"]
        shown = super().check_keys()  # nothing else runs now: the deltas are its reads
        self.findings.count("checked_objects", counts["reads_verified"] - verified)
        self.findings.count("checked_absent", counts["reads_absent"] - absent)
        return shown

    def judge_observations(self) -> None:
        """Reads during the run; one may have seen a write the cut then undid."""
        model = self.model
        observations, model.observations = model.observations, []
        for seen in observations:
            if model.may_see(seen.key, seen.vid, seen.start, seen.end):
                continue
            if self.may_have_seen_before_the_cut(
                seen.key, seen.vid, seen.start, seen.end
            ):
                self.findings.count("reads_of_undone_writes")
                continue
            self.findings.violation(
                "stale reads",
                f"{seen.what} saw {'absent' if seen.vid is None else seen.vid}; "
                f"recent writes: {model.explain(seen.key)}",
            )

    def may_have_seen_before_the_cut(
        self, key: str, vid: int | None, start: float, end: float
    ) -> bool:
        """``may_see``, where a write cut by the power and undone may have shown."""
        undone = [w for w in self.model.writes[key] if w.state == NOT_HAPPENED]
        for write in undone:
            write.state = UNKNOWN
        try:
            return self.model.may_see(key, vid, start, end)
        finally:
            for write in undone:
                write.state = NOT_HAPPENED

    def count_litter(self) -> None:
        """What a complete deleted from its object's directory and a cut brought back.

        The links of the parts it left out may come back (a few bytes each,
        gone with the object); their bytes must not (the complete fsyncs their
        deletion). The links of the parts it kept stay, by design.
        """
        for fan in os.scandir(self.cfg.data_dir / "objects"):
            for version in os.scandir(fan.path):
                try:
                    manifest = json.loads((Path(version.path) / MANIFEST).read_text())
                except FileNotFoundError:
                    continue  # reclaimed meanwhile
                keep = {MANIFEST, UPLOAD_RECORD}
                keep.update(part["file"] for part in manifest["parts"])
                keep.update(part["file"][:5] for part in manifest["parts"])
                extra = set(os.listdir(version.path)) - keep
                links = {name for name in extra if PART_LINK.fullmatch(name)}
                self.findings.count("litter_links", len(links))
                if extra - links:
                    self.findings.violation(
                        "leftover temp files after restart",
                        f"object {manifest['key']} {manifest['upload_id']} keeps "
                        f"{sorted(extra - links)}",
                    )


class PowerHarness(CrashHarness):
    """Runs one :class:`PowerConfig`; :meth:`run` returns a :class:`PowerReport`."""

    cfg: PowerConfig
    checker_class = PowerChecker

    def __init__(self, config: PowerConfig) -> None:
        super().__init__(config)
        self.driver.env["MPUFLASK_DURABLE"] = "true" if config.durable else "false"
        self.cut_rng = random.Random(f"mpuflask-power:{config.seed}:cuts")
        self.mount = LazyMount(config.workdir / "store", config.workdir / "mnt")

    def run(self) -> PowerReport:
        with self.mount:
            report = super().run()
        return PowerReport(
            report.config,
            report.counts,
            report.violations,
            report.log_errors,
            report.elapsed,
        )

    def while_down(self) -> None:
        """Cut the power, come back on what the disk kept, then as after a crash."""
        seed = None
        if self.cut_rng.random() < self.cfg.writeback:
            seed = self.cut_rng.getrandbits(32)
        stats = self.mount.cut(seed)
        self.findings.count("cuts_drop" if seed is None else "cuts_writeback")
        for name in CUT_FIGURES:
            self.findings.count(f"cut_{name}", stats.get(name, 0))
        self.mount.remount()
        super().while_down()


def run_power_harness(config: PowerConfig) -> PowerReport:
    """Run the harness once; the report says whether every invariant held."""
    return PowerHarness(config).run()
