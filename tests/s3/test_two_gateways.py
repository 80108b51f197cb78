"""Two gunicorn gateways over one engine: either can serve any step of an upload.

The point of the s3 store is that gateways keep no state another needs: parts
of one upload go alternately through both, complete through one, and the
object reads back identical through the other.
"""

from __future__ import annotations

import os
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
