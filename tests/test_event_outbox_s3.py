"""The outbox's rules on the S3 store, one crash at a time (see test_event_outbox.py)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mpuflask.events.model import upload_event_id

from .outbox_support import KILLED
from .outbox_support import Store
from .outbox_support import die
from .outbox_support import in_child_killed

# -- the s3 store ------------------------------------------------------------------


class S3Store(Store):
    def __init__(self, bucket: Any) -> None:
        self.bucket = bucket
        self.recorded = []
        bucket.events.configure(lambda t: True, lambda: "alice", self.recorded.append)
        bucket.events.intent_grace = timedelta(0)

    def intents(self) -> list[str]:
        prefix = f"{self.bucket.store.prefix}events/intents/"
        return [item.key for item in self.bucket.engine.list_objects(prefix, "test")]


@pytest.fixture
def s3_store(s3_engine: Any, s3_bucket: str, spool_dir: Path) -> S3Store:
    from mpuflask.storage.s3 import S3Bucket

    settings = s3_engine.settings(s3_bucket)
    bucket = S3Bucket(
        s3_bucket,
        min_part_size=1,
        max_part_size=1 << 20,
        upload_ttl=timedelta(days=1),
        endpoint=settings["MPUFLASK_S3_ENDPOINT"],
        region=settings["MPUFLASK_S3_REGION"],
        access_key_id=settings["MPUFLASK_S3_ACCESS_KEY_ID"],
        secret_access_key=settings["MPUFLASK_S3_SECRET_ACCESS_KEY"],
        spool_dir=str(spool_dir),
    )
    return S3Store(bucket)


@pytest.mark.parametrize("after_commit", [False, True])
def test_s3_a_complete_killed_mid_step(s3_store: S3Store, after_commit: bool) -> None:
    """Killed holding its claim: undecided until the claim is taken over (by
    the sweep, once its lease ran out), which releases it (killed before the
    close) or finishes the publish (killed after)."""
    from datetime import UTC
    from datetime import datetime

    from mpuflask.storage.s3events import S3Outbox

    upload_id, ref = s3_store.start("k")
    patch = (
        (S3Outbox, "_make_ready", die)
        if after_commit
        else (S3Outbox, "_write_intent", _dying_after_first(S3Outbox._write_intent))
    )
    in_child_killed(lambda: s3_store.complete("k", upload_id, ref), [patch])
    assert len(s3_store.intents()) == 1
    assert s3_store.delivered() == []  # the record still holds the claim
    assert len(s3_store.intents()) == 1
    later = datetime.now(UTC) + timedelta(minutes=1)
    s3_store.bucket.clock = lambda: later  # the claim's lease has run out
    s3_store.bucket.sweep()
    delivered = s3_store.delivered()
    assert s3_store.intents() == []
    published = (
        "object-published",
        upload_event_id("object-published", "k", upload_id),
    )
    if after_commit:
        assert delivered == [published]
    else:
        assert delivered == []
        s3_store.complete("k", upload_id, ref)  # the upload is open again
        assert s3_store.delivered() == [published]


@pytest.mark.parametrize("after_commit", [False, True])
def test_s3_an_abort_killed_mid_step(s3_store: S3Store, after_commit: bool) -> None:
    from mpuflask.storage.s3events import S3Outbox

    upload_id, _ = s3_store.start("k")
    patch = (
        (S3Outbox, "_make_ready", die)
        if after_commit
        else (S3Outbox, "_write_intent", _dying_after_first(S3Outbox._write_intent))
    )
    in_child_killed(lambda: s3_store.abort("k", upload_id), [patch])
    expected = [("upload-aborted", upload_event_id("upload-aborted", "k", upload_id))]
    assert s3_store.delivered() == (expected if after_commit else [])
    assert s3_store.intents() == []


@pytest.mark.parametrize("after_commit", [False, True])
def test_s3_a_delete_killed_mid_step(s3_store: S3Store, after_commit: bool) -> None:
    from mpuflask.storage.s3events import S3Outbox

    upload_id, ref = s3_store.start("k")
    s3_store.complete("k", upload_id, ref)
    s3_store.delivered()
    patch = (
        (S3Outbox, "_make_ready", die)
        if after_commit
        else (S3Outbox, "_write_intent", _dying_after_first(S3Outbox._write_intent))
    )
    in_child_killed(lambda: s3_store.bucket.delete("k"), [patch])
    delivered = s3_store.delivered()
    assert [t for t, _ in delivered] == (["object-deleted"] if after_commit else [])
    assert (s3_store.bucket.head("k") is None) == after_commit


def test_s3_a_young_intent_is_left_to_its_writer(s3_store: S3Store) -> None:
    from mpuflask.storage.s3events import S3Outbox

    upload_id, ref = s3_store.start("k")
    in_child_killed(
        lambda: s3_store.complete("k", upload_id, ref),
        [(S3Outbox, "_make_ready", die)],
    )
    s3_store.bucket.events.intent_grace = timedelta(minutes=5)
    assert s3_store.bucket.events.settle() == 0
    assert len(s3_store.intents()) == 1


def test_s3_the_lease_is_one_holder_s_until_released_or_expired(
    s3_store: S3Store,
) -> None:
    outbox = s3_store.bucket.events
    first, second = outbox.lease(), outbox.lease()
    assert first.acquire() and not second.acquire()
    first.release()
    outbox.lease_ttl = timedelta(0)  # held until now: as if no longer renewed
    assert second.acquire()
    outbox.lease_ttl = timedelta(seconds=30)
    assert first.acquire()  # expired: taken over
    assert not second.acquire()


def _dying_after_first(real: Any) -> Any:
    """A ``_write_intent`` that writes the intent, then dies."""

    def put(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        os._exit(KILLED)

    return put
