"""The s3 store's count of open uploads reads only records it has not read at
the etag listed (``s3list.KnownRecords``); here without an engine: a listing
and reads the test controls. The same count against Ceph: tests/test_quota.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.base import UploadInfo
from mpuflask.storage.s3engine import Listed
from mpuflask.storage.s3list import KnownRecords
from mpuflask.storage.s3list import open_uploads
from mpuflask.storage.s3records import UploadRecord
from mpuflask.storage.s3records import record_key

PREFIX = ".mpuflask/"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _record(upload_id: str, owner: str | None = "alice") -> UploadRecord:
    info = UploadInfo(
        key="k",
        upload_id=upload_id,
        created=NOW,
        expires=NOW + timedelta(days=7),
        http_metadata=HttpMetadata({}),
        owner=owner,
    )
    return UploadRecord(info=info, engine_key="k")


@dataclass
class _Engine:
    """Objects under the state prefix (key -> (etag, record or junk))."""

    objects: dict[str, tuple[str, UploadRecord | None]] = field(default_factory=dict)

    def list_objects(self, prefix: str, operation: str) -> list[Listed]:
        return [
            Listed(key, 1, etag, NOW)
            for key, (etag, _) in sorted(self.objects.items())
            if key.startswith(prefix)
        ]


@dataclass
class _Store:
    engine: _Engine
    prefix: str = PREFIX
    reads: list[str] = field(default_factory=list)
    #: Upload ids whose read answers None once (gone, as an engine may say).
    missing_once: set[str] = field(default_factory=set)

    def clock(self) -> datetime:
        return NOW

    def read_record(
        self, upload_id: str, operation: str
    ) -> tuple[UploadRecord, str] | None:
        self.reads.append(upload_id)
        if upload_id in self.missing_once:
            self.missing_once.discard(upload_id)
            return None
        name = record_key(self.prefix, upload_id)
        etag, record = self.engine.objects.get(name or "", ("", None))
        return None if record is None else (record, etag)


@dataclass
class _Bucket:
    engine: _Engine
    store: _Store
    known_records: KnownRecords = field(default_factory=KnownRecords)

    def head(self, key: str) -> Any:  # not used by counting
        raise AssertionError


def _bucket() -> _Bucket:
    engine = _Engine()
    return _Bucket(engine, _Store(engine))


def _put(bucket: _Bucket, record: UploadRecord, etag: str) -> None:
    name = record_key(PREFIX, record.info.upload_id)
    assert name is not None
    bucket.engine.objects[name] = (etag, record)


def _count(bucket: _Bucket, owner: str | None = "alice") -> tuple[int, list[str]]:
    bucket.store.reads.clear()
    found = open_uploads(bucket, owner, "createMultipartUpload")  # type: ignore[arg-type]
    return len(found), sorted(bucket.store.reads)


def test_records_are_read_again_only_when_their_etag_changes() -> None:
    bucket = _bucket()
    _put(bucket, _record("a"), "e1")
    _put(bucket, _record("b", owner="bob"), "e1")
    assert _count(bucket) == (1, ["a", "b"])
    assert _count(bucket) == (1, [])
    assert _count(bucket, "bob") == (1, [])
    _put(bucket, _record("c"), "e2")
    assert _count(bucket) == (2, ["c"])
    _put(bucket, _record("a", owner="carol"), "e3")  # rewritten: new bytes
    assert _count(bucket) == (1, ["a"])
    del bucket.engine.objects[record_key(PREFIX, "c") or ""]
    assert _count(bucket) == (0, [])


def test_a_record_that_could_not_be_read_is_read_again_next_time() -> None:
    """A GET that finds nothing (gone, or an engine not yet showing it) is not
    remembered under the etag listed: the upload must not stay hidden."""
    bucket = _bucket()
    _put(bucket, _record("a"), "e1")
    bucket.store.missing_once.add("a")
    assert _count(bucket) == (0, ["a"])
    assert _count(bucket) == (1, ["a"])
    assert _count(bucket) == (1, [])


def test_a_read_newer_than_the_listing_is_known_at_the_etag_read() -> None:
    bucket = _bucket()
    _put(bucket, _record("a"), "e1")
    real_list = bucket.engine.list_objects

    def listing_then_rewrite(prefix: str, operation: str) -> list[Listed]:
        listed = real_list(prefix, operation)
        _put(bucket, _record("a", owner="bob"), "e2")  # between list and GET
        return listed

    bucket.engine.list_objects = listing_then_rewrite  # type: ignore[method-assign]
    assert _count(bucket) == (0, ["a"])  # bob's now, read at e2
    bucket.engine.list_objects = real_list  # type: ignore[method-assign]
    assert _count(bucket, "bob") == (1, [])  # listed at e2: known


def test_an_object_whose_name_only_decodes_to_a_records_is_not_it() -> None:
    """``a+b.json`` beside the record ``a%2Bb.json`` (another S3 client's
    object) names the same upload id once unquoted: it neither hides the
    record nor counts it twice."""
    bucket = _bucket()
    stray = f"{PREFIX}uploads/a+b.json"
    bucket.engine.objects[stray] = ("junk", None)
    assert _count(bucket) == (0, [])
    _put(bucket, _record("a+b"), "e1")
    assert record_key(PREFIX, "a+b") == f"{PREFIX}uploads/a%2Bb.json"
    assert _count(bucket) == (1, ["a+b"])
    assert _count(bucket) == (1, [])
    bucket.engine.objects[stray] = ("junk2", None)
    assert _count(bucket) == (1, [])


def test_known_records_keep_only_what_the_last_count_listed() -> None:
    known = KnownRecords()
    reads: list[list[str]] = []

    def read(ids: list[str]) -> list[tuple[UploadRecord, str] | None]:
        reads.append(ids)
        return [(_record(each), "e1") for each in ids]

    assert len(known.uploads({"a": "e1", "b": "e1"}, read)) == 2
    assert len(known.uploads({"b": "e1"}, read)) == 1
    assert len(known.uploads({"a": "e1", "b": "e1"}, read)) == 2
    assert reads == [["a", "b"], [], ["a"]]
