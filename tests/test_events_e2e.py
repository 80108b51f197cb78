"""One delivery loop per server under real gunicorn, on both stores.

Every worker runs a delivery loop, but only the holder of the outbox's lease
delivers: with several workers (and, on S3, two gateways over one bucket),
each event reaches the receiver exactly once when nothing fails.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import MIN_PART
from .servers import gunicorn_server
from .webhook_receiver import Receiver

SECRET = "e2e-secret"  # noqa: S105 (a test secret)


def _upload(url: str, key: str) -> str:
    created = requests.post(f"{url}{key}", params={"action": "mpu-create"}, timeout=30)
    upload_id = created.json()["uploadId"]
    part = requests.put(
        f"{url}{key}",
        params={"action": "mpu-uploadpart", "uploadId": upload_id, "partNumber": "1"},
        data=b"bytes of " + key.encode(),
        timeout=30,
    ).json()
    done = requests.post(
        f"{url}{key}",
        params={"action": "mpu-complete", "uploadId": upload_id},
        json={"parts": [part]},
        timeout=30,
    )
    assert done.status_code == 200, done.text
    return upload_id


def _pending(url: str) -> int:
    text = requests.get(url, params={"action": "metrics"}, timeout=30).text
    for line in text.splitlines():
        if line.startswith("mpuflask_events_pending "):
            return int(float(line.split()[1]))
    return -1


@pytest.mark.e2e
@pytest.mark.parametrize("store", ["filesystem", "s3"])
def test_each_event_is_delivered_once_by_one_loop(
    tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    env = {
        "MPUFLASK_MIN_PART_SIZE": str(MIN_PART),
        "MPUFLASK_WEBHOOK_SECRET": SECRET,
    }
    gateways = 1
    if store == "s3":
        engine: Any = request.getfixturevalue("s3_engine")
        env.update(engine.environment(request.getfixturevalue("s3_bucket")))
        gateways = 2
    with Receiver(SECRET) as receiver, ExitStack() as stack:
        # Slower than a loop's poll (filesystem 0.5 s, S3 2 s): a second loop,
        # were there one, would see each event while it is being delivered.
        receiver.answer_delay = 2.5 if store == "s3" else 0.7
        env["MPUFLASK_WEBHOOK_URL"] = receiver.url
        servers = []
        for number in range(gateways):
            (tmp_path / str(number)).mkdir()
            servers.append(
                stack.enter_context(
                    gunicorn_server(
                        tmp_path / str(number),
                        workers=3,
                        threads=4,
                        env=env,
                        data_dir=tmp_path / "data",
                    )
                )
            )
        uploads = {
            _upload(servers[n % gateways].url, f"k{n}"): f"k{n}" for n in range(6)
        }
        # Until every event is taken and the outbox is empty: from then on no
        # loop, were there a second one, has anything left to deliver.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            len(receiver.accepted()) < len(uploads) or _pending(servers[0].url) != 0
        ):
            time.sleep(0.05)
    got = receiver.all()
    assert sorted(d.event["uploadId"] for d in got) == sorted(uploads)
    assert {d.status for d in got} == {204}
    assert {d.signature for d in got} == {"ok"}
