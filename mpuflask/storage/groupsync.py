"""Group commit for directory fsyncs: one fsync for the parts that wait on it.

The parts of one upload arrive in parallel, and each is acknowledged only once
its directory has been fsynced after its rename. An fsync of a directory makes
every entry the directory holds durable, so one that *starts* after a part's
rename covers that part, whichever thread calls it. :class:`DirSyncs` lets the
threads of a process share them: a thread whose rename is done takes a ticket
for the next fsync to start; while one is in flight it waits, and the first
to find none running starts the next, for every ticket taken meanwhile.
Creates share the fsyncs of ``uploads/`` the same way, and completes and
deletes those of their key's shard of ``objects/`` (``sync_dirs``).

An fsync that fails fails every ticket it was to cover: a later fsync of the
same directory may report success for writes the kernel has already dropped
(Linux clears the error once reported), so nobody is told "durable" on its
strength.
"""

from __future__ import annotations

import os
import threading


class _Dir:
    """The fsync rounds of one directory (by device and inode)."""

    __slots__ = (
        "changed",
        "failed_round",
        "failure",
        "finished",
        "running",
        "started",
        "users",
    )

    def __init__(self) -> None:
        self.changed = threading.Condition(threading.Lock())
        self.started = 0  # rounds started; round n covers tickets taken before it
        self.finished = 0  # rounds over (they finish in order: one runs at a time)
        self.running = False
        #: The first round that failed, and how. Every ticket from that round
        #: on fails too, as long as anyone waits on this directory: a rename
        #: that the failed fsync tried to write may belong to a ticket taken
        #: a little later, and the next fsync may not report the error again.
        self.failed_round = 0
        self.failure: BaseException | None = None
        self.users = 0  # threads between ticket and answer (under DirSyncs' lock)


class DirSyncs:
    """Directory fsyncs shared by a process's threads (one per store).

    The state starts afresh in a forked child: the threads of an fsync in
    flight at the fork (and any lock they held) did not come along.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._dirs: dict[tuple[int, int], _Dir] = {}

    def sync(self, dir_fd: int) -> None:
        """Return once an fsync of ``dir_fd``'s directory that started after
        this call began has succeeded; raise the error if it failed."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._dirs = {}
        found = os.fstat(dir_fd)
        key = (found.st_dev, found.st_ino)
        lock, dirs = self._lock, self._dirs
        with lock:
            state = dirs.get(key)
            if state is None:
                state = dirs[key] = _Dir()
            state.users += 1
        try:
            failure, ran_it = self._wait_for_round(state, dir_fd)
        finally:
            with lock:
                state.users -= 1
                if not state.users:
                    del dirs[key]
        if failure is None:
            return
        if ran_it:
            raise failure
        raise OSError(
            getattr(failure, "errno", None), f"directory fsync failed: {failure}"
        ) from failure

    def _wait_for_round(
        self, state: _Dir, dir_fd: int
    ) -> tuple[BaseException | None, bool]:
        """The outcome for a change made before now, and whether this thread
        ran the fsync that decided it (it does if nobody else has started it)."""
        ran_it = False
        with state.changed:
            need = self._ticket(state)
            while state.finished < need and state.failure is None:
                if state.running:
                    state.changed.wait()
                    continue
                state.running = True
                state.started += 1
                round_ = state.started
                ran_it = True
                try:
                    state.changed.release()
                    try:
                        os.fsync(dir_fd)
                    finally:
                        state.changed.acquire()
                except BaseException as error:  # told to every waiter
                    if state.failure is None:
                        state.failed_round, state.failure = round_, error
                finally:
                    state.running = False
                    state.finished = round_
                    state.changed.notify_all()
            if state.failure is not None and need >= state.failed_round:
                return state.failure, ran_it and state.failed_round == need
            return None, False

    @staticmethod
    def _ticket(state: _Dir) -> int:
        """The round that covers a change made before now: the next to start."""
        return state.started + 1
