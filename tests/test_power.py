"""Power cuts: the filesystem store on a disk that forgets what was never fsynced.

The disk is ``tests/powerloss/lazyfs.py`` mounted with FUSE (these tests skip,
saying why, where FUSE is unavailable). First, what the power-loss harness
found in the store, replayed in one process; then the harness's short form
(``tests/powerloss/harness.py``; the long form is ``bench/power_harness.py``).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mpuflask.rules import PartRef
from mpuflask.storage import diskio
from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.filesystem import FilesystemBucket
from mpuflask.storage.fspublish import object_name

from .crash.report import INVARIANTS
from .powerloss.fusefs import LazyMount
from .powerloss.fusefs import lazy_mount_unavailable
from .powerloss.harness import PowerConfig
from .powerloss.harness import run_power_harness


@pytest.fixture
def lazy(tmp_path: Path) -> Iterator[LazyMount]:
    reason = lazy_mount_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with LazyMount(tmp_path / "store", tmp_path / "mnt") as mount:
        yield mount


def power_cut(mount: LazyMount) -> None:
    """Drop everything unsynced, then come back on what the disk kept."""
    mount.cut()
    mount.remount()


def bucket_at(root: Path, durable: bool = True) -> FilesystemBucket:
    """The store as a gunicorn worker opens it (at start-up, after a cut too)."""
    return FilesystemBucket(
        root,
        min_part_size=1,
        upload_ttl=timedelta(days=7),
        durable=durable,
    )


def publish(bucket: FilesystemBucket, key: str, data: bytes) -> str:
    upload = bucket.create_multipart_upload(key, HttpMetadata({}))
    handle = bucket.resume_multipart_upload(key, upload.upload_id)
    part = handle.upload_part(1, [data])
    return handle.complete([PartRef(1, part.etag)]).etag


def read(bucket: FilesystemBucket, key: str) -> bytes | None:
    body = bucket.get(key)
    if body is None:
        return None
    with body:
        return body.read()


# -- found by the harness ---------------------------------------------------------------


def test_a_new_data_dir_keeps_its_acknowledged_parts(lazy: LazyMount) -> None:
    """The store made uploads/, tmp/, ... and never fsynced the data dir."""
    data = lazy.mountpoint / "data"
    bucket = bucket_at(data)
    upload = bucket.create_multipart_upload("k", HttpMetadata({}))
    part = bucket.resume_multipart_upload("k", upload.upload_id).upload_part(
        1, [b"acknowledged"]
    )
    power_cut(lazy)
    bucket = bucket_at(data)
    assert bucket.resume_multipart_upload("k", upload.upload_id).list_parts() == [part]


def test_a_data_dir_made_by_someone_else_is_made_durable(lazy: LazyMount) -> None:
    """An operator's ``mkdir`` a moment ago may not be on disk yet either."""
    data = lazy.mountpoint / "data"
    data.mkdir()
    bucket = bucket_at(data)
    upload = bucket.create_multipart_upload("k", HttpMetadata({}))
    power_cut(lazy)
    assert bucket_at(data).resume_multipart_upload("k", upload.upload_id).info()


def test_the_first_object_of_a_key_survives(lazy: LazyMount) -> None:
    """Publishing into a new objects/<hh> fsynced objects/<hh> but not objects/."""
    data = lazy.mountpoint / "data"
    bucket = bucket_at(data)
    etag = publish(bucket, "first", b"published")
    power_cut(lazy)
    bucket = bucket_at(data)
    info = bucket.head("first")
    assert info is not None and info.etag == etag
    assert read(bucket, "first") == b"published"


def test_a_reader_whose_version_is_reclaimed_as_it_locks_reads_the_next(
    lazy: LazyMount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On FUSE (and NFS) fstat of an unlinked open file may fail with ESTALE.

    A GET opens the version's manifest, an overwrite retires and reclaims that
    version before the GET's shared lock, and the GET's link count check got
    ESTALE where a local disk says 0: it answered 500 instead of looking again.
    """
    data = lazy.mountpoint / "data"
    reader, writer = bucket_at(data), bucket_at(data)
    publish(writer, "k", b"old")
    real_lock = diskio.lock
    overwrites: list[str] = []

    def lock(fd: int, shared: bool = False) -> None:
        if shared and not overwrites:
            # Once: the overwrite's own reads (settling the index) lock too.
            overwrites.append("overwriting")
            overwrites[0] = publish(writer, "k", b"new")  # reclaims "old"
        real_lock(fd, shared)

    monkeypatch.setattr(diskio, "lock", lock)
    assert read(reader, "k") == b"new"
    assert overwrites[0].endswith("-1")  # the overwrite's etag: it succeeded


def test_a_reader_whose_version_is_reclaimed_as_it_opens_reads_the_next(
    lazy: LazyMount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version's directory is removed between the GET's open of it and its
    open of the manifest inside: a local disk says ENOENT, FUSE ESTALE."""
    data = lazy.mountpoint / "data"
    reader, writer = bucket_at(data), bucket_at(data)
    publish(writer, "k", b"old")
    version = object_name("k")[1]  # opened by name, relative to its shard
    real_open = os.open
    overwrites: list[str] = []

    def open_then_overwrite(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        fd = real_open(path, flags, *args, **kw)
        if str(path) == version and not overwrites:
            # Once: the overwrite's own reads (settling the index) open it too.
            overwrites.append("overwriting")
            overwrites[0] = publish(writer, "k", b"new")  # reclaims "old"
        return fd

    monkeypatch.setattr(os, "open", open_then_overwrite)
    assert read(reader, "k") == b"new"
    assert overwrites[0].endswith("-1")  # the overwrite's etag: it succeeded


def test_two_sweeps_reclaiming_one_trash_entry_both_succeed(
    lazy: LazyMount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers booting sweep the same trash; on FUSE the loser got ESTALE.

    shutil.rmtree fstats the directory it opened, outside its error handling
    (ignore_errors does not cover it): when another sweep removed the directory
    in between, FUSE and NFS answer ESTALE and the worker failed to boot.
    """
    data = lazy.mountpoint / "data"
    booting, other_worker = bucket_at(data), bucket_at(data)
    leftover = data / "trash" / "aborted-upload"
    leftover.mkdir()
    (leftover / "00001.0123").write_bytes(b"bytes")
    real_open = os.open
    interleaved: list[int] = []

    def open_then_other_sweeps(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        fd = real_open(path, flags, *args, **kw)
        # The sweep opens trash entries by name, relative to trash/.
        if str(path) in (str(leftover), leftover.name) and not interleaved:
            interleaved.append(0)
            interleaved[0] = other_worker.sweep()  # removes the whole entry
        return fd

    monkeypatch.setattr(os, "open", open_then_other_sweeps)
    booting.sweep()
    assert interleaved == [1]
    assert os.listdir(data / "trash") == []


def test_two_sweeps_of_one_stale_owner_entry_both_succeed(
    lazy: LazyMount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers booting sweep the same owner index; on FUSE the loser got ESTALE.

    An entry of owners/ whose upload is gone (an abort cut after its upload
    left uploads/) is removed by the first sweep; the second had opened it a
    moment before, and its fstat answered ESTALE where a local disk stats the
    unlinked file: the worker failed to boot and gunicorn's master stopped.
    """
    data = lazy.mountpoint / "data"
    booting, other_worker = bucket_at(data), bucket_at(data)
    upload = booting.create_multipart_upload("k", HttpMetadata({}))
    shutil.rmtree(data / "uploads" / upload.upload_id)
    [entry] = (data / "owners").glob(f"*/*.{upload.upload_id}")
    real_open = os.open
    interleaved: list[int] = []

    def open_then_other_sweeps(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        fd = real_open(path, flags, *args, **kw)
        # The sweep opens owner entries by name, relative to their directory.
        if str(path) == entry.name and not interleaved:
            interleaved.append(0)
            interleaved[0] = other_worker.sweep()  # removes the stale entry
        return fd

    monkeypatch.setattr(os, "open", open_then_other_sweeps)
    booting.sweep()  # raised OSError(ESTALE) before the fix
    assert interleaved == [1]
    assert list((data / "owners").glob("*/*")) == []


def test_an_owner_entry_another_sweep_removes_after_we_opened_it(
    lazy: LazyMount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race one step later (the power-loss harness, seed 6): the
    first sweep removes the entry after the second opened and checked it,
    before the second takes its lock; the second's next fstat answered
    ESTALE, and the worker failed to boot."""
    data = lazy.mountpoint / "data"
    booting, other_worker = bucket_at(data), bucket_at(data)
    kept = booting.create_multipart_upload("k", HttpMetadata({}), owner="alice")
    upload = booting.create_multipart_upload("k", HttpMetadata({}), owner="bob")
    shutil.rmtree(data / "uploads" / upload.upload_id)
    [entry] = (data / "owners").glob(f"*/*.{upload.upload_id}")
    real_try_lock = diskio.try_lock
    interleaved: list[int] = []

    def other_sweeps_then_lock(fd: int, shared: bool = False) -> bool:
        if os.readlink(f"/proc/self/fd/{fd}") == str(entry) and not interleaved:
            interleaved.append(0)
            interleaved[0] = other_worker.sweep()  # removes the stale entry
        return real_try_lock(fd, shared)

    monkeypatch.setattr(diskio, "try_lock", other_sweeps_then_lock)
    booting.sweep()  # raised OSError(ESTALE) before the fix
    assert interleaved == [1]
    [left] = (data / "owners").glob("*/*")
    assert left.name.endswith(f".{kept.upload_id}")
    assert booting.open_uploads("alice") == 1
    assert booting.open_uploads("bob") == 0


def test_parts_a_complete_left_out_stay_deleted(lazy: LazyMount) -> None:
    """R2 deletes the parts a complete does not list; after a cut they were back,
    invisible and never reclaimed while the object lives (a space leak)."""
    data = lazy.mountpoint / "data"
    bucket = bucket_at(data)
    upload = bucket.create_multipart_upload("k", HttpMetadata({}))
    handle = bucket.resume_multipart_upload("k", upload.upload_id)
    kept = handle.upload_part(1, [b"listed"])
    left_out = handle.upload_part(2, [b"left out" * 1000])
    handle.complete([PartRef(1, kept.etag)])
    power_cut(lazy)
    files = os.listdir(data / "objects" / os.path.join(*object_name("k")))
    assert f"00002.{left_out.etag}.{left_out.size}" not in files
    assert f"00001.{kept.etag}.{kept.size}" in files


def test_make_dirs_fsyncs_the_parent_of_each_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(diskio, "fsync_path", synced.append)
    (tmp_path / "a").mkdir()
    diskio.make_dirs(str(tmp_path / "a" / "b" / "c"), durable=True)
    assert (tmp_path / "a" / "b" / "c").is_dir()
    assert synced == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    synced.clear()
    diskio.make_dirs(str(tmp_path / "a" / "b" / "c"), durable=True)
    assert synced == [str(tmp_path / "a" / "b")]  # it may be someone's new mkdir
    diskio.make_dirs(str(tmp_path / "x"), durable=False)
    assert synced == [str(tmp_path / "a" / "b")]


def test_a_file_deleted_as_it_is_opened_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FUSE and NFS answer ESTALE to fstat of a file another process deleted."""
    (tmp_path / "record").write_bytes(b"{}")
    opened: list[int] = []
    real_open = os.open

    def remember(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        opened.append(real_open(path, flags, *args, **kw))
        return opened[-1]

    def fstat_stale(fd: int) -> os.stat_result:
        raise OSError(errno.ESTALE, os.strerror(errno.ESTALE))

    dir_fd = os.open(tmp_path, os.O_RDONLY)
    monkeypatch.setattr(os, "open", remember)
    monkeypatch.setattr(os, "fstat", fstat_stale)
    try:
        with pytest.raises(FileNotFoundError):
            diskio.open_file("record", dir_fd)
    finally:
        monkeypatch.undo()
        os.close(dir_fd)
    with pytest.raises(OSError) as closed:
        os.fstat(opened[0])
    assert closed.value.errno == errno.EBADF  # the descriptor was not leaked


def test_without_durability_a_cut_loses_acknowledged_parts(lazy: LazyMount) -> None:
    """MPUFLASK_DURABLE=false survives process crashes, not power cuts."""
    data = lazy.mountpoint / "data"
    bucket_at(data)  # a durable start: the directories are on disk
    bucket = bucket_at(data, durable=False)
    upload = bucket.create_multipart_upload("k", HttpMetadata({}))
    handle = bucket.resume_multipart_upload("k", upload.upload_id)
    handle.upload_part(1, [b"acknowledged, never fsynced"])
    publish(bucket, "k", b"also acknowledged")
    power_cut(lazy)
    bucket = bucket_at(data, durable=False)
    assert read(bucket, "k") is None
    assert bucket.count_open_uploads() == 0


# -- the harness, short form ----------------------------------------------------------


@pytest.mark.e2e
def test_power_cuts_lose_nothing_acknowledged(tmp_path: Path) -> None:
    reason = lazy_mount_unavailable()
    if reason is not None:
        pytest.skip(reason)
    config = PowerConfig(
        workdir=tmp_path,
        seed=1,
        kills=8,
        workers=2,
        threads=4,
        clients=4,
        keys=4,
        progress=(4, 16),
        duration=40.0,
    )
    report = run_power_harness(config)
    text = report.format(details=10)
    print(text)  # the figures, shown with -s or on failure
    for name in INVARIANTS:
        assert report.violation_count(name) == 0, f"{name}\n{text}"
    assert not report.log_errors, text
    counts = report.counts
    # The run really cut the power, both ways, and really checked what it promised.
    assert counts["cuts_drop"] >= 1 and counts["cuts_writeback"] >= 1, text
    assert counts["restarts"] == counts["cuts_drop"] + counts["cuts_writeback"], text
    assert counts["cut_dropped_changes"] > 0, text
    assert counts["ack_part"] > 0 and counts["checked_parts"] > 0, text
    assert counts["ack_complete"] > 0 and counts["checked_objects"] > 0, text


def test_a_delete_stays_deleted_with_only_its_shard_synced(lazy: LazyMount) -> None:
    """The rename into trash/ is one step: syncing objects/<hh> keeps both sides."""
    data = lazy.mountpoint / "data"
    bucket = bucket_at(data)
    publish(bucket, "k", b"deleted")
    bucket.delete("k")
    power_cut(lazy)
    bucket = bucket_at(data)
    assert bucket.head("k") is None
    assert read(bucket, "k") is None


def test_a_replacing_complete_survives_with_only_its_shard_synced(
    lazy: LazyMount,
) -> None:
    """The rename out of uploads/ and the exchange out of staging/ stick with
    the shard's fsync: the new version is served, and the upload stays closed."""
    data = lazy.mountpoint / "data"
    bucket = bucket_at(data)
    publish(bucket, "k", b"old")
    upload = bucket.create_multipart_upload("k", HttpMetadata({}))
    handle = bucket.resume_multipart_upload("k", upload.upload_id)
    part = handle.upload_part(1, [b"new"])
    etag = handle.complete([PartRef(1, part.etag)]).etag
    power_cut(lazy)
    bucket = bucket_at(data)
    info = bucket.head("k")
    assert info is not None and info.etag == etag
    assert read(bucket, "k") == b"new"
    assert bucket.count_open_uploads() == 0
