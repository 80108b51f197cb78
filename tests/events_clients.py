"""The events crash harness's client threads (see ``tests/events_harness.py``).

Each client, on keys of its own, loops over: upload and complete (a publish,
or an overwrite), upload and abort, delete. Every request goes on a fresh
connection and ends acknowledged, refused (no server: sent again) or cut (it
may or may not have happened); each upload records how it ended, for the
checks after the run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections import defaultdict
from typing import Any

import requests

from tests.events_report import EventsHarnessConfig
from tests.events_report import Upload
from tests.servers import free_port

MIN_PART = 4096

OK, REFUSED, CUT = "ok", "refused", "cut"


class EventsClients:
    """The clients' requests, and the counts and violations they record."""

    def __init__(self, config: EventsHarnessConfig) -> None:
        self.cfg = config
        self.counts: Counter[str] = Counter()
        self.violations: dict[str, list[str]] = defaultdict(list)
        self.port = free_port()
        self.uploads: list[Upload] = []
        self.lock = threading.Lock()
        self.acked = 0
        self.progress = threading.Condition(self.lock)
        self.stopping = threading.Event()

    # -- bookkeeping ----------------------------------------------------------

    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counts[name] += by

    def violation(self, name: str, detail: str) -> None:
        with self.lock:
            self.violations[name].append(detail)

    def acknowledged(self, name: str) -> None:
        with self.progress:
            self.counts[name] += 1
            self.acked += 1
            self.progress.notify_all()

    # -- requests -------------------------------------------------------------

    def call(self, method: str, key: str, **params: str) -> tuple[str, Any]:
        """One request on a fresh connection; retried while refused (no server).

        A fresh connection per request: a request refused at connect never
        reached a server, so it is safe to send again.
        """
        url = f"http://127.0.0.1:{self.port}/{key}"
        data: bytes | None = params.pop("_data", None)  # type: ignore[assignment]
        json_body = params.pop("_json", None)
        deadline = time.monotonic() + 120
        while True:
            try:
                response = requests.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    json=json_body,
                    headers={"Connection": "close"},
                    timeout=self.cfg.request_timeout,
                )
                if response.status_code >= 500:
                    self.violation(
                        "server errors (5xx)",
                        f"{method} {key} {params}: {response.status_code} "
                        f"{response.text[:200]} (request "
                        f"{response.headers.get('X-Request-Id')})",
                    )
                return OK, response
            except requests.ConnectionError as error:
                if "refused" not in str(error).lower():
                    return CUT, error
            except requests.RequestException as error:
                return CUT, error
            if self.stopping.is_set() or time.monotonic() > deadline:
                return REFUSED, None
            time.sleep(0.05)  # the server is being restarted: try again

    # -- clients --------------------------------------------------------------

    def client(self, number: int) -> None:
        rng = random.Random(self.cfg.seed * 1000 + number)
        keys = [f"c{number}/k{j}" for j in range(self.cfg.keys_per_client)]
        try:
            while not self.stopping.is_set():
                key = rng.choice(keys)
                roll = rng.random()
                if roll < 0.55:
                    self.upload(key, rng, complete=True)
                elif roll < 0.75:
                    self.upload(key, rng, complete=False)
                else:
                    self.delete(key)
        except Exception as error:  # a harness bug: say so, never hang
            self.violation("harness errors", f"client {number}: {error!r}")

    def upload(self, key: str, rng: random.Random, complete: bool) -> None:
        outcome, reply = self.call("POST", key, action="mpu-create")
        if outcome != OK or reply.status_code != 200:
            return  # cut: an orphan upload nobody knows, which never ends
        upload = Upload(key, reply.json()["uploadId"])
        with self.lock:
            self.uploads.append(upload)
        sizes = [MIN_PART, rng.randint(1, MIN_PART)][: rng.randint(1, 2)]
        parts = []
        for number, size in enumerate(sizes, 1):
            data = os.urandom(size)
            outcome, reply = self.call(
                "PUT",
                key,
                action="mpu-uploadpart",
                uploadId=upload.upload_id,
                partNumber=str(number),
                _data=data,  # type: ignore[arg-type]
            )
            if outcome != OK or reply.status_code != 200:
                complete = False
                break
            parts.append({"partNumber": number, "etag": reply.json()["etag"]})
        if complete:
            self.complete(upload, parts)
        else:
            self.abort(upload)

    def complete(self, upload: Upload, parts: list[dict[str, Any]]) -> None:
        outcome, reply = self.call(
            "POST",
            upload.key,
            action="mpu-complete",
            uploadId=upload.upload_id,
            _json={"parts": parts},  # type: ignore[arg-type]
        )
        if outcome == OK and reply.status_code == 200:
            upload.etag = reply.headers["etag"].strip('"')
            upload.complete = "published"
            self.acknowledged("ack_complete")
        elif outcome == OK:
            upload.complete = "not published"
            self.count("refused_complete")
        elif outcome == CUT:
            upload.complete = "unknown"
            self.count("cut_complete")
        # REFUSED: only when stopping; the upload stays open (aborted at the end)

    def abort(self, upload: Upload) -> None:
        outcome, reply = self.call(
            "DELETE", upload.key, action="mpu-abort", uploadId=upload.upload_id
        )
        if outcome == OK and reply.status_code == 204:
            upload.abort = True
            self.acknowledged("ack_abort")
        elif outcome == CUT:
            upload.abort = True  # resolved at the end
            self.count("cut_abort")

    def delete(self, key: str) -> None:
        outcome, reply = self.call("DELETE", key, action="delete")
        if outcome == OK and reply.status_code == 204:
            self.acknowledged("ack_delete")
        elif outcome == CUT:
            self.count("cut_delete")
