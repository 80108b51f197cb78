"""The crash harness, short form: SIGKILLed workers and masters lose and tear nothing.

The harness (``tests/crash/``, whose docstring explains every check) runs real
gunicorn with three workers, six clients uploading, overwriting, deleting and
reading four shared keys, and kills a worker or the master after a seeded
number of acknowledged requests (no sleeps: progress decides). The long form
is ``bench/crash_harness.py`` (200+ kills).

Below it, two races the long form found, replayed deterministically in one
process: two clean-ups of the same leftover (the start-up sweep of a booting
worker, the periodic sweep, or a request's own clean-up) where the loser
stumbles on what the winner already removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mpuflask.rules import PartRef
from mpuflask.storage import diskio
from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.filesystem import FilesystemBucket

from .crash.driver import Driver
from .crash.harness import run_harness
from .crash.report import INVARIANTS
from .crash.report import Findings
from .crash.report import HarnessConfig


@pytest.mark.e2e
def test_kills_lose_and_tear_nothing(tmp_path: Path) -> None:
    config = HarnessConfig(
        workdir=tmp_path,
        seed=6,
        kills=12,
        master_every=3,
        workers=3,
        threads=4,
        clients=6,
        keys=4,
        progress=(4, 16),
        duration=40.0,
    )
    report = run_harness(config)
    text = report.format(details=10)
    print(text)  # the figures, shown with -s or on failure
    for name in INVARIANTS:
        assert report.violation_count(name) == 0, f"{name}\n{text}"
    counts = report.counts
    # The run really crashed things and really checked them.
    assert counts["kills_master"] >= 3, text
    assert counts["kills_worker"] >= 6, text
    assert counts["restarts"] == counts["kills_master"], text
    assert counts["ack_complete"] > 0 and counts["ack_delete"] > 0, text
    assert counts["reads_verified"] > 0 and counts["checked_keys"] > 0, text


def test_a_worker_that_failed_to_boot_is_reported_with_its_traceback(
    tmp_path: Path,
) -> None:
    """gunicorn logs the traceback as the record's exc_info: the report shows it."""
    config = HarnessConfig(workdir=tmp_path)
    findings = Findings()
    driver = Driver(config, 8000, findings)
    trace = 'Traceback (most recent call last):\n  File "x.py"\nOSError: stale'
    records = [
        {"level": "INFO", "logger": "gunicorn.error", "message": "Booting worker"},
        {
            "level": "ERROR",
            "logger": "gunicorn.error",
            "message": "Exception in worker process",
            "exc_info": trace,
        },
        {"level": "ERROR", "logger": "gunicorn.error", "message": "was sent SIGKILL"},
    ]
    driver.log_path().write_text("".join(json.dumps(r) + "\n" for r in records))
    assert "OSError: stale" in driver.log_tail()
    driver.collect_log()
    assert findings.log_errors == [f"Exception in worker process\n{trace}"]
    text = findings.report(config, 1.0).format()
    assert "  Exception in worker process\n    Traceback" in text
    assert "\n    OSError: stale\n" in text


# -- races found by the long form ---------------------------------------------------


def _bucket(root: Path) -> FilesystemBucket:
    """The store as one gunicorn worker opens it (another instance: another worker)."""
    return FilesystemBucket(root, min_part_size=1, upload_ttl=timedelta(days=7))


def _publish(bucket: FilesystemBucket, key: str) -> None:
    upload = bucket.create_multipart_upload(key, HttpMetadata({}))
    handle = bucket.resume_multipart_upload(key, upload.upload_id)
    part = handle.upload_part(1, [b"some bytes"])
    handle.complete([PartRef(1, part.etag)])


def _interleave(
    monkeypatch: pytest.MonkeyPatch, other: Callable[[], object]
) -> list[object]:
    """Run ``other`` (a second worker) just before the first try_lock completes.

    That is the window of the race: this process has opened the file or
    directory, the other cleans the same leftover whole, then our lock succeeds
    on what is gone.
    """
    real = diskio.try_lock
    ran: list[object] = []

    def try_lock(fd: int, shared: bool = False) -> bool:
        if not ran:
            ran.append(None)
            ran.append(other())
        return real(fd, shared)

    monkeypatch.setattr(diskio, "try_lock", try_lock)
    return ran


def test_delete_racing_a_sweep_of_its_trash_entry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, other_worker = _bucket(tmp_path), _bucket(tmp_path)
    _publish(bucket, "k")
    ran = _interleave(monkeypatch, other_worker.sweep)
    bucket.delete("k")  # raised FileNotFoundError before the fix
    assert ran and ran[1] == 1  # the other worker's sweep reclaimed the entry
    assert bucket.get("k") is None
    assert os.listdir(tmp_path / "trash") == []


def test_two_start_up_sweeps_roll_back_a_crashed_complete_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, other_worker = _bucket(tmp_path), _bucket(tmp_path)
    upload = bucket.create_multipart_upload("k", HttpMetadata({}))
    bucket.resume_multipart_upload("k", upload.upload_id).upload_part(1, [b"x"])
    # What a complete killed between its rename to staging/ and its publish leaves.
    upload_dir = tmp_path / "uploads" / upload.upload_id
    (upload_dir / "object.json").write_text(json.dumps({"upload_id": upload.upload_id}))
    os.rename(upload_dir, tmp_path / "staging" / upload.upload_id)

    ran = _interleave(monkeypatch, other_worker.sweep)
    bucket.sweep()  # raised FileNotFoundError before the fix
    assert ran and ran[1] == 1  # the other worker rolled it back
    assert os.listdir(tmp_path / "staging") == []
    assert os.listdir(tmp_path / "uploads") == [upload.upload_id]
