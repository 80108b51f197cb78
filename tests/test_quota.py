"""MPUFLASK_MAX_OPEN_UPLOADS: how many open uploads one identity may hold.

Without it one token (or anyone, with auth off) can create uploads until the
disk's inodes run out: each costs two inodes and lives for the upload TTL.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mpuflask import create_app
from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.filesystem import FilesystemBucket

from .conftest import Flow

TOKENS = json.dumps(
    [
        {"token": "tok-alice", "identity": "alice"},
        {"token": "tok-bob", "identity": "bob"},
    ]
)
ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}


def refused(limit: int) -> str:
    return (
        "createMultipartUpload: You have attempted to create more open multipart "
        f"uploads than allowed ({limit} per identity); complete or abort some "
        "first. (10009)"
    )


def _create(client: Any, key: str = "k", **headers: str) -> Any:
    return client.post(f"/{key}?action=mpu-create", headers=headers)


def test_default_is_a_thousand_per_identity(make_app: Any) -> None:
    assert make_app().config["MPUFLASK_MAX_OPEN_UPLOADS"] == 1000


@pytest.mark.parametrize("value", [-1, "many", 1.5, True, None])
def test_bad_limit_fails_at_start(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ValueError, match="MPUFLASK_MAX_OPEN_UPLOADS must be"):
        create_app(
            {"MPUFLASK_DATA_DIR": str(tmp_path), "MPUFLASK_MAX_OPEN_UPLOADS": value}
        )


def test_limit_refuses_the_next_create_and_stores_nothing(
    make_app: Any, stored_state: Any
) -> None:
    client = make_app(MPUFLASK_MAX_OPEN_UPLOADS=3).test_client()
    ids = [_create(client, f"k{n}").json["uploadId"] for n in range(3)]
    before = stored_state()
    response = _create(client, "k3")
    assert (response.status_code, response.text) == (400, refused(3))
    assert response.content_type == "text/plain; charset=utf-8"
    assert stored_state() == before
    # Finishing one (abort or complete) makes room for exactly one more.
    assert client.delete(f"/k0?action=mpu-abort&uploadId={ids[0]}").status_code == 204
    assert _create(client, "k4").status_code == 200
    assert _create(client, "k5").status_code == 400
    flow = Flow(client)
    part = flow.part(ids[1], 1, b"x", key="k1")
    flow.complete(ids[1], [part], key="k1")
    assert _create(client, "k6").status_code == 200
    assert _create(client, "k7").text == refused(3)


def test_each_identity_has_its_own_limit(make_app: Any) -> None:
    client = make_app(
        MPUFLASK_MAX_OPEN_UPLOADS=2, MPUFLASK_AUTH_TOKENS=TOKENS
    ).test_client()
    assert _create(client, **ALICE).status_code == 200
    assert _create(client, **ALICE).status_code == 200
    assert _create(client, **ALICE).text == refused(2)
    assert _create(client, **BOB).status_code == 200
    assert _create(client, **BOB).status_code == 200
    assert _create(client, **BOB).text == refused(2)


def test_anonymous_is_one_identity(make_app: Any) -> None:
    client = make_app(MPUFLASK_MAX_OPEN_UPLOADS=2).test_client()
    assert _create(client, "a").status_code == 200
    assert _create(client, "b").status_code == 200
    assert _create(client, "c").text == refused(2)


def test_zero_is_unlimited(make_app: Any) -> None:
    client = make_app(MPUFLASK_MAX_OPEN_UPLOADS=0).test_client()
    for n in range(5):
        assert _create(client, f"k{n}").status_code == 200


def test_expired_uploads_do_not_count(make_app: Any) -> None:
    app = make_app(MPUFLASK_MAX_OPEN_UPLOADS=2, MPUFLASK_UPLOAD_TTL=3600)
    client = app.test_client()
    assert _create(client, "a").status_code == 200
    assert _create(client, "b").status_code == 200
    assert _create(client, "c").status_code == 400
    bucket = app.extensions["mpuflask"].bucket
    later = datetime.now(UTC) + timedelta(seconds=3601)
    bucket.clock = lambda: later
    assert _create(client, "c").status_code == 200  # before any sweep


def test_open_uploads_counts_by_owner(make_app: Any) -> None:
    """The store method behind the limit, on both stores."""
    bucket = make_app().extensions["mpuflask"].bucket
    for owner in ("alice", "alice", None, "bob", "alice"):
        bucket.create_multipart_upload("k", HttpMetadata({}), owner=owner)
    assert bucket.open_uploads("alice") == 3
    assert bucket.open_uploads(None) == 1
    assert bucket.open_uploads("bob") == 1
    assert bucket.open_uploads("carol") == 0
    assert bucket.open_uploads("") == 0


def test_the_s3_count_reads_the_records_side_by_side(
    make_app: Any, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each create under a limit reads every open upload's record: on S3
    one GET each, side by side (as a listing of uploads does), not one
    after another (1,000 open uploads were 1,000 round trips per create)."""
    if store != "s3":
        pytest.skip("the filesystem store counts from its owners' folders")
    bucket = make_app().extensions["mpuflask"].bucket
    for owner in ("alice", "bob", "alice", None, "alice", "bob"):
        bucket.create_multipart_upload("k", HttpMetadata({}), owner=owner)
    lock = threading.Lock()
    reading, most = 0, 0
    two_at_once = threading.Event()
    real_read = bucket.store.read_record

    def read_record(upload_id: str, operation: str) -> Any:
        nonlocal reading, most
        with lock:
            reading += 1
            most = max(most, reading)
            if reading >= 2:
                two_at_once.set()
        try:
            # Hold each read until a second one is under way: side by side,
            # that is at once; one after another it never is (bounded wait,
            # after which the rest go on unheld).
            if not two_at_once.wait(30):
                two_at_once.set()
            return real_read(upload_id, operation)
        finally:
            with lock:
                reading -= 1

    monkeypatch.setattr(bucket.store, "read_record", read_record)
    assert bucket.open_uploads("alice") == 3
    assert most >= 2


def test_an_s3_count_reads_only_the_records_written_since_the_last_one(
    make_app: Any, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record listed with the etag it was read at is not read again: a
    create under a limit costs the listing plus a GET per record written
    since, not one per open upload. Another gateway's creates, completes and
    aborts still count at once."""
    if store != "s3":
        pytest.skip("the filesystem store counts from its owners' folders")
    here = make_app().extensions["mpuflask"].bucket
    there = make_app().extensions["mpuflask"].bucket  # another gateway
    made = [
        here.create_multipart_upload("k", HttpMetadata({}), owner=owner)
        for owner in ("alice", "bob", "alice")
    ]
    reads: list[str] = []
    real_read = here.store.read_record

    def read_record(upload_id: str, operation: str) -> Any:
        reads.append(upload_id)
        return real_read(upload_id, operation)

    monkeypatch.setattr(here.store, "read_record", read_record)

    def count(owner: str) -> tuple[int, list[str]]:
        reads.clear()
        return here.open_uploads(owner), sorted(reads)

    assert count("alice") == (2, sorted(u.upload_id for u in made))
    assert count("alice") == (2, [])
    assert count("bob") == (1, [])
    theirs = there.create_multipart_upload("k", HttpMetadata({}), owner="alice")
    assert count("alice") == (3, [theirs.upload_id])
    there.resume_multipart_upload("k", made[0].upload_id).abort()
    assert count("alice") == (2, [])
    assert count("bob") == (1, [])
    later = datetime.now(UTC) + timedelta(days=30)
    monkeypatch.setattr(here.store, "clock", lambda: later)
    assert count("alice") == (0, [])  # expiry is judged at each count


# -- the filesystem store's index: shared by processes, repaired by sweep -------


def _bucket(root: Path) -> FilesystemBucket:
    """The store as one gunicorn worker opens it (another instance: another worker)."""
    return FilesystemBucket(root, min_part_size=1, upload_ttl=timedelta(days=7))


def test_workers_share_the_count(tmp_path: Path) -> None:
    one, two = _bucket(tmp_path), _bucket(tmp_path)
    created = one.create_multipart_upload("k", HttpMetadata({}), owner="alice")
    assert two.open_uploads("alice") == 1
    two.resume_multipart_upload("k", created.upload_id).abort()
    assert one.open_uploads("alice") == 0


def test_sweep_repairs_the_index_after_crashes(tmp_path: Path) -> None:
    bucket = _bucket(tmp_path)
    kept = bucket.create_multipart_upload("k", HttpMetadata({}), owner="alice")
    gone = bucket.create_multipart_upload("k", HttpMetadata({}), owner="alice")
    assert bucket.open_uploads("alice") == 2
    index = {p.name: p for p in (tmp_path / "owners").rglob("*") if p.is_file()}
    # A crash between closing an upload and removing its entry ...
    upload_dir = tmp_path / "uploads" / gone.upload_id
    for path in upload_dir.iterdir():
        path.unlink()
    upload_dir.rmdir()
    # ... and an upload whose entry was lost (a data dir from before the index).
    (kept_entry,) = [p for name, p in index.items() if kept.upload_id in name]
    kept_entry.unlink()
    bucket.sweep()
    assert bucket.open_uploads("alice") == 1
    entries = [p.name for p in (tmp_path / "owners").rglob("*") if p.is_file()]
    assert len(entries) == 1 and kept.upload_id in entries[0]
