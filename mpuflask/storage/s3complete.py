"""mpu-complete on the S3 store: a claim, then steps anyone can finish.

This module orders the steps and decides who runs them (the request, a
waiting request, a sweep); :mod:`.s3claim` runs each step.

The steps, as the state machine in docs/scale-out.md draws them:

1. **open**: read the record and ``ListParts``; match the listed parts by
   number and etag, apply R2's size rules, run the completion validators.
2. **claimed**: rewrite the record with ``If-Match`` on the etag read in 1
   (a compare-and-swap), adding a :class:`~.s3records.Claim`: the plan, the
   parts, a holder and a lease. Only one complete can claim an upload; any
   other waits until the claim is released (it goes on), the record is gone
   (10024, as on the filesystem store) or the lease has run out (it takes the
   claim over and finishes the holder's work, see :func:`settle`).
3. **closed**: the engine's ``CompleteMultipartUpload`` with exactly the
   parts listed (in place) or all parts (staged); the engine refuses if any
   part changed after step 1, so the validators saw what is published. On a
   refusal the claim is released (a staged complete lists again and retries).
4. **published**: nothing more in place (the close published); staged, the
   staged object is copied to the key (:mod:`.s3staged`). The object carries
   the upload's token.
5. **done**: the staging objects and the record are deleted.

A crash or an engine failure at any step leaves a claimed record. Until its
lease runs out, other completes wait (503 with ``Retry-After`` past their own
deadline); then the first request or sweep to come takes it over: if the
engine upload is still open, it releases the claim (the upload is as before:
nothing was published); if it is closed, it publishes and cleans up. So a
retry of a complete either publishes the parts or answers 10024 because they
are published already; never "try again" followed by a lost upload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ..errors import NoSuchUpload
from ..rules import PartRef
from ..rules import check_part_order
from ..rules import check_part_sizes
from .base import ObjectInfo
from .base import PublishCheck
from .base import UploadedPart
from .s3claim import Holder
from .s3claim import PartsChanged
from .s3engine import WriteConflict
from .s3errors import EngineUnavailable
from .s3records import Claim
from .s3records import UploadRecord
from .s3staged import choose
from .s3staged import current_parts
from .s3store import S3Store

log = logging.getLogger(__name__)

COMPLETE = "completeMultipartUpload"
#: Claims tried before a complete gives up on a busy upload (503).
ROUNDS = 6


@dataclass(frozen=True)
class Settled:
    """What :func:`settle` found: the upload open again, or its claim done."""

    released: bool
    #: The finished claim, if its parts are published.
    published: Claim | None = None


def complete(
    store: S3Store,
    key: str,
    upload_id: str,
    opened: tuple[UploadRecord, str] | None,
    parts: Sequence[PartRef],
    check: PublishCheck | None,
) -> ObjectInfo:
    """Publish the listed parts of an upload (the module docstring's steps)."""
    check_part_order(parts)
    deadline = time.monotonic() + store.complete_lease.total_seconds()
    refused: list[UploadedPart] | None = None
    for _ in range(ROUNDS):
        record, etag = opened or store.open_record(key, upload_id, COMPLETE)
        opened = None
        if record.claim is not None:
            settled = _await_claim(store, key, upload_id, record, etag, deadline)
            if settled.released:
                continue
            if settled.published is None or not _same_parts(settled.published, parts):
                raise NoSuchUpload(COMPLETE)
            return _object_info(store, record, settled.published)
        engine_parts = store.engine.list_parts(record.engine_key, upload_id, COMPLETE)
        current = current_parts(record, engine_parts)
        chosen = choose(parts, current)
        listed = [found.part for found in chosen]
        check_part_sizes([part.size for part in listed], store.min_part_size)
        if check is not None:
            check(listed)
        try:
            holder = Holder.take(store, record, etag, current, chosen)
            holder.seen = engine_parts
        except WriteConflict:
            continue  # another complete (or an abort) got there first
        try:
            claim = holder.claim
            with holder.holding(), store.events.publishing(record, listed, claim.etag):
                holder.close()
                holder.publish()
        except PartsChanged as changed:
            if refused == engine_parts:
                raise changed.error from None  # the engine's answer, not a race
            refused = engine_parts
            continue
        holder.cleanup()
        assert holder.record.claim is not None
        return _object_info(store, record, holder.record.claim)
    raise EngineUnavailable(COMPLETE)


def settle(store: S3Store, record: UploadRecord, etag: str) -> Settled:
    """Take over a claim whose lease ran out, and finish or undo it.

    Open engine upload: the holder stopped before closing; the claim is
    released and the upload is as it was. Closed: the holder stopped after;
    its parts are published (unless the key was written after the close).
    """
    try:
        holder = Holder(store, record, etag).take_over()
    except WriteConflict:
        return Settled(released=True)  # someone else is on it: look again
    with holder.holding():
        if holder.upload_open():
            holder.release()
            return Settled(released=True)
        finished = holder.finish()
    if finished:
        return Settled(released=False, published=holder.claim)
    return Settled(released=False)


def _await_claim(
    store: S3Store,
    key: str,
    upload_id: str,
    record: UploadRecord,
    etag: str,
    deadline: float,
) -> Settled:
    """Wait while another complete holds the upload, as the filesystem store
    waits on its lock: until it lets go, is done (10024) or its lease ends."""
    delay = 0.02
    while True:
        claim = record.claim
        if claim is None:
            return Settled(released=True)
        left = claim.until - store.clock()
        if left <= timedelta(0):
            return settle(store, record, etag)
        if time.monotonic() >= deadline:
            raise EngineUnavailable(COMPLETE, retry_after=int(left.total_seconds()) + 1)
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
        found = store.read_record(upload_id, COMPLETE)
        if found is None or found[0].info.key != key:
            raise NoSuchUpload(COMPLETE)
        record, etag = found


def _same_parts(claim: Claim, parts: Sequence[PartRef]) -> bool:
    return [(p.part_number, p.etag) for p in claim.parts] == [
        (ref.part_number, ref.etag) for ref in parts
    ]


def _object_info(store: S3Store, record: UploadRecord, claim: Claim) -> ObjectInfo:
    return ObjectInfo(
        key=record.info.key,
        size=sum(part.size for part in claim.parts),
        etag=claim.etag,
        uploaded=store.clock(),
        http_metadata=record.info.http_metadata,
        version=claim.etag,
    )
