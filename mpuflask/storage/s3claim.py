"""A claimed upload: the steps that take it from claimed to published.

:class:`Holder` is one complete's (or one recovery's) hold on an upload's
record: the claim written with ``If-Match`` (:meth:`Holder.take`), then the
close, the publication and the clean-up of docs/scale-out.md's state machine,
and the lease that lets another request take over when the holder is gone.
The order of those steps, and who runs them, is :mod:`.s3complete`'s.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import replace

from ..errors import EntityTooSmall
from ..errors import InvalidPart
from ..errors import NoSuchUpload
from ..errors import R2Error
from ..rules import multipart_etag
from .base import UploadedPart
from .s3engine import Listed
from .s3engine import WriteConflict
from .s3errors import EngineUnavailable
from .s3records import UPLOAD_META
from .s3records import Claim
from .s3records import Substitute
from .s3records import UploadRecord
from .s3records import object_arguments
from .s3staged import CurrentPart
from .s3staged import plan_ranges
from .s3staged import publish_ranges
from .s3staged import substitute
from .s3store import S3Store

log = logging.getLogger(__name__)

COMPLETE = "completeMultipartUpload"


class PartsChanged(Exception):
    """A staged close was refused: a part changed after it was listed, or
    the engine refused the parts themselves (``error``: what to answer if
    the same parts are refused again)."""

    def __init__(self, error: R2Error | None = None) -> None:
        super().__init__()
        self.error = error or InvalidPart(COMPLETE)


class Holder:
    """A claimed upload, and the steps that take it to published."""

    def __init__(self, store: S3Store, record: UploadRecord, etag: str) -> None:
        self.store = store
        self.record = record
        self.etag = etag
        #: Parts to overwrite with the filler before closing (plan ``ranges``).
        self.fresh: dict[int, Substitute] = {}
        #: The engine's parts when the plan was made.
        self.seen: list[UploadedPart] = []
        #: Guards the record and its etag: the heartbeat swaps them too.
        self._lock = threading.Lock()
        #: Released, expired or cleaned up: the heartbeat must not renew.
        self._ended = False

    @property
    def claim(self) -> Claim:
        assert self.record.claim is not None
        return self.record.claim

    @classmethod
    def take(
        cls,
        store: S3Store,
        record: UploadRecord,
        etag: str,
        current: Sequence[CurrentPart],
        chosen: Sequence[CurrentPart],
    ) -> Holder:
        """Step 2: claim the upload with a plan (WriteConflict if another did)."""
        listed = tuple(found.part for found in chosen)
        subs = dict(record.subs)
        new: dict[int, Substitute] = {}
        layout: tuple[UploadedPart, ...] = ()
        if not listed:
            plan = "empty"
        elif not record.staged:
            plan, layout = "inplace", tuple(found.engine for found in chosen)
        elif len(chosen) == len(current) and not any(f.substituted for f in chosen):
            plan, layout = "whole", tuple(found.engine for found in chosen)
        else:
            plan = "ranges"
            filler = (store.filler_etag(), store.min_part_size)
            layout, new = plan_ranges(current, store.min_part_size, filler)
            subs.update(new)
        claim = Claim(
            holder=secrets.token_hex(8),
            until=store.clock() + store.complete_lease,
            plan=plan,
            parts=listed,
            layout=layout,
            etag=multipart_etag([part.etag for part in listed]),
        )
        claimed = replace(record, claim=claim, subs=subs)
        etag = store.write_record(claimed, COMPLETE, if_match=etag)
        holder = cls(store, claimed, etag)
        holder.fresh = new
        return holder

    def take_over(self) -> Holder:
        """Claim a stale claim for this request (WriteConflict if beaten)."""
        store = self.store
        claim = replace(
            self.claim,
            holder=secrets.token_hex(8),
            until=store.clock() + store.complete_lease,
        )
        record = replace(self.record, claim=claim)
        etag = store.write_record(record, COMPLETE, if_match=self.etag)
        return Holder(store, record, etag)

    # -- step 3 -----------------------------------------------------------------

    def close(self) -> None:
        """Step 3; raises PartsChanged, InvalidPart, NoSuchUpload or a 503."""
        record, claim = self.record, self.claim
        upload_id = record.info.upload_id
        engine = self.store.engine
        if claim.plan == "empty":
            # Published first (an empty put): the open upload is the proof that
            # nobody else closed it, and a crash before the abort only leaves
            # an upload that is open again.
            arguments = object_arguments(
                record.info.http_metadata, record.token, claim.etag
            )
            engine.put(record.info.key, b"", COMPLETE, arguments)
            if not engine.abort_upload(record.engine_key, upload_id, COMPLETE):
                if not self.published_here():
                    raise NoSuchUpload(COMPLETE)
            return
        try:
            if self.fresh:
                # Overwriting is not conditional: make sure no part changed
                # between the listing and the claim (a part upload confirmed
                # before the claim; any later one waits for this claim).
                now = engine.list_parts(record.engine_key, upload_id, COMPLETE)
                if now != self.seen:
                    raise PartsChanged()
                substitute(self.store, record, upload_id, self.fresh)
            pairs = [(part.part_number, part.etag) for part in claim.layout]
            engine.complete_upload(record.engine_key, upload_id, pairs, COMPLETE)
        except PartsChanged:
            self.release()
            raise
        except (InvalidPart, EntityTooSmall) as error:
            self.release()
            if claim.plan == "inplace":
                raise  # the client's list is stale (or the engine's minimum)
            raise PartsChanged(error) from None
        except NoSuchUpload:
            if not self.closed():
                raise
        except EngineUnavailable:
            # The close may or may not have happened: ask the engine.
            if self.upload_open():
                self.expire()
                raise
            if not self.closed():
                raise NoSuchUpload(COMPLETE) from None

    # -- step 4 -----------------------------------------------------------------

    def publish(self) -> None:
        """Step 4: write the key (done by step 3 in place and when empty)."""
        record, claim = self.record, self.claim
        store = self.store
        arguments = object_arguments(
            record.info.http_metadata, record.token, claim.etag
        )
        try:
            if claim.plan == "whole":
                store.engine.copy(
                    record.engine_key, record.info.key, COMPLETE, arguments
                )
            elif claim.plan == "ranges":
                publish_ranges(store, record, claim)
        except Exception:
            self.expire()  # let the client's retry take over at once
            raise

    # -- step 5 -----------------------------------------------------------------

    def cleanup(self) -> None:
        """Step 5: delete what the upload leaves, the record last (best
        effort: a record left behind is finished by sweep)."""
        with self._lock:
            self._ended = True
        record = self.record
        engine = self.store.engine
        name = self.store.record_key(record.info.upload_id)
        try:
            keys = []
            if record.staged:
                keys = [record.engine_key]
            if record.staged and self._has_small_parts():
                # Every small object: replaced small parts left theirs too.
                small = engine.list_objects(f"{record.engine_key}/", COMPLETE)
                keys += [item.key for item in small]
            if name is not None:
                keys.append(name)
            engine.delete_many(keys, COMPLETE)
        except Exception:
            log.warning("%s: leftovers of %s left for sweep", COMPLETE, name)

    def _has_small_parts(self) -> bool:
        """Whether the upload kept small objects that cleanup must list.

        Only a part under the minimum size has one; a small part later
        replaced by a full-size one leaves its object to sweep, a rare case
        not worth a listing on every complete.
        """
        claim, minimum = self.claim, self.store.min_part_size
        return bool(self.record.subs) or any(
            part.size < minimum for part in (*claim.parts, *claim.layout)
        )

    def _drop_record(self) -> None:
        name = self.store.record_key(self.record.info.upload_id)
        if name is not None:
            self.store.engine.delete(name, COMPLETE)

    # -- recovery ---------------------------------------------------------------

    def finish(self) -> bool:
        """Finish a closed upload's claim: publish unless done (or overwritten
        since the close); True if the parts are published by this upload."""
        record, claim = self.record, self.claim
        engine = self.store.engine
        if self.published_here():
            self.cleanup()
            return True
        if claim.plan in ("inplace", "empty"):
            self.cleanup()  # aborted, or published and overwritten since
            return False
        staged = engine.find(record.engine_key, COMPLETE)
        if staged is None:
            self.cleanup()  # published and cleaned up: the key moved on since
            return False
        if not self._staged_by_me(staged):
            # Closed by a holder that outlived its lease, with other parts:
            # not ours to publish. Its holder finishes it, or sweep drops it.
            log.error("%s: %s closed with other parts", COMPLETE, record.engine_key)
            self._drop_record()
            return False
        current = engine.find(record.info.key, COMPLETE)
        if current is not None and current.modified > staged.modified:
            self.cleanup()  # written after our close: ours came first
            return False
        self.publish()
        self.cleanup()
        return True

    def upload_open(self) -> bool:
        """Whether the engine upload is still open (not closed or aborted)."""
        record = self.record
        try:
            self.store.engine.list_parts(
                record.engine_key, record.info.upload_id, COMPLETE
            )
        except NoSuchUpload:
            return False
        return True

    def closed(self) -> bool:
        """After a failed close: whether the engine closed the upload anyway
        (and with this claim's parts: a holder that outlived its lease may
        have closed it with others)."""
        if self.claim.plan == "inplace":
            return self.published_here()
        return self._staged_by_me(
            self.store.engine.find(self.record.engine_key, COMPLETE)
        )

    def _staged_by_me(self, staged: Listed | None) -> bool:
        """Whether the staging object is this claim's close: its etag is the
        MD5 of the layout's part etags, as S3 computes it."""
        layout = [part.etag for part in self.claim.layout]
        return staged is not None and staged.etag == multipart_etag(layout)

    def published_here(self) -> bool:
        """Whether the key's object was published by this upload."""
        head = self.store.engine.head(self.record.info.key, COMPLETE)
        token = self.record.token
        return (
            bool(token)
            and head is not None
            and (head.get("Metadata", {}).get(UPLOAD_META) == token)
        )

    # -- the lease --------------------------------------------------------------

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Keep the lease while the block runs: a thread renews it every third
        of the lease, so only a gateway that died (or froze whole) loses its
        claim, however long an engine request takes."""
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()

    def _beat(self, stop: threading.Event) -> None:
        period = max(self.store.complete_lease.total_seconds() / 3, 0.1)
        while not stop.wait(period):
            with self._lock:
                if stop.is_set() or self._ended:
                    return
                until = self.store.clock() + self.store.complete_lease
                try:
                    self._swap(replace(self.claim, until=until))
                except WriteConflict:
                    log.warning("%s: claim %s taken over", COMPLETE, self.claim.holder)
                    return
                except BaseException:  # the engine is down: the close fails too
                    log.warning("%s: claim not renewed", COMPLETE, exc_info=True)

    def release(self) -> None:
        """Give the upload back, open (best effort: the lease runs out)."""
        with self._lock:
            self._ended = True
            self._swap(None, quiet=True)

    def expire(self) -> None:
        """End the lease now, so that a retry takes over at once."""
        with self._lock:
            self._ended = True
            until = self.store.clock()
            self._swap(replace(self.claim, until=until), quiet=True)

    def _swap(self, claim: Claim | None, quiet: bool = False) -> None:
        record = replace(self.record, claim=claim)
        try:
            self.etag = self.store.write_record(record, COMPLETE, if_match=self.etag)
        except Exception:
            if not quiet:
                raise
            log.warning("%s: claim on %s left to expire", COMPLETE, self.etag)
            return
        if claim is not None:
            self.record = record
