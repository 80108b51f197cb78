"""The threads a transfer runs its parts (or ranges) on.

On a failure the transfer's cancel event is set, so parts still streaming stop
at their next block and queued ones never start. On Ctrl-C the caller gets
control back at once instead of waiting for requests still in flight (a
part held by a slow server could take minutes to answer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed
from concurrent.futures import wait
from contextlib import contextmanager
from typing import TypeVar

from .errors import Cancelled

T = TypeVar("T")


@contextmanager
def worker_pool(
    size: int, cancel: threading.Event, name: str, *, wait_on_interrupt: bool = False
) -> Iterator[ThreadPoolExecutor]:
    """A thread pool that cancels its work when the ``with`` body fails.

    ``wait_on_interrupt``: join the threads even on Ctrl-C, for work that
    shares a resource the caller will close (a download's file descriptor).
    """
    pool = ThreadPoolExecutor(size, thread_name_prefix=name)
    try:
        yield pool
    except BaseException as error:
        cancel.set()
        interrupted = isinstance(error, KeyboardInterrupt)
        pool.shutdown(wait=wait_on_interrupt or not interrupted, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_all(
    pool: ThreadPoolExecutor, cancel: threading.Event, tasks: Sequence[Callable[[], T]]
) -> list[T]:
    """Run ``tasks`` on ``pool``; their results in order, or the first real failure.

    A failing task sets ``cancel`` from its own thread, at once, so no queued
    task starts after it; the others then fail with :class:`Cancelled`,
    possibly before the failure itself is seen here, so that one is raised.
    """

    def guarded(task: Callable[[], T]) -> T:
        try:
            return task()
        except BaseException:
            cancel.set()
            raise

    futures = [pool.submit(guarded, task) for task in tasks]
    try:
        for future in as_completed(futures):
            future.result()
    except BaseException as error:
        for future in futures:
            future.cancel()
        if isinstance(error, Cancelled):
            raise _first_cause(futures) from None
        raise
    return [future.result() for future in futures]


def run_bounded(
    pool: ThreadPoolExecutor,
    cancel: threading.Event,
    tasks: Iterable[Callable[[], T]],
    limit: int,
) -> list[T]:
    """Like :func:`run_all`, but take the next task only while fewer than
    ``limit`` run.

    ``tasks`` is iterated lazily, on the caller's thread, so an iterator that
    reads its task's data as it makes it (standard input, part by part) holds
    at most ``limit`` tasks' data at once.
    """

    def guarded(task: Callable[[], T]) -> T:
        try:
            return task()
        except BaseException:
            cancel.set()
            raise

    futures: list[Future[T]] = []
    running: set[Future[T]] = set()
    try:
        for task in tasks:
            future = pool.submit(guarded, task)
            futures.append(future)
            running.add(future)
            while len(running) >= limit:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for finished in done:
                    finished.result()
            del task, future  # the next task's data replaces this one's
        for future in as_completed(futures):
            future.result()
    except BaseException as error:
        for future in futures:
            future.cancel()
        if isinstance(error, Cancelled):
            raise _first_cause(futures) from None
        raise
    return [future.result() for future in futures]


def _first_cause(futures: Sequence[Future[T]]) -> BaseException:
    failures = [
        error
        for future in futures
        if not future.cancelled() and (error := future.exception()) is not None
    ]
    causes = [error for error in failures if not isinstance(error, Cancelled)]
    return (causes or failures or [Cancelled("cancelled")])[0]
