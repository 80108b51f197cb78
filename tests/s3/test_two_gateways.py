"""Two gunicorn gateways over one engine: either can serve any step of an upload.

The point of the s3 store is that gateways keep no state another needs: parts
of one upload go alternately through both, complete through one, and the
object reads back identical through the other.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from ..conftest import MIN_PART
from ..oracle import md5
from ..servers import gunicorn_server

PART = 256 * 1024  # above the tests' minimum part size, several read windows


@pytest.mark.e2e
def test_parts_alternate_between_two_gateways(
    tmp_path: Path, s3_engine: Any, s3_bucket: str
) -> None:
    env = {
        **s3_engine.environment(s3_bucket),
        "MPUFLASK_MIN_PART_SIZE": str(MIN_PART),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        gunicorn_server(tmp_path / "a", workers=2, threads=4, env=env) as a,
        gunicorn_server(tmp_path / "b", workers=2, threads=4, env=env) as b,
    ):
        parts = [os.urandom(PART) for _ in range(5)] + [os.urandom(1234)]
        key = "videos/cat.mp4"
        created = requests.post(
            f"{a.url}{key}?action=mpu-create",
            headers={"Content-Type": "video/mp4"},
            timeout=30,
        )
        assert created.status_code == 200, created.text
        upload_id = created.json()["uploadId"]

        listed = []
        for number, data in enumerate(parts, 1):
            gateway = a if number % 2 else b
            response = requests.put(
                f"{gateway.url}{key}?action=mpu-uploadpart"
                f"&uploadId={upload_id}&partNumber={number}",
                data=data,
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert response.json()["etag"] == md5(data)
            listed.append(response.json())

        # Each gateway sees every part, whichever one received it.
        for gateway in (a, b):
            seen = requests.get(
                f"{gateway.url}{key}?action=mpu-listparts&uploadId={upload_id}",
                timeout=30,
            ).json()["parts"]
            assert [p["partNumber"] for p in seen] == [1, 2, 3, 4, 5, 6]

        done = requests.post(
            f"{a.url}{key}?action=mpu-complete&uploadId={upload_id}",
            json={"parts": listed},
            timeout=60,
        )
        assert done.status_code == 200, done.text

        got = requests.get(f"{b.url}{key}?action=get", timeout=60)
        assert got.status_code == 200
        assert got.content == b"".join(parts)
        assert got.headers["etag"] == done.headers["etag"]
        assert got.headers["Content-Type"] == "video/mp4"
        ranged = requests.get(
            f"{b.url}{key}?action=get", headers={"Range": "bytes=1000-2999"}, timeout=30
        )
        assert ranged.status_code == 206
        assert ranged.content == b"".join(parts)[1000:3000]

        # The upload is finished for both.
        late = requests.put(
            f"{b.url}{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=7",
            data=b"late",
            timeout=30,
        )
        assert late.text == (
            "uploadPart: The specified multipart upload does not exist. (10024)"
        )
        assert requests.delete(f"{b.url}{key}?action=delete", timeout=30).ok
        assert requests.get(f"{a.url}{key}?action=get", timeout=30).status_code == 404

    # Neither gateway kept anything of its own on disk.
    assert not (a.data_dir).exists()
    assert not (b.data_dir).exists()


# -- races and crashes across two gateways (issue 11) --------------------------

LEASE = "2"  # seconds: a killed gateway's claim runs out quickly
NO_SUCH_UPLOAD = "The specified multipart upload does not exist. (10024)"


def _env(s3_engine: Any, s3_bucket: str) -> dict[str, str]:
    return {
        **s3_engine.environment(s3_bucket),
        "MPUFLASK_MIN_PART_SIZE": str(MIN_PART),
        "MPUFLASK_S3_COMPLETE_LEASE": LEASE,
    }


def _upload(url: str, key: str, parts: list[bytes]) -> tuple[str, list[Any]]:
    created = requests.post(f"{url}{key}?action=mpu-create", timeout=30)
    assert created.status_code == 200, created.text
    upload_id = created.json()["uploadId"]
    listed = []
    for number, data in enumerate(parts, 1):
        sent = requests.put(
            f"{url}{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber={number}",
            data=data,
            timeout=30,
        )
        assert sent.status_code == 200, sent.text
        listed.append(sent.json())
    return upload_id, listed


def _complete(url: str, key: str, upload_id: str, parts: Any) -> requests.Response:
    return requests.post(
        f"{url}{key}?action=mpu-complete&uploadId={upload_id}",
        json={"parts": parts},
        timeout=120,
    )


def _together(*calls: Any) -> list[Any]:
    """Run the calls in threads released at once; their results, in order."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait(timeout=60)
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return results


@pytest.mark.e2e
def test_concurrent_completes_through_two_gateways(
    tmp_path: Path, s3_engine: Any, s3_bucket: str
) -> None:
    env = _env(s3_engine, s3_bucket)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        gunicorn_server(tmp_path / "a", workers=2, threads=4, env=env) as a,
        gunicorn_server(tmp_path / "b", workers=2, threads=4, env=env) as b,
    ):
        parts = [os.urandom(PART) for _ in range(3)] + [b"tail"]
        for trial in range(5):
            key = f"race-{trial}"
            upload_id, listed = _upload(a.url, key, parts)
            answers = _together(
                *(
                    lambda url=url: _complete(url, key, upload_id, listed)  # noqa: B023
                    for url in (a.url, b.url) * 3
                )
            )
            got = sorted((r.status_code, r.text) for r in answers)
            assert (
                got
                == [(200, "")]
                + [(400, f"completeMultipartUpload: {NO_SUCH_UPLOAD}")] * 5
            ), got
            read = requests.get(f"{b.url}{key}?action=get", timeout=60)
            assert read.content == b"".join(parts)


@pytest.mark.e2e
def test_parts_racing_completes_through_two_gateways(
    tmp_path: Path, s3_engine: Any, s3_bucket: str
) -> None:
    """A part answered 200 is in the object if the complete lists it; a
    complete never publishes a part that a 200 had already replaced."""
    env = _env(s3_engine, s3_bucket)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        gunicorn_server(tmp_path / "a", workers=2, threads=4, env=env) as a,
        gunicorn_server(tmp_path / "b", workers=2, threads=4, env=env) as b,
    ):
        first = os.urandom(PART)
        for trial in range(6):
            key = f"racing-{trial}"
            old, new = os.urandom(100), os.urandom(99)
            upload_id, (one, two) = _upload(a.url, key, [first, old])
            url = (
                f"{a.url}{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=2"
            )
            put, done = _together(
                lambda url=url, new=new: requests.put(url, data=new, timeout=60),  # noqa: B023
                lambda: _complete(b.url, key, upload_id, [one, two]),  # noqa: B023
            )
            got = requests.get(f"{a.url}{key}?action=get", timeout=60)
            if done.status_code == 200:
                # The complete won: the replacing part must not have been taken.
                assert (put.status_code, put.text) == (
                    400,
                    f"uploadPart: {NO_SUCH_UPLOAD}",
                ), trial
                assert got.content == first + old
                continue
            # The part won: listed with the old etag, the complete is refused,
            # and the new part is there for the next complete.
            assert put.status_code == 200, put.text
            assert done.text == (
                "completeMultipartUpload: One or more of the specified parts "
                "could not be found. (10025)"
            )
            assert got.status_code == 404
            again = _complete(a.url, key, upload_id, [one, put.json()])
            assert again.status_code == 200, again.text
            got = requests.get(f"{b.url}{key}?action=get", timeout=60)
            assert got.content == first + new


@pytest.mark.e2e
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.1])
def test_a_gateway_killed_mid_complete_is_finished_by_the_other(
    tmp_path: Path, s3_engine: Any, s3_bucket: str, delay: float
) -> None:
    """SIGKILL every process of the gateway completing an upload, at some
    point of its complete; the client's retries through the other gateway
    publish exactly the listed parts, or are told 10024 once they are."""
    env = _env(s3_engine, s3_bucket)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Parts left out and a small one in the middle: the longest complete.
    parts = [os.urandom(PART) for _ in range(6)] + [b"small", b"last"]
    chosen = [0, 1, 2, 3, 4, 6]
    with gunicorn_server(tmp_path / "b", workers=2, threads=4, env=env) as b:
        with gunicorn_server(tmp_path / "a", workers=2, threads=4, env=env) as a:
            upload_id, listed = _upload(a.url, "k", parts)
            listed = [listed[i] for i in chosen]
            pending = threading.Thread(
                target=lambda: _swallow(
                    lambda: _complete(a.url, "k", upload_id, listed)
                )
            )
            pending.start()
            threading.Event().wait(delay)
            for pid in [*a.worker_pids(), a.process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            pending.join(timeout=120)
        deadline = time.monotonic() + 120
        while True:
            retry = _complete(b.url, "k", upload_id, listed)
            if retry.status_code != 503 or time.monotonic() > deadline:
                break
        if retry.status_code != 200:
            assert retry.text == f"completeMultipartUpload: {NO_SUCH_UPLOAD}"
        got = requests.get(f"{b.url}k?action=get", timeout=60)
        assert got.content == b"".join(parts[i] for i in chosen)


def _swallow(call: Any) -> None:
    """Run ``call``; the connection dies with the gateway, that is expected."""
    with contextlib.suppress(requests.RequestException):
        call()
