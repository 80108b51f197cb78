"""Group commit of directory fsyncs (mpuflask/storage/groupsync.py).

Every caller returns only after an fsync that started after it called has
succeeded; callers that arrive while one runs share the next; a failed fsync
fails every caller it was to cover, even when a later one succeeds. In the
store, parallel parts of one upload share their directory's fsyncs.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mpuflask.storage import groupsync
from mpuflask.storage.groupsync import DirSyncs

#: Bounded polls: generous for a loaded machine, never reached when it works.
WAIT = 60.0


class FakeFsync:
    """``os.fsync`` for groupsync: the first call blocks until released;
    ``fail`` lists the calls (1-based) that raise EIO."""

    def __init__(self, fail: tuple[int, ...] = ()) -> None:
        self.calls = 0
        self.fail = fail
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        with self.lock:
            self.calls += 1
            call = self.calls
        if call == 1:
            assert self.release.wait(WAIT)
        if call in self.fail:
            raise OSError(errno.EIO, "Input/output error")


def poll(condition: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def run_callers(
    syncs: DirSyncs, fd: int, count: int, tickets: list[int]
) -> tuple[list[threading.Thread], dict[int, BaseException | None]]:
    """``count`` threads calling ``sync(fd)``; their outcomes by index."""
    outcomes: dict[int, BaseException | None] = {}

    def call(index: int) -> None:
        try:
            syncs.sync(fd)
            outcomes[index] = None
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            outcomes[index] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


@pytest.fixture
def dir_fd(tmp_path: Path) -> Any:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


@pytest.fixture
def tickets(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The round each caller waits for, in the order they took them."""
    taken: list[int] = []
    original = DirSyncs._ticket

    def counted(state: Any) -> int:
        need = original(state)
        taken.append(need)
        return need

    monkeypatch.setattr(DirSyncs, "_ticket", staticmethod(counted))
    return taken


def test_callers_that_arrive_during_an_fsync_share_the_next_one(
    dir_fd: int, tickets: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeFsync()
    monkeypatch.setattr(groupsync.os, "fsync", fake)
    syncs = DirSyncs()
    first, outcome = run_callers(syncs, dir_fd, 1, tickets)
    poll(lambda: fake.calls == 1)  # round 1 runs, blocked
    others, outcomes = run_callers(syncs, dir_fd, 7, tickets)
    poll(lambda: len(tickets) == 8)  # all seven wait for round 2
    fake.release.set()
    for thread in first + others:
        thread.join(WAIT)
    assert outcome == {0: None}
    assert outcomes == dict.fromkeys(range(7))
    assert tickets == [1] + [2] * 7
    assert fake.calls == 2  # eight callers, two fsyncs
    assert not syncs._dirs  # nothing kept once everyone is answered


def test_a_failed_fsync_fails_every_caller_it_covered_not_the_later_ones(
    dir_fd: int, tickets: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeFsync(fail=(2,))
    monkeypatch.setattr(groupsync.os, "fsync", fake)
    syncs = DirSyncs()
    first, outcome = run_callers(syncs, dir_fd, 1, tickets)
    poll(lambda: fake.calls == 1)
    covered, outcomes = run_callers(syncs, dir_fd, 4, tickets)
    poll(lambda: len(tickets) == 5)
    fake.release.set()
    for thread in first + covered:
        thread.join(WAIT)
    assert outcome == {0: None}
    # Round 2 failed: all four fail, whoever of them ran it.
    assert sorted(map(type, outcomes.values()), key=str) == [OSError] * 4
    assert {error.errno for error in outcomes.values()} == {errno.EIO}  # type: ignore[union-attr]
    assert not syncs._dirs  # everyone was answered: nothing kept
    # A later caller gets an fsync of its own, which succeeds.
    later, later_outcome = run_callers(syncs, dir_fd, 1, tickets)
    later[0].join(WAIT)
    assert later_outcome == {0: None}
    assert fake.calls == 3


def test_different_directories_do_not_wait_for_each_other(tmp_path: Path) -> None:
    syncs = DirSyncs()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fds = [os.open(tmp_path / name, os.O_RDONLY) for name in "ab"]
    try:
        for fd in fds:
            syncs.sync(fd)  # a real fsync each
        assert not syncs._dirs
    finally:
        for fd in fds:
            os.close(fd)


def test_parallel_parts_of_one_upload_share_directory_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's parts go through DirSyncs, and all are stored and listed."""
    from mpuflask.storage.base import HttpMetadata
    from mpuflask.storage.filesystem import FilesystemBucket

    bucket = FilesystemBucket(
        tmp_path / "data", durable=True, min_part_size=1, upload_ttl=timedelta(days=1)
    )
    calls: list[int] = []
    real_sync = bucket.dir_syncs.sync

    def counted(fd: int) -> None:
        calls.append(fd)
        real_sync(fd)

    upload = bucket.create_multipart_upload("k", HttpMetadata({}))
    monkeypatch.setattr(bucket.dir_syncs, "sync", counted)
    errors: list[BaseException] = []

    def put(number: int) -> None:
        try:
            bucket.resume_multipart_upload("k", upload.upload_id).upload_part(
                number, [b"%d" % number]
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(1, 17)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not errors
    assert len(calls) == 16
    listed = bucket.resume_multipart_upload("k", upload.upload_id).list_parts()
    assert [part.part_number for part in listed] == list(range(1, 17))


def test_after_a_failed_fsync_every_waiting_caller_fails_without_another(
    dir_fd: int, tickets: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers that took a ticket while the failing fsync ran may have had
    their renames in it; a second fsync could report success for them."""
    fake = FakeFsync(fail=(1,))
    monkeypatch.setattr(groupsync.os, "fsync", fake)
    syncs = DirSyncs()
    first, outcome = run_callers(syncs, dir_fd, 1, tickets)
    poll(lambda: fake.calls == 1)
    waiting, outcomes = run_callers(syncs, dir_fd, 4, tickets)
    poll(lambda: len(tickets) == 5)
    fake.release.set()
    for thread in first + waiting:
        thread.join(WAIT)
    assert isinstance(outcome[0], OSError) and outcome[0].errno == errno.EIO
    assert [getattr(error, "errno", None) for error in outcomes.values()] == [
        errno.EIO
    ] * 4
    assert fake.calls == 1


def test_a_forked_child_syncs_though_the_parent_was_inside_an_fsync(
    dir_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child does not inherit the thread of the parent's fsync in flight
    (nor a lock it held): its own sync must not wait for it."""
    real_fsync = os.fsync
    fake = FakeFsync()
    monkeypatch.setattr(groupsync.os, "fsync", fake)
    syncs = DirSyncs()
    parent, _ = run_callers(syncs, dir_fd, 1, [])
    poll(lambda: fake.calls == 1)  # the parent's fsync is in flight
    pid = os.fork()
    if pid == 0:  # the child: a real fsync, which must return
        code = 1
        try:
            groupsync.os.fsync = real_fsync
            syncs.sync(dir_fd)
            code = 0
        finally:
            os._exit(code)
    try:
        deadline = time.monotonic() + WAIT
        while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the child's sync hung")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        fake.release.set()
        parent[0].join(WAIT)


def _synced_dirs(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, fail: frozenset[str] = frozenset()
) -> list[str]:
    """The data directory paths (relative) the bucket's DirSyncs is asked to
    fsync, in order; those in ``fail`` raise EIO instead."""
    root = Path(bucket.root)
    names = {
        (found.st_dev, found.st_ino): str(path.relative_to(root))
        for path in [root, *root.rglob("*")]
        if path.is_dir() and (found := path.stat())
    }
    calls: list[str] = []
    real_sync = bucket.dir_syncs.sync

    def named(fd: int) -> None:
        found = os.fstat(fd)
        name = names.get((found.st_dev, found.st_ino), "?")
        calls.append(name)
        if name in fail:
            raise OSError(errno.EIO, "Input/output error")
        real_sync(fd)

    monkeypatch.setattr(bucket.dir_syncs, "sync", named)
    return calls


def test_parallel_creates_share_the_fsyncs_of_uploads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create's rename into uploads/ is made durable through DirSyncs, so
    creates in flight together share one fsync of uploads/."""
    from mpuflask.storage.base import HttpMetadata
    from mpuflask.storage.filesystem import FilesystemBucket

    bucket = FilesystemBucket(
        tmp_path / "data", durable=True, min_part_size=1, upload_ttl=timedelta(days=1)
    )
    calls = _synced_dirs(bucket, monkeypatch)
    created: list[str] = []
    errors: list[BaseException] = []

    def create(number: int) -> None:
        try:
            info = bucket.create_multipart_upload(f"k{number}", HttpMetadata({}))
            created.append(info.upload_id)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not errors
    assert calls == ["uploads"] * 16
    listed = bucket.list_uploads_page(None, "", None, 100).uploads
    assert sorted(upload.upload_id for upload in listed) == sorted(created)


def test_a_create_whose_fsync_of_uploads_fails_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared fsync's error is the create's: it is undone, not half made."""
    from mpuflask.storage.base import HttpMetadata
    from mpuflask.storage.filesystem import FilesystemBucket

    bucket = FilesystemBucket(
        tmp_path / "data", durable=True, min_part_size=1, upload_ttl=timedelta(days=1)
    )
    calls = _synced_dirs(bucket, monkeypatch, fail=frozenset({"uploads"}))
    with pytest.raises(OSError, match="Input/output error"):
        bucket.create_multipart_upload("k", HttpMetadata({}))
    assert calls == ["uploads"]
    assert bucket.list_uploads_page(None, "", None, 100).uploads == []
    assert bucket.open_uploads(None) == 0
    for area in ("uploads", "tmp"):
        assert os.listdir(tmp_path / "data" / area) == []


def test_a_complete_and_a_delete_sync_their_shard_through_dirsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mpuflask.rules import PartRef
    from mpuflask.storage.base import HttpMetadata
    from mpuflask.storage.filesystem import FilesystemBucket
    from mpuflask.storage.fspublish import object_name

    bucket = FilesystemBucket(
        tmp_path / "data", durable=True, min_part_size=1, upload_ttl=timedelta(days=1)
    )
    info = bucket.create_multipart_upload("k", HttpMetadata({}))
    upload = bucket.resume_multipart_upload("k", info.upload_id)
    part = upload.upload_part(1, [b"body"])
    shard = os.path.join("objects", object_name("k")[0])
    calls = _synced_dirs(bucket, monkeypatch)
    upload.complete([PartRef(1, part.etag)])
    assert shard in calls
    del calls[:]
    bucket.delete("k")
    assert calls == [shard]
    assert bucket.head("k") is None
