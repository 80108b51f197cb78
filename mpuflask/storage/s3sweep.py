"""Sweeping the S3 store: one sweeper for all gateways, by lease.

Every worker of every gateway runs a periodic sweep; only the holder of the
sweep lease (``<prefix>sweep.json``, taken and renewed by compare-and-swap)
does the work, the others skip after one small GET. The holder keeps the
lease by sweeping again within ``S3Store.sweep_lease``; if it dies, the next
worker to come after the lease ran out takes it.

A sweep:

* aborts uploads whose record says they expired, and uploads without a
  record (a crash between the two writes of create);
* takes over completes whose claim ran out (:func:`.s3complete.settle`):
  publishes what they closed, releases what they did not;
* deletes records whose upload is gone, and staging and probe objects nobody
  references, once older than ``S3Store.orphan_grace``.

Cost per sweep: two listings and one small GET per open upload, bucket-wide.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime

from .s3complete import settle
from .s3engine import WriteConflict
from .s3records import records_prefix
from .s3records import upload_id_of_record
from .s3store import S3Store
from .s3store import now
from .s3upload import discard

log = logging.getLogger(__name__)

SWEEP = "sweep"


class Sweeper:
    """The sweeps of one S3 store; ``holder`` names it in the lease."""

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self.holder = secrets.token_hex(8)

    def sweep(self) -> int:
        """Sweep if this sweeper holds (or can take) the lease; return how
        many items it removed or finished (0 when another sweeper holds it)."""
        if not self._take_lease():
            return 0
        store = self.store
        engine = store.engine
        # Engine timestamps are compared with real time, not the test clock.
        settled = now() - store.orphan_grace
        records: dict[str, datetime] = {}
        for item in engine.list_objects(records_prefix(store.prefix), SWEEP):
            upload_id = upload_id_of_record(store.prefix, item.key)
            if upload_id is not None:
                records[upload_id] = item.modified
        removed = 0
        in_use: set[str] = set()
        live: set[str] = set()
        for upload in engine.list_uploads(SWEEP):
            engine_key, upload_id = upload["Key"], upload["UploadId"]
            live.add(upload_id)
            in_use.add(engine_key)
            removed += self._sweep_upload(
                engine_key,
                upload_id,
                upload_id in records,
                upload["Initiated"] < settled,
            )
        for upload_id, written in records.items():
            if upload_id not in live:
                removed += self._sweep_record(upload_id, written < settled, in_use)
        for area in ("staging/", "probe/"):
            stale = []
            for item in engine.list_objects(f"{store.prefix}{area}", SWEEP):
                owner = "/".join(item.key.split("/")[: store.prefix.count("/") + 2])
                if owner not in in_use and item.modified < settled:
                    stale.append(item.key)
            engine.delete_many(stale, SWEEP)
            removed += len(stale)
        return removed

    def _sweep_upload(
        self, engine_key: str, upload_id: str, has_record: bool, old: bool
    ) -> int:
        store = self.store
        found = store.read_record(upload_id, SWEEP) if has_record else None
        if found is None or found[0].engine_key != engine_key:
            if old:
                store.engine.abort_upload(engine_key, upload_id, SWEEP)
                return 1
            return 0
        record, etag = found
        if record.claim is not None:
            if record.claim.until > store.clock():
                return 0  # a complete is running
            if not settle(store, record, etag).released:
                return 1  # a complete that had closed it: finished
            found = store.read_record(upload_id, SWEEP)
            if found is None or found[0].claim is not None:
                return 1
            record = found[0]
        if record.info.expires > store.clock():
            return 0
        with store.events.ending(record) as step:
            step.happened = store.engine.abort_upload(engine_key, upload_id, SWEEP)
        if step.happened:
            discard(store, record)
        return 1

    def _sweep_record(self, upload_id: str, old: bool, in_use: set[str]) -> int:
        """A record whose upload is not open: a complete to finish, or a
        leftover of a finished one."""
        store = self.store
        found = store.read_record(upload_id, SWEEP)
        if found is not None and found[0].claim is not None:
            record, etag = found
            in_use.add(record.engine_key)
            if record.claim is not None and record.claim.until <= store.clock():
                settle(store, record, etag)
                return 1
            return 0
        name = store.record_key(upload_id)
        if not old or name is None:
            return 0
        store.engine.delete(name, SWEEP)
        return 1

    def _take_lease(self) -> bool:
        """Take or renew the sweep lease; False if another sweeper holds it."""
        store = self.store
        engine = store.engine
        key = store.sweep_lease_key
        body = json.dumps(
            {
                "holder": self.holder,
                "until": (store.clock() + store.sweep_lease).isoformat(),
            }
        ).encode()
        stored = engine.read(key, SWEEP)
        try:
            if stored is None:
                engine.write(key, body, SWEEP, if_absent=True)
                return True
            try:
                lease = json.loads(stored.data)
                held = lease["holder"] != self.holder and (
                    datetime.fromisoformat(lease["until"]) > store.clock()
                )
            except (ValueError, KeyError, TypeError):
                held = False  # not a lease: take it
            if held:
                log.info("sweep skipped: %s holds the lease", lease["holder"])
                return False
            engine.write(key, body, SWEEP, if_match=stored.etag)
            return True
        except WriteConflict:
            return False
