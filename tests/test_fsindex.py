"""The filesystem store's listing index stays true to the object directories.

What a crash can leave (a key renamed but its row not written), a lost or
garbled index file, a damaged index folder, and completes of one key racing:
each is repaired from the directories, or refused, never listed wrong. The
crash harness (tests/test_crash.py) checks the same with real SIGKILLs.
"""

from __future__ import annotations

import fcntl
import gc
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mpuflask.rules import PartRef
from mpuflask.storage import fsindex
from mpuflask.storage import fsindexturn
from mpuflask.storage import fspublish
from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.filesystem import FilesystemBucket
from mpuflask.storage.fsobject import Published

from .conftest import Flow

pytestmark = pytest.mark.filesystem_only("the index is the filesystem store's")

INTERNAL = "We encountered an internal error. Please try again. (10001)"


def listed(app: Flask, query: str = "") -> list[tuple[str, str]]:
    answer = app.test_client().get(f"/?action=list{query}").json
    assert answer is not None
    return [(item["key"], item["etag"]) for item in answer["objects"]]


def marks(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "index" / "objects.sqlite") as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM marks").fetchone()[0]
    return count


def _bucket(app: Flask) -> FilesystemBucket:
    bucket: FilesystemBucket = app.extensions["mpuflask"].bucket
    return bucket


class DiesAfterTheRename:
    """The index's view of the directories fails once: as a process killed
    between a publish's rename and its row (the mark stays, the row is old)."""

    def __init__(self, bucket: FilesystemBucket) -> None:
        self.truth = bucket.index.truth
        self.fired = False
        bucket.index.truth = self

    def __call__(self, key: str, published: Published | None) -> Any:
        if not self.fired:
            self.fired = True
            raise OSError("killed")
        return self.truth(key, published)


def test_a_crash_between_rename_and_row_is_fixed_by_the_sweep(
    app: Flask, flow: Flow, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = flow.upload([b"one"], key="k").strip('"')
    assert listed(app) == [("k", old)]
    dies = DiesAfterTheRename(_bucket(app))
    new = flow.upload([b"two"], key="k").strip('"')  # answered: the rename happened
    assert dies.fired
    assert listed(app) == [("k", old)]  # the row a crash leaves, until a sweep
    assert marks(data_dir) == 1
    _bucket(app).sweep()
    assert listed(app) == [("k", new)]
    assert marks(data_dir) == 1  # young: it may be a live request's; kept
    monkeypatch.setattr(fsindex, "MARK_GRACE_SECONDS", 0.0)
    _bucket(app).sweep()
    assert marks(data_dir) == 0
    assert listed(app) == [("k", new)]


def test_a_delete_a_crash_cut_short_is_fixed_by_the_sweep(
    app: Flask, flow: Flow
) -> None:
    etag = flow.upload([b"one"], key="k").strip('"')
    DiesAfterTheRename(_bucket(app))
    assert app.test_client().delete("/k?action=delete").status_code == 204
    assert listed(app) == [("k", etag)]
    _bucket(app).sweep()
    assert listed(app) == []


def test_a_lost_index_is_rebuilt_at_start(
    make_app: Callable[..., Flask], flow: Flow, data_dir: Path
) -> None:
    etags = [(key, flow.upload([key.encode()], key=key).strip('"')) for key in "bca"]
    shutil.rmtree(data_dir / "index")
    assert listed(make_app()) == sorted(etags)


def test_a_garbled_index_is_rebuilt_at_start(
    make_app: Callable[..., Flask],
    flow: Flow,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    etag = flow.upload([b"x"], key="k").strip('"')
    for name in (data_dir / "index").iterdir():
        if name.name.startswith("objects.sqlite"):
            name.unlink()
    (data_dir / "index" / "objects.sqlite").write_bytes(b"not a database" * 512)
    assert listed(make_app()) == [("k", etag)]
    assert "index unreadable, rebuilt from the objects" in caplog.text


def test_a_damaged_index_folder_is_refused_not_followed(
    make_app: Callable[..., Flask], flow: Flow, data_dir: Path, tmp_path: Path
) -> None:
    flow.upload([b"x"], key="k")
    upload_id = flow.create("new")
    part = flow.part(upload_id, 1, b"y", key="new")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(data_dir / "index", elsewhere)
    (elsewhere / fsindexturn.WRITE_LOCK).unlink()  # not made again through the link
    (data_dir / "index").symlink_to(elsewhere)
    app = make_app()  # starts, and says why listing will not work
    client = app.test_client()
    response = client.get("/?action=list")
    assert (response.status_code, response.text) == (503, f"list: {INTERNAL}")
    # A complete cannot keep the index true: refused before publishing.
    response = Flow(client).complete_raw(upload_id, [part], key="new")
    assert (response.status_code, response.text) == (
        503,
        f"completeMultipartUpload: {INTERNAL}",
    )
    assert Flow(client).get("new").status_code == 404
    assert (
        client.get(f"/new?action=mpu-listparts&uploadId={upload_id}").status_code == 200
    )
    assert not any(elsewhere.glob("*/*"))  # nothing written through the link
    assert not (elsewhere / fsindexturn.WRITE_LOCK).exists()


def test_racing_completes_of_one_key_leave_the_winners_row(
    app: Flask, flow: Flow
) -> None:
    for _ in range(3):
        uploads = []
        for n in range(6):
            upload_id = flow.create("k")
            uploads.append(
                (upload_id, flow.part(upload_id, 1, bytes([n]) * 10, key="k"))
            )
        start = threading.Barrier(len(uploads))
        threads = [
            threading.Thread(target=_complete, args=(app, upload, start))
            for upload in uploads
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        winner = flow.get("k").headers["etag"].strip('"')
        assert listed(app) == [("k", winner)]


def _complete(
    app: Flask, upload: tuple[str, dict[str, Any]], start: threading.Barrier
) -> None:
    handle = _bucket(app).resume_multipart_upload("k", upload[0])
    start.wait(timeout=60)
    handle.complete([PartRef(1, upload[1]["etag"])])


def test_a_complete_overtaken_before_its_row_settles_writes_the_winners_row(
    app: Flask, flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settles after B published over it: A's row must be B's version, though
    A's settle takes A's own info without reading while A is still current."""
    first = flow.create("k")
    first_part = flow.part(first, 1, b"a" * 10, key="k")
    second = flow.create("k")
    second_part = flow.part(second, 1, b"b" * 10, key="k")
    publish = fspublish.publish
    overtaken = threading.Event()

    def publish_then_be_overtaken(*args: Any) -> bool:
        replaced = publish(*args)
        if not overtaken.is_set():  # only the first complete's publish
            overtaken.set()
            racer = threading.Thread(
                target=_bucket(app).resume_multipart_upload("k", second).complete,
                args=([PartRef(1, second_part["etag"])],),
            )
            racer.start()
            racer.join(timeout=120)
            assert not racer.is_alive()
        return replaced

    monkeypatch.setattr(fspublish, "publish", publish_then_be_overtaken)
    _bucket(app).resume_multipart_upload("k", first).complete(
        [PartRef(1, first_part["etag"])]
    )
    assert overtaken.is_set()
    got = flow.get("k")
    assert got.data == b"b" * 10  # the second's version is the key's
    assert listed(app) == [("k", got.headers["etag"].strip('"'))]
    assert marks(_data_dir(app)) == 0


def _data_dir(app: Flask) -> Path:
    return Path(_bucket(app).root)


def test_a_version_get_finds_corrupt_is_not_listed_after_a_rebuild(
    make_app: Callable[..., Flask], flow: Flow, data_dir: Path
) -> None:
    flow.upload([b"x"], key="bad")
    good = flow.upload([b"y"], key="good").strip('"')
    manifest = next(
        path
        for path in (data_dir / "objects").glob("*/*/object.json")
        if '"key":"bad"' in path.read_text()
    )
    manifest.write_text("{garbled")
    shutil.rmtree(data_dir / "index")
    app = make_app()
    assert Flow(app.test_client()).get("bad").status_code == 404
    assert listed(app) == [("good", good)]


def test_index_writers_queue_on_write_lock_not_sqlite_retries(
    app: Flask, flow: Flow, data_dir: Path
) -> None:
    """A writer waits on ``index/write.lock`` (woken the moment it is free),
    not in SQLite's busy handler (which sleeps up to 100 ms between tries);
    a delete whose turn has not come has not started: its key is still there."""
    flow.upload([b"x"], key="k")
    holder = os.open(data_dir / "index" / fsindexturn.WRITE_LOCK, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process's writer, as it were
    deleting = threading.Thread(target=_bucket(app).delete, args=("k",))
    try:
        deleting.start()
        deleting.join(timeout=0.5)
        assert deleting.is_alive()
        assert flow.get("k").status_code == 200
        assert marks(data_dir) == 0
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    deleting.join(timeout=120)
    assert not deleting.is_alive()
    assert flow.get("k").status_code == 404
    assert listed(app) == []


def test_only_the_mark_is_committed_with_a_full_fsync(app: Flask, flow: Flow) -> None:
    """Settling may be lost to a power cut (its mark stays: the sweep settles
    again), so it is committed without an fsync; every other write is full."""
    index = _bucket(app).index
    seen: list[int] = []
    real_put_truth = index._put_truth

    def put_truth(conn: sqlite3.Connection, *args: Any) -> None:
        seen.append(conn.execute("PRAGMA synchronous").fetchone()[0])
        real_put_truth(conn, *args)

    index._put_truth = put_truth  # type: ignore[method-assign,assignment]
    flow.upload([b"x"], key="k")
    assert seen == [1]  # NORMAL: no fsync at commit in WAL mode
    conn = index._connection("test")
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
    assert marks_of(index) == 0


def marks_of(index: fsindex.ObjectIndex) -> int:
    count: int = (
        index._connection("test").execute("SELECT COUNT(*) FROM marks").fetchone()[0]
    )
    return count


def test_a_dropped_store_leaves_no_descriptor_of_write_lock_open(
    tmp_path: Path,
) -> None:
    """Like its SQLite connections, the index's write.lock closes with it: a
    process that makes stores (tests, tools) must not leak one per store, nor
    keep a FUSE mount busy."""

    def lock_fds() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target == str(tmp_path / "data" / "index" / fsindexturn.WRITE_LOCK):
                found.append(target)
        return found

    bucket = FilesystemBucket(
        tmp_path / "data", min_part_size=1, upload_ttl=timedelta(hours=1)
    )
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload.complete([PartRef(1, upload.upload_part(1, [b"x"]).etag)])
    assert len(lock_fds()) == 1
    del bucket, upload
    gc.collect()
    assert lock_fds() == []
