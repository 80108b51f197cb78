"""The crash harness's configuration, its findings and its report.

:class:`Findings` is what a run found, filled from every thread (clients,
checks, the process driver): counts, violations of :data:`INVARIANTS` with
their details, and the server's log errors. :class:`Report` is its end state,
formatted the same way for ``tests/test_crash.py`` and ``bench/crash_harness.py``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

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
    "server errors (5xx)",
    "unexpected refusals (4xx)",
    "server exits",
    "harness errors",
)


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
            f"{c['checked_uploads']} open uploads listed",
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
            for entry in self.log_errors[:details]:
                first, *trace = entry.splitlines()
                lines.append(f"  {first[:300]}")
                lines.extend(f"    {line}" for line in trace)
        lines.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(lines)


class Findings:
    """Counts, violations and log errors of a run; safe to fill from any thread.

    Acknowledged requests are also the run's clock: the coordinator waits on
    :attr:`progress` for a number of them between two kills.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.violations: dict[str, list[str]] = {}
        self.log_errors: list[str] = []
        self.progress = threading.Condition()
        self.acks = 0

    def violation(self, name: str, detail: str) -> None:
        assert name in INVARIANTS, name
        with self.lock:
            self.violations.setdefault(name, []).append(detail)

    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counts[name] += by

    def acknowledged(self, name: str) -> None:
        """Count an acknowledged request, and wake the coordinator."""
        self.count(name)
        with self.progress:
            self.acks += 1
            self.progress.notify_all()

    def report(self, config: HarnessConfig, elapsed: float) -> Report:
        return Report(config, self.counts, self.violations, self.log_errors, elapsed)
