"""Expiry and clean-up: the ``gc`` command and the periodic sweep in the server.

Unfinished uploads expire ``MPUFLASK_UPLOAD_TTL`` seconds after creation (R2's
default: 7 days); from then on their uploadId answers 10024, and a sweep
deletes their bytes. A sweep also removes what crashes left behind (see
:meth:`~mpuflask.storage.base.Bucket.sweep`).

Every gunicorn worker runs a :class:`PeriodicSweeper` thread (started by the
``post_worker_init`` hook in gunicorn.conf.py); a non-blocking flock on
``<data dir>/sweep.lock`` lets only one of them sweep at a time.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time

import click
from flask import Flask
from flask import current_app
from flask.cli import with_appcontext

from .storage import Bucket

log = logging.getLogger(__name__)


def sweep_once(bucket: Bucket, lock_path: str | None) -> int | None:
    """Sweep if no other process is sweeping; return items removed, or None."""
    if lock_path is None:
        return bucket.sweep()
    # Never through a symlink planted in the data dir (O_NOFOLLOW: ELOOP).
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another worker is sweeping right now
        started = time.monotonic()
        removed = bucket.sweep()
        log.info(
            "sweep removed %d item(s) in %.3f s",
            removed,
            time.monotonic() - started,
            extra={"swept": removed},
        )
        return removed
    finally:
        os.close(fd)  # the lock file stays: unlinking it would race (PITFALLS)


def lock_path_for(app: Flask) -> str | None:
    """The sweep lock of this app's store (the filesystem store's data dir)."""
    if app.config["MPUFLASK_STORE"] != "filesystem":
        return None
    return os.path.join(str(app.config["MPUFLASK_DATA_DIR"]), "sweep.lock")


class PeriodicSweeper(threading.Thread):
    """A daemon thread that sweeps every ``interval`` seconds until stopped."""

    def __init__(self, app: Flask, interval: float) -> None:
        super().__init__(name="mpuflask-sweeper", daemon=True)
        self.app = app
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        mpu = self.app.extensions["mpuflask"]
        lock_path = lock_path_for(self.app)
        while not self.stopped.wait(self.interval):
            try:
                removed = sweep_once(mpu.bucket, lock_path)
            except Exception:  # keep sweeping later; never kill the worker
                log.exception("periodic sweep failed")
                continue
            if removed is not None:
                mpu.metrics.sweeps.inc()
                mpu.metrics.swept.inc(removed)

    def stop(self) -> None:
        self.stopped.set()


def start_periodic_sweep(app: Flask) -> PeriodicSweeper | None:
    """Start the sweeper thread if ``MPUFLASK_SWEEP_INTERVAL`` is positive."""
    interval = float(app.config["MPUFLASK_SWEEP_INTERVAL"])
    if interval <= 0:
        return None
    sweeper = PeriodicSweeper(app, interval)
    sweeper.start()
    return sweeper


@click.command("gc")
@with_appcontext
def gc_command() -> None:
    """Delete expired uploads and crash leftovers now (safe while serving)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    removed = sweep_once(app.extensions["mpuflask"].bucket, lock_path_for(app))
    if removed is None:
        click.echo("another process is sweeping right now; nothing done")
    else:
        click.echo(f"removed {removed} expired upload(s) and leftover(s)")
