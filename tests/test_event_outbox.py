"""The outbox's rules, one crash at a time.

A forked child runs a real store step and dies (``os._exit``, as SIGKILL: no
clean-up runs) at a chosen point: after its intent is written and before the
step's commit point, or after the commit and before the event is made ready.
The parent then settles the outbox as the delivery loop would and checks the
rule: an event if and only if the step happened, with the id it would have
had anyway. docs/architecture.md ("Events") states the rules.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mpuflask.events import Event
from mpuflask.events.model import upload_event_id
from mpuflask.rules import multipart_etag
from mpuflask.storage import fspublish
from mpuflask.storage.filesystem import FilesystemBucket
from mpuflask.storage.fsevents import FileLease
from mpuflask.storage.fsevents import FilesystemOutbox
from mpuflask.storage.fsupload import FilesystemUpload

from .outbox_support import KILLED
from .outbox_support import Store
from .outbox_support import die
from .outbox_support import dying_after_intent
from .outbox_support import in_child_killed

# -- the filesystem store --------------------------------------------------------


@pytest.fixture
def fs_store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


def test_a_complete_killed_before_publishing_records_no_event(fs_store: Store) -> None:
    upload_id, ref = fs_store.start("k")
    in_child_killed(
        lambda: fs_store.complete("k", upload_id, ref),
        [(FilesystemUpload, "_publish", die)],
    )
    assert fs_store.intents() == [f"u.{upload_id}.json"]  # its writer died
    assert fs_store.delivered() == []
    assert fs_store.intents() == []  # the upload is still open: dropped
    fs_store.complete("k", upload_id, ref)  # the client tries again
    assert fs_store.delivered() == [
        ("object-published", upload_event_id("object-published", "k", upload_id))
    ]


def test_a_complete_killed_after_publishing_records_its_event(fs_store: Store) -> None:
    upload_id, ref = fs_store.start("k")
    in_child_killed(
        lambda: fs_store.complete("k", upload_id, ref),
        [(FilesystemOutbox, "_make_ready", die)],
    )
    assert fs_store.bucket.head("k") is not None  # published
    assert fs_store.delivered() == [
        ("object-published", upload_event_id("object-published", "k", upload_id))
    ]


def test_a_publish_overwritten_before_it_was_settled_still_counts(
    fs_store: Store,
) -> None:
    upload_id, ref = fs_store.start("k", b"first")
    in_child_killed(
        lambda: fs_store.complete("k", upload_id, ref),
        [(FilesystemOutbox, "_make_ready", die)],
    )
    second, second_ref = fs_store.start("k", b"second")
    fs_store.complete("k", second, second_ref)  # the first version is gone now
    assert sorted(fs_store.delivered()) == sorted(
        [
            ("object-published", upload_event_id("object-published", "k", upload_id)),
            ("object-published", upload_event_id("object-published", "k", second)),
        ]
    )


def test_a_complete_killed_between_close_and_publish_waits_for_the_sweep(
    fs_store: Store,
) -> None:
    upload_id, ref = fs_store.start("k")
    in_child_killed(
        lambda: fs_store.complete("k", upload_id, ref), [(fspublish, "publish", die)]
    )
    assert os.listdir(os.path.join(fs_store.bucket.root, "staging")) == [upload_id]
    assert fs_store.delivered() == []
    assert fs_store.intents() == [f"u.{upload_id}.json"]  # undecided until rolled back
    fs_store.bucket.sweep()  # rolls the upload back into uploads/
    assert fs_store.delivered() == [] and fs_store.intents() == []
    fs_store.complete("k", upload_id, ref)
    assert [t for t, _ in fs_store.delivered()] == ["object-published"]


def test_an_abort_after_a_killed_complete_is_the_only_event(fs_store: Store) -> None:
    upload_id, ref = fs_store.start("k")
    in_child_killed(
        lambda: fs_store.complete("k", upload_id, ref),
        [(FilesystemUpload, "_publish", die)],
    )
    fs_store.abort("k", upload_id)  # replaces the dead intent with its own
    assert fs_store.delivered() == [
        ("upload-aborted", upload_event_id("upload-aborted", "k", upload_id))
    ]


def test_an_abort_without_events_drops_a_killed_complete_s_intent(
    fs_store: Store,
) -> None:
    upload_id, ref = fs_store.start("k")
    in_child_killed(
        lambda: fs_store.complete("k", upload_id, ref),
        [(FilesystemUpload, "_publish", die)],
    )
    fs_store.bucket.events.configure(lambda t: False, lambda: None, lambda e: None)
    fs_store.abort("k", upload_id)  # no event wanted now; no false publish later
    assert fs_store.intents() == []


@pytest.mark.parametrize("after_commit", [False, True])
def test_an_abort_killed_mid_step(fs_store: Store, after_commit: bool) -> None:
    upload_id, _ = fs_store.start("k")
    patch = (
        (FilesystemOutbox, "_make_ready", die)
        if after_commit
        else (FilesystemOutbox, "_intent", dying_after_intent(FilesystemOutbox._intent))
    )
    in_child_killed(lambda: fs_store.abort("k", upload_id), [patch])
    expected = [("upload-aborted", upload_event_id("upload-aborted", "k", upload_id))]
    assert fs_store.delivered() == (expected if after_commit else [])
    uploads = os.listdir(os.path.join(fs_store.bucket.root, "uploads"))
    assert uploads == ([] if after_commit else [upload_id])


@pytest.mark.parametrize("after_commit", [False, True])
def test_a_delete_killed_mid_step(fs_store: Store, after_commit: bool) -> None:
    upload_id, ref = fs_store.start("k")
    fs_store.complete("k", upload_id, ref)
    fs_store.delivered()
    patch = (
        (FilesystemOutbox, "_settle_held", die)
        if after_commit
        else (FilesystemOutbox, "_intent", dying_after_intent(FilesystemOutbox._intent))
    )
    in_child_killed(lambda: fs_store.bucket.delete("k"), [patch])
    root = fs_store.bucket.root
    if after_commit:
        assert len(os.listdir(os.path.join(root, "events", "held"))) == 1
    delivered = fs_store.delivered()
    assert [t for t, _ in delivered] == (["object-deleted"] if after_commit else [])
    assert (fs_store.bucket.head("k") is None) == after_commit
    assert os.listdir(os.path.join(root, "events", "held")) == []
    assert os.listdir(os.path.join(root, "trash")) == []
    assert fs_store.intents() == []
    if after_commit:
        (event,) = [e for e in fs_store.recorded if e.type == "object-deleted"]
        assert (event.etag, event.size) == (multipart_etag([ref.etag]), 5)
        assert event.identity == "alice"


def test_an_intent_killed_while_being_written_is_removed(fs_store: Store) -> None:
    from mpuflask.storage import diskio

    real = diskio.write_all

    def dying_write(fd: int, data: Any) -> None:
        real(fd, data[:3])
        os._exit(KILLED)

    upload_id, ref = fs_store.start("k")
    in_child_killed(
        lambda: fs_store.complete("k", upload_id, ref),
        [(diskio, "write_all", dying_write)],
    )
    (temp,) = fs_store.intents()
    assert temp.startswith(".new.")
    assert fs_store.delivered() == []
    assert fs_store.intents() == [temp]  # young: its writer may be alive
    path = Path(fs_store.bucket.root, "events", "intents", temp)
    old = path.stat().st_mtime - 3600
    os.utime(path, (old, old))
    assert fs_store.delivered() == []
    assert fs_store.intents() == []
    fs_store.complete("k", upload_id, ref)  # the upload was never touched
    assert [t for t, _ in fs_store.delivered()] == ["object-published"]


def test_a_live_step_s_intent_is_left_alone(fs_store: Store) -> None:
    """Settling beside a step in progress (another process) never judges it."""
    upload_id, ref = fs_store.start("k")
    settled: list[int] = []
    real = FilesystemUpload._publish

    def publish_while_settling(self: Any, *args: Any) -> bool:
        settled.append(fs_store.bucket.events.settle())
        return real(self, *args)

    FilesystemUpload._publish = publish_while_settling  # type: ignore[method-assign]
    try:
        fs_store.complete("k", upload_id, ref)
    finally:
        FilesystemUpload._publish = real  # type: ignore[method-assign]
    assert settled == [0]
    assert [t for t, _ in fs_store.delivered()] == ["object-published"]


def test_the_lease_is_one_process_s_until_it_dies(fs_store: Store) -> None:
    lease_path = os.path.join(fs_store.bucket.root, "events", "lease")
    fs_store.bucket.events.lease()  # makes events/
    ready_read, ready_write = os.pipe()
    stop_read, stop_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        holder = FileLease(lease_path)
        os.write(ready_write, b"1" if holder.acquire() else b"0")
        os.read(stop_read, 1)
        os._exit(0)
    assert os.read(ready_read, 1) == b"1"
    mine = FileLease(lease_path)
    assert not mine.acquire()  # the child holds it
    os.write(stop_write, b"x")
    os.waitpid(pid, 0)
    assert mine.acquire()  # its holder died: taken over
    assert mine.acquire()  # and kept
    mine.release()
    for fd in (ready_read, ready_write, stop_read, stop_write):
        os.close(fd)


# -- a full disk ------------------------------------------------------------------

EVENT_OF_STEP = {
    "complete": "object-published",
    "complete over an object": "object-published",
    "abort": "upload-aborted",
    "delete": "object-deleted",
}


@pytest.mark.filesystem_only("fails the filesystem store's writes")
@pytest.mark.parametrize("action", list(EVENT_OF_STEP))
def test_disk_full_at_any_write_with_events_on(
    make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """Each write of a step, the outbox's included, failing in turn: a 507 that
    leaves the data dir as it was and no event, or the step's success and
    exactly its event (settled later if the fault hit after the commit)."""
    import errno

    from mpuflask.events import deliver_pending

    from .conftest import Flow
    from .fstree import failing_write
    from .fstree import tree
    from .test_faults import _WRITES
    from .test_faults import _full

    setup, act, operation, success, check = _WRITES[action]
    for nth in range(1, 80):
        root = tmp_path / f"run{nth}"
        app = make_app(MPUFLASK_DATA_DIR=str(root), PROPAGATE_EXCEPTIONS=False)
        got: list[Event] = []
        app.extensions["mpuflask"].after_event(got.append)
        flow = Flow(app.test_client())
        state = setup(flow)
        deliver_pending(app)
        got.clear()
        before = tree(root)
        with failing_write(monkeypatch, nth, errno.ENOSPC) as fault:
            response = act(flow, state)
        if response.status_code != success:
            assert (response.status_code, response.text) == (507, _full(operation)), (
                fault.fired
            )
            assert tree(root) == before, fault.fired
            assert deliver_pending(app) == 0 and got == [], fault.fired
            response = act(flow, state)  # room again: the step succeeds
        assert response.status_code == success, (fault.fired, response.text)
        check(flow, state, response)
        deliver_pending(app)
        assert [e.type for e in got] == [EVENT_OF_STEP[action]], fault.fired
        if not fault.fired:
            return
    pytest.fail("the step never finished without a fault")


def test_a_fresh_intent_temp_file_is_never_taken_for_a_dead_one(
    fs_store: Store,
) -> None:
    """Between creating its temp file and locking it, a writer holds no lock:
    only an unlocked temp file older than the grace period is a dead one."""
    fs_store.bucket.events.prepare()
    intents = Path(fs_store.bucket.root, "events", "intents")
    temp = intents / ".new.0123456789abcdef"
    temp.write_bytes(b"{")  # just created, not yet locked by its writer
    assert fs_store.bucket.events.settle() == 0
    assert temp.exists()
    old = temp.stat().st_mtime - 3600
    os.utime(temp, (old, old))  # its writer died long ago
    assert fs_store.bucket.events.settle() == 1
    assert not temp.exists()


def test_workers_starting_together_all_see_the_outbox_whole(tmp_path: Path) -> None:
    """Every worker makes events/ at start while others already look into it:
    none may see it half made (a 503 in the delivery loop before the fix)."""
    import threading

    root = tmp_path / "data"
    FilesystemBucket(root, min_part_size=1, upload_ttl=timedelta(1))
    errors: list[BaseException] = []

    def start(outbox: FilesystemOutbox, barrier: threading.Barrier, make: bool) -> None:
        try:
            barrier.wait()
            for _ in range(50):
                if make:
                    outbox.prepare()
                outbox.pending_count()
        except BaseException as error:
            errors.append(error)

    for _ in range(20):
        shutil.rmtree(root / "events", ignore_errors=True)
        outboxes = [
            FilesystemBucket(root, min_part_size=1, upload_ttl=timedelta(1)).events
            for _ in range(6)
        ]
        barrier = threading.Barrier(len(outboxes))
        threads = [
            threading.Thread(target=start, args=(outbox, barrier, n % 2 == 0))
            for n, outbox in enumerate(outboxes)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(os.listdir(root / "events")) == ["held", "intents", "ready"]
        assert os.listdir(root / "tmp") == []
