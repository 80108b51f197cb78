"""The crash harness, short form: SIGKILLed workers and masters lose and tear nothing.

The harness (``tests/crash_harness.py``, which explains every check) runs real
gunicorn with three workers, six clients uploading, overwriting, deleting and
reading four shared keys, and kills a worker or the master after a seeded
number of acknowledged requests (no sleeps: progress decides). The long form
is ``bench/crash_harness.py`` (200+ kills).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .crash_harness import INVARIANTS
from .crash_harness import HarnessConfig
from .crash_harness import run_harness

pytestmark = pytest.mark.e2e


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
