"""The events crash harness, short form: SIGKILLs lose no event.

gunicorn (three workers) with the webhook on, a receiver that fails, stalls
and restarts, client threads publishing, overwriting, aborting and deleting,
and a SIGKILL of a worker or of the master with its workers after every few
acknowledged requests. ``tests/events_harness.py`` explains every check; the
long form is ``bench/events_crash.py`` (100+ kills).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .events_harness import INVARIANTS
from .events_harness import EventsHarnessConfig
from .events_harness import run_events_harness


@pytest.mark.e2e
def test_kills_lose_no_event_and_duplicates_keep_their_id(tmp_path: Path) -> None:
    config = EventsHarnessConfig(
        workdir=tmp_path,
        seed=3,
        kills=9,
        master_every=3,
        workers=3,
        threads=4,
        clients=4,
        progress=(3, 10),
        duration=30.0,
        delivery_wait=45.0,
    )
    report = run_events_harness(config)
    text = report.format(details=10)
    print(text)  # the figures, shown with -s or on failure
    for name in INVARIANTS:
        assert report.violation_count(name) == 0, f"{name}\n{text}"
    counts = report.counts
    # The run really crashed things and really checked events.
    assert counts["kills_master"] >= 2 and counts["kills_worker"] >= 4, text
    assert counts["restarts"] == counts["kills_master"], text
    assert counts["receiver_restarts"] >= 2, text
    assert counts["expected_published"] > 0 and counts["expected_aborted"] > 0, text
    assert counts["ack_delete"] > 0 and counts["keys_checked"] > 0, text
    assert counts["answered_500"] > 0, text
