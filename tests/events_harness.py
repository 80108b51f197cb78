"""The events crash harness: SIGKILLs lose no event, duplicates keep their id.

Used by ``tests/test_events_crash.py`` (a short run in the suite) and by
``bench/events_crash.py`` (the long run: 100+ kills, figures printed).

What it does
------------
It runs gunicorn (our ``gunicorn.conf.py``, durable) with the webhook on,
pointed at a receiver in this process (:mod:`tests.webhook_receiver`) that
answers 500 to some deliveries, stalls past the webhook's timeout on others,
and is stopped and started again now and then. Client threads
(``tests/events_clients.py``), each on keys of its own, loop over: upload and
complete (a publish, or an overwrite), upload and abort, delete. A coordinator
waits for a seeded number of acknowledged requests, then SIGKILLs one worker
(gunicorn respawns it) or the master with all its workers, whatever they are
doing, and restarts gunicorn on the same data directory and port.

A request ends acknowledged (a whole answer), refused (no connection: it never
reached a server; retried), or cut (the connection died: it may or may not have
happened). Cut completes and aborts are resolved after the run with
mpu-listparts: the upload still open means the step did not happen; gone
means it did (each client works on its own uploads, and nothing expires).
Uploads left open are aborted at the end.

Then, with the last server running, it waits (bounded) for the receiver to
have everything, and checks:

* lost events: every acknowledged or resolved publish has an
  ``object-published`` event with the upload's id and the etag answered;
  every upload that was aborted has ``upload-aborted``; and the events of each
  key, in time order, end in the key's final state (its last publish with the
  etag a GET shows, or a delete if it holds nothing): a delete lost would
  leave a publish last;
* false events: no publish event for an upload whose complete was refused or
  did not happen, and no upload with two kinds of ending;
* duplicates: every delivery of one event (same type and upload, or same id)
  has the same id and the very same body;
* signatures: every delivery verifies with the secret;
* the outbox is empty at the end (``mpuflask_events_pending 0``).

Everything is bounded: requests time out, waits have deadlines, the run has a
time budget; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from contextlib import ExitStack

import requests

from tests.crash.driver import _wait_gone
from tests.crash.driver import kill_master
from tests.crash.driver import listening
from tests.events_checks import EventChecks
from tests.events_checks import expected
from tests.events_clients import MIN_PART
from tests.events_clients import OK
from tests.events_clients import EventsClients
from tests.events_report import INVARIANTS as INVARIANTS
from tests.events_report import EventsHarnessConfig
from tests.events_report import Report
from tests.events_report import Upload
from tests.servers import Server
from tests.servers import gunicorn_server
from tests.webhook_receiver import Receiver

SECRET = "events-harness-secret"  # noqa: S105 (a test secret)


class EventsHarness(EventsClients):
    """Clients, a server killed and restarted under them, then the checks."""

    def __init__(self, config: EventsHarnessConfig) -> None:
        super().__init__(config)
        self.receiver = Receiver(
            SECRET,
            fail_rate=config.fail_rate,
            stall_rate=config.stall_rate,
            stall_seconds=config.webhook_timeout * 2,
            seed=config.seed,
        )
        self.env = {
            "MPUFLASK_WEBHOOK_SECRET": SECRET,
            "MPUFLASK_WEBHOOK_TIMEOUT": str(config.webhook_timeout),
            "MPUFLASK_EVENT_RETRY_MAX": str(config.retry_max),
            "MPUFLASK_MIN_PART_SIZE": str(MIN_PART),
            "MPUFLASK_SWEEP_INTERVAL": "1",
            "MPUFLASK_LOG_FORMAT": "text",
            "GUNICORN_LOGLEVEL": "warning",
            "GUNICORN_GRACEFUL_TIMEOUT": "5",
        }
        self.server: Server | None = None
        self.stack = ExitStack()
        self.killed_workers: list[int] = []

    # -- the run --------------------------------------------------------------

    def run(self) -> Report:
        started = time.monotonic()
        rng = random.Random(self.cfg.seed)
        self.receiver.start()
        self.env["MPUFLASK_WEBHOOK_URL"] = self.receiver.url
        clients = [
            threading.Thread(target=self.client, args=(n,), daemon=True)
            for n in range(self.cfg.clients)
        ]
        try:
            self.start_server()
            for thread in clients:
                thread.start()
            kills = 0
            while kills < self.cfg.kills:
                if time.monotonic() - started > self.cfg.duration:
                    break
                self.wait_progress(rng.randint(*self.cfg.progress))
                kills += 1
                master = kills % self.cfg.master_every == 0
                if master:
                    self.kill_master()
                else:
                    self.kill_worker(rng)
                if kills % self.cfg.receiver_restart_every == 0:
                    self.receiver.restart()
                    self.count("receiver_restarts")
            self.stopping.set()
            for thread in clients:
                thread.join(self.cfg.request_timeout * 2)
            self.receiver.fail_rate = self.receiver.stall_rate = 0.0
            self.resolve()
            self.wait_delivered()
            self.check()
        except Exception as error:
            self.violation("harness errors", repr(error))
        finally:
            self.stopping.set()
            self.stop_server()
            self.keep_log()
            self.receiver.stop()
        return Report(
            self.cfg, self.counts, dict(self.violations), time.monotonic() - started
        )

    def wait_progress(self, count: int) -> None:
        with self.progress:
            target = self.acked + count
            deadline = time.monotonic() + 60
            while self.acked < target and time.monotonic() < deadline:
                self.progress.wait(1)

    def kill_worker(self, rng: random.Random) -> None:
        assert self.server is not None
        workers = self.server.worker_pids()
        if workers:
            victim = rng.choice(workers)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.count("kills_worker")

    def kill_master(self) -> None:
        assert self.server is not None
        self.killed_workers = kill_master(self.server)
        self.count("kills_master")
        self.stop_server()
        self.start_server()
        self.count("restarts")

    def keep_log(self) -> None:
        """Append the last server's log to ``gunicorn-all.log`` (a restart
        truncates it)."""
        log = self.cfg.workdir / f"gunicorn-{self.port}.log"
        if log.exists():
            with (self.cfg.workdir / "gunicorn-all.log").open("ab") as kept:
                kept.write(log.read_bytes())

    def start_server(self) -> None:
        for _ in range(5):
            self.keep_log()
            stack = ExitStack()
            try:
                self.server = stack.enter_context(
                    gunicorn_server(
                        self.cfg.workdir,
                        workers=self.cfg.workers,
                        threads=self.cfg.threads,
                        env=self.env,
                        data_dir=self.cfg.workdir / "data",
                        port=self.port,
                    )
                )
            except (RuntimeError, requests.RequestException):
                stack.close()
                self.count("slow_starts")
                continue
            self.stack = stack
            return
        raise RuntimeError("gunicorn would not start")

    def stop_server(self) -> None:
        server, self.server = self.server, None
        killed, self.killed_workers = self.killed_workers, []
        _wait_gone(killed)
        self.stack.close()
        if server is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        deadline = time.monotonic() + 20
        while listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.01)

    # -- after the run --------------------------------------------------------

    def resolve(self) -> None:
        """Decide the cut steps with mpu-listparts; abort what is left open."""
        for upload in self.uploads:
            if upload.complete == "published":
                continue
            still_open = self.is_open(upload)
            if upload.complete == "unknown":
                if not still_open:
                    upload.complete = "published"
                    upload.etag = ""  # never answered: any etag will do
                    self.count("resolved_published")
                    continue
                upload.complete = "not published"
                self.count("resolved_not_published")
            if still_open:
                outcome, reply = self.call(
                    "DELETE", upload.key, action="mpu-abort", uploadId=upload.upload_id
                )
                if outcome != OK or reply.status_code != 204:
                    raise RuntimeError(f"abort at the end failed: {outcome}")
                upload.abort = True
            elif not upload.abort:
                self.violation(
                    "harness errors", f"{upload.upload_id} is gone, and nobody ended it"
                )

    def is_open(self, upload: Upload) -> bool:
        outcome, reply = self.call(
            "GET", upload.key, action="mpu-listparts", uploadId=upload.upload_id
        )
        if outcome != OK or reply.status_code not in (200, 400):
            raise RuntimeError(f"listparts failed: {outcome} {reply}")
        return bool(reply.status_code == 200)

    def wait_delivered(self) -> None:
        published, aborted = expected(self.uploads)
        deadline = time.monotonic() + self.cfg.delivery_wait
        while time.monotonic() < deadline:
            seen = {
                (e["type"], e.get("uploadId")) for e in self.receiver.accepted_events()
            }
            missing = [u for u in published if ("object-published", u) not in seen]
            missing += [u for u in aborted if ("upload-aborted", u) not in seen]
            if not missing and self.pending() == 0:
                return
            time.sleep(0.2)

    def pending(self) -> int:
        outcome, reply = self.call("GET", "", action="metrics")
        if outcome != OK:
            return -1
        for line in reply.text.splitlines():
            if line.startswith("mpuflask_events_pending "):
                return int(float(line.split()[1]))
        return -1

    def check(self) -> None:
        self.counts["stalled"] = self.receiver.stalls
        self.counts["cut_short"] = self.receiver.cut_short
        checks = EventChecks(self.counts, self.violations)
        deliveries, accepted = self.receiver.all(), self.receiver.accepted()
        events = checks.deliveries(self.uploads, deliveries, accepted)
        checks.keys(self.uploads, events, self.etag_of)
        left = self.pending()
        if left != 0:
            self.violation("events left pending", f"mpuflask_events_pending {left}")

    def etag_of(self, key: str) -> str | None:
        """The etag a HEAD of ``key`` shows, or None if it holds nothing."""
        outcome, reply = self.call("HEAD", key, action="get")
        if outcome != OK:
            raise RuntimeError(f"HEAD {key} failed")
        if reply.status_code == 200:
            return str(reply.headers["etag"].strip('"'))
        return None


def run_events_harness(config: EventsHarnessConfig) -> Report:
    return EventsHarness(config).run()
