"""The events crash harness's settings, bookkeeping and report (see ``tests/events_harness.py``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: What must never happen; each is a count of 0 in a passing run.
INVARIANTS = (
    "lost events",
    "false events",
    "duplicates with another id or body",
    "bad signatures",
    "server errors (5xx)",
    "events left pending",
    "harness errors",
)


@dataclass
class EventsHarnessConfig:
    workdir: Path
    seed: int = 1
    kills: int = 10
    #: Every this-many-th kill is the master's (with all its workers).
    master_every: int = 3
    workers: int = 3
    threads: int = 4
    clients: int = 4
    keys_per_client: int = 2
    #: Acknowledged requests between two kills: a seeded count in this range.
    progress: tuple[int, int] = (3, 12)
    #: The receiver: odds of a 500, of a stall past the webhook's timeout.
    fail_rate: float = 0.2
    stall_rate: float = 0.05
    #: The receiver restarts at every this-many-th kill.
    receiver_restart_every: int = 4
    webhook_timeout: float = 0.5
    retry_max: float = 2.0
    #: Time budget for the kills, seconds.
    duration: float = 600.0
    #: How long the last server gets to deliver everything.
    delivery_wait: float = 90.0
    request_timeout: float = 20.0


@dataclass
class Upload:
    key: str
    upload_id: str
    etag: str = ""
    #: "published", "not published", "unknown", or "" (no complete tried).
    complete: str = ""
    #: An abort was tried (acknowledged or cut).
    abort: bool = False


@dataclass
class Report:
    config: EventsHarnessConfig
    counts: Counter[str]
    violations: dict[str, list[str]]
    elapsed: float

    def violation_count(self, name: str) -> int:
        return len(self.violations.get(name, []))

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def format(self, details: int = 5) -> str:
        c, cfg = self.counts, self.config
        lines = [
            f"events crash harness: seed {cfg.seed}, gunicorn {cfg.workers} workers x "
            f"{cfg.threads} threads, {cfg.clients} clients x {cfg.keys_per_client} "
            f"keys, receiver failing {cfg.fail_rate:.0%}, stalling "
            f"{cfg.stall_rate:.0%}, restarted every {cfg.receiver_restart_every} kills",
            f"kills: {c['kills_worker'] + c['kills_master']} (workers "
            f"{c['kills_worker']}, master {c['kills_master']}); server restarts "
            f"{c['restarts']}; receiver restarts {c['receiver_restarts']}",
            f"acknowledged: completes {c['ack_complete']}, aborts {c['ack_abort']}, "
            f"deletes {c['ack_delete']}; cut by kills: completes "
            f"{c['cut_complete']} (published {c['resolved_published']}, not "
            f"{c['resolved_not_published']}), aborts {c['cut_abort']}, deletes "
            f"{c['cut_delete']}",
            f"expected events: published {c['expected_published']}, aborted "
            f"{c['expected_aborted']}, key histories checked {c['keys_checked']}",
            f"receiver: {c['deliveries']} deliveries, {c['accepted']} accepted "
            f"({c['distinct_events']} distinct events, {c['duplicates']} "
            f"duplicates), {c['answered_500']} answered 500, {c['stalled']} stalled, "
            f"{c['cut_short']} cut short by kills",
            f"elapsed {self.elapsed:.1f} s",
        ]
        for name in INVARIANTS:
            found = self.violations.get(name, [])
            lines.append(f"{name}: {len(found)}")
            lines.extend(f"    {detail}" for detail in found[:details])
        return "\n".join(lines)
