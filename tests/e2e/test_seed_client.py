"""The seed Worker's own Python client, unchanged, against gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..oracle import multipart_etag
from .support import MIB
from .support import SEED_CLIENT
from .support import Api
from .support import serve

#: The seed client's part size (10 MB in its words, 10 MiB in its code).
SEED_PART_SIZE = 10 * MIB


@pytest.mark.e2e
@pytest.mark.skipif(
    not SEED_CLIENT.is_file(),
    reason=f"the seed client is not checked out beside the repository ({SEED_CLIENT})",
)
def test_seed_client_round_trips_64_mib_through_four_workers(tmp_path: Path) -> None:
    workdir = tmp_path / "client"
    workdir.mkdir()
    data = os.urandom(64 * MIB)
    # The seed uploads to <endpoint><the path it was given>: a relative name.
    (workdir / "video.bin").write_bytes(data)

    with serve(tmp_path) as server:
        result = subprocess.run(
            [sys.executable, str(SEED_CLIENT), "video.bin"],
            cwd=workdir,
            env={
                **os.environ,
                "WORKER_ENDPOINT": server.url,
                "PYTHONIOENCODING": "utf-8",
            },
            capture_output=True,
            timeout=120,
            check=False,
        )
        output = result.stdout.decode("utf-8", "replace")
        assert result.returncode == 0, output + result.stderr.decode("utf-8", "replace")
        assert "successfully completed multipart upload" in output, output

        parts = [
            data[start : start + SEED_PART_SIZE]
            for start in range(0, len(data), SEED_PART_SIZE)
        ]
        assert len(parts) == 7
        with Api(server) as api:
            api.assert_object("video.bin", data, f'"{multipart_etag(parts)}"')
