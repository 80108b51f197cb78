"""Many clients at once on one upload, across gunicorn's worker processes."""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

import pytest

from tests.servers import Server

from ..oracle import md5
from ..oracle import multipart_etag
from .support import NO_SUCH_UPLOAD
from .support import Api
from .support import address
from .support import serve
from .support import stored_files
from .support import wait_for

PART_SIZE = 256 * 1024
ROUNDS = 30
#: Small parts, and a sweep every 0.2 s running beside the races.
RACE_SETTINGS = {"MPUFLASK_MIN_PART_SIZE": "1024", "MPUFLASK_SWEEP_INTERVAL": "0.2"}


@pytest.mark.e2e
def test_parts_sent_in_parallel_from_many_threads_assemble_whole(
    tmp_path: Path,
) -> None:
    parts = [os.urandom(PART_SIZE) for _ in range(23)] + [os.urandom(1000)]
    numbers = list(range(1, len(parts) + 1))
    random.Random(24).shuffle(numbers)

    with (
        serve(tmp_path, MPUFLASK_MIN_PART_SIZE=str(PART_SIZE)) as server,
        Api(server) as api,
    ):
        upload_id = api.create("parallel.bin")
        start = threading.Barrier(16)

        def send(number: int) -> dict[str, Any]:
            if number in numbers[:16]:
                start.wait(timeout=30)  # the first 16 go out together
            return api.part("parallel.bin", upload_id, number, parts[number - 1])

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, numbers))

        assert sorted(a["partNumber"] for a in answers) == list(range(1, 25))
        listed = api.list_parts("parallel.bin", upload_id)
        assert listed.status_code == 200, listed.text
        assert listed.json()["parts"] == [
            {"partNumber": n, "etag": md5(data), "size": len(data)}
            for n, data in enumerate(parts, 1)
        ]
        etag = api.complete(
            "parallel.bin",
            upload_id,
            [{"partNumber": n, "etag": md5(data)} for n, data in enumerate(parts, 1)],
        )
        assert etag == f'"{multipart_etag(parts)}"'
        api.assert_object("parallel.bin", b"".join(parts), etag)


def _target(key: str, **params: str) -> str:
    return f"/{quote(key)}?{urlencode(params)}"


def _connected(server: Server) -> http.client.HTTPConnection:
    """A connection already open, so the barrier releases requests, not handshakes."""
    connection = http.client.HTTPConnection(*address(server), timeout=30)
    connection.connect()
    return connection


def _race(
    server: Server, calls: list[tuple[str, str, bytes | None]]
) -> list[tuple[int, str, str | None]]:
    """Send ``(method, target, body)`` requests at once; (status, text, etag) each."""
    connections = [_connected(server) for _ in calls]
    start = threading.Barrier(len(calls))
    results: list[tuple[int, str, str | None] | BaseException] = [
        RuntimeError("never ran")
    ] * len(calls)

    def run(index: int) -> None:
        method, target, body = calls[index]
        connection = connections[index]
        try:
            start.wait(timeout=30)
            headers = {"Content-Type": "application/json"} if body else {}
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
            results[index] = (response.status, text, response.getheader("etag"))
        except BaseException as error:  # reported by the main thread
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    answers = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        answers.append(result)
    return answers


def _prepared_upload(api: Api, key: str) -> tuple[str, bytes, str, bytes]:
    """An upload with two parts; returns its id, its bytes, etag and complete body."""
    parts = [os.urandom(2048), os.urandom(700)]
    upload_id = api.create(key)
    listed = [api.part(key, upload_id, n, data) for n, data in enumerate(parts, 1)]
    body = json.dumps({"parts": listed}).encode()
    return upload_id, b"".join(parts), f'"{multipart_etag(parts)}"', body


def _assert_upload_gone(api: Api, key: str, upload_id: str) -> None:
    """The uploadId now answers 10024 to a late part and to a listing."""
    response = api.put_part(key, upload_id, 3, b"late")
    assert (response.status_code, response.text) == (
        400,
        NO_SUCH_UPLOAD.format("uploadPart"),
    )
    response = api.list_parts(key, upload_id)
    assert (response.status_code, response.text) == (
        400,
        NO_SUCH_UPLOAD.format("listParts"),
    )


def _assert_published_then_delete(api: Api, key: str, data: bytes, etag: str) -> None:
    """The object reads back whole and is all that is left of its upload.

    Then delete it, and wait until its files are gone too.
    """
    api.assert_object(key, data, etag)
    data_dir = api.server.data_dir
    files = stored_files(data_dir)
    assert all(name.startswith("objects/") for name in files), files
    part_bytes = sum(size for name, size in files.items() if ".json" not in name)
    assert part_bytes == len(data), files
    api.delete(key)
    api.assert_absent(key)
    # The GET above may still pin the version for a moment after its last
    # byte; then the periodic sweep reclaims it.
    wait_for(lambda: stored_files(data_dir) == {}, "the deleted object's files to go")


@pytest.mark.e2e
def test_complete_racing_abort_has_exactly_one_winner(tmp_path: Path) -> None:
    outcomes = {"complete": 0, "abort": 0}
    with serve(tmp_path, **RACE_SETTINGS) as server, Api(server) as api:
        for round_number in range(ROUNDS):
            key = f"race/abort/{round_number}"
            upload_id, data, etag, body = _prepared_upload(api, key)
            calls = [
                ("POST", _target(key, action="mpu-complete", uploadId=upload_id), body),
                ("DELETE", _target(key, action="mpu-abort", uploadId=upload_id), None),
            ]
            if round_number % 2:
                calls.reverse()  # neither is always the first thread started
            answers = dict(
                zip([c[0] for c in calls], _race(server, calls), strict=True)
            )
            completed, aborted = answers["POST"], answers["DELETE"]

            # An abort always answers 204, whoever won.
            assert aborted == (204, "", None)
            _assert_upload_gone(api, key, upload_id)
            if completed[0] == 200:
                outcomes["complete"] += 1
                assert completed == (200, "", etag)
                _assert_published_then_delete(api, key, data, etag)
            else:
                outcomes["abort"] += 1
                assert completed == (
                    400,
                    NO_SUCH_UPLOAD.format("completeMultipartUpload"),
                    None,
                )
                api.assert_absent(key)
                # The abort moved the upload to the trash before answering
                # 204, and frees its bytes right after the answer (a bounded
                # wait: on a loaded machine that may come a moment later).
                wait_for(
                    lambda: stored_files(server.data_dir) == {},
                    f"the aborted upload's files to go ({outcomes})",
                )
    assert sum(outcomes.values()) == ROUNDS


@pytest.mark.e2e
def test_complete_racing_complete_publishes_once(tmp_path: Path) -> None:
    with serve(tmp_path, **RACE_SETTINGS) as server, Api(server) as api:
        for round_number in range(ROUNDS):
            key = f"race/complete/{round_number}"
            upload_id, data, etag, body = _prepared_upload(api, key)
            target = _target(key, action="mpu-complete", uploadId=upload_id)
            answers = sorted(_race(server, [("POST", target, body)] * 2))

            assert answers == [
                (200, "", etag),
                (400, NO_SUCH_UPLOAD.format("completeMultipartUpload"), None),
            ]
            _assert_upload_gone(api, key, upload_id)
            _assert_published_then_delete(api, key, data, etag)
