"""Expiry: visible to clients, 10024 once past, bytes gone after a sweep."""

from __future__ import annotations

import fcntl
import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from mpuflask.sweeper import lock_path_for
from mpuflask.sweeper import sweep_once

from .conftest import Flow
from .conftest import holds

TTL = 3600


def test_expiry_is_returned_by_create_and_listparts(make_app: Any) -> None:
    app = make_app(MPUFLASK_UPLOAD_TTL=TTL)
    client = app.test_client()
    before = datetime.now(UTC)
    created = client.post("/k?action=mpu-create").json
    expires = datetime.fromisoformat(created["expires"])
    assert before + timedelta(seconds=TTL) <= expires
    assert expires <= datetime.now(UTC) + timedelta(seconds=TTL)
    listed = client.get(f"/k?action=mpu-listparts&uploadId={created['uploadId']}").json
    assert listed["expires"] == created["expires"]


def test_expired_upload_is_gone_for_clients_and_swept_from_disk(
    make_app: Any, stored_state
) -> None:
    app = make_app(MPUFLASK_UPLOAD_TTL=TTL)
    bucket = app.extensions["mpuflask"].bucket
    flow = Flow(app.test_client())
    old = flow.create()
    part = flow.part(old, 1, b"expiring bytes")
    kept = flow.create("kept")
    flow.part(kept, 1, b"still fresh", key="kept")

    later = datetime.now(UTC) + timedelta(seconds=TTL + 1)
    bucket.clock = lambda: later
    fresh = flow.create("fresh")  # created "later": not expired
    flow.part(fresh, 1, b"fresh bytes", key="fresh")

    assert flow.put_part(old, 2, b"late").text == (
        "uploadPart: The specified multipart upload does not exist. (10024)"
    )
    assert flow.complete_raw(old, [part]).text == (
        "completeMultipartUpload: The specified multipart upload does not exist. (10024)"
    )
    listed = flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={old}")
    assert (
        listed.text
        == "listParts: The specified multipart upload does not exist. (10024)"
    )

    result = app.test_cli_runner().invoke(args=["gc"])
    assert result.exit_code == 0, result.output
    assert result.output == "removed 2 expired upload(s) and leftover(s)\n"
    state = stored_state()
    assert not holds(state, b"expiring bytes")
    assert not holds(state, b"still fresh")
    assert holds(state, b"fresh bytes")
    flow.complete(
        fresh, [flow.part(fresh, 1, b"fresh bytes", key="fresh")], key="fresh"
    )


@pytest.mark.filesystem_only("the sweep lock is a file in the data directory")
def test_only_one_process_sweeps_at_a_time(make_app: Any) -> None:
    app = make_app()
    lock_path = lock_path_for(app)
    assert lock_path is not None
    bucket = app.extensions["mpuflask"].bucket
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert sweep_once(bucket, lock_path) is None
        result = app.test_cli_runner().invoke(args=["gc"])
        assert result.output == "another process is sweeping right now; nothing done\n"
    finally:
        os.close(fd)
    assert sweep_once(bucket, lock_path) == 0
