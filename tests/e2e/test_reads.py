"""A GET streams one whole version, whatever happens to the key meanwhile."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ..oracle import multipart_etag
from .support import MIB
from .support import Api
from .support import serve
from .support import stored_files
from .support import wait_for

KEY = "films/long.bin"


@pytest.mark.e2e
@pytest.mark.parametrize("then_delete", [False, True], ids=["overwritten", "deleted"])
def test_streaming_get_keeps_the_old_version_whole(
    tmp_path: Path, then_delete: bool
) -> None:
    # 64 MiB: far more than loopback's socket buffers hold, so the server is
    # still reading the old version's files when it is replaced.
    old_parts = [os.urandom(8 * MIB) for _ in range(8)]
    old = b"".join(old_parts)
    new_parts = [os.urandom(5 * MIB), os.urandom(1234)]
    new = b"".join(new_parts)

    settings = {"MPUFLASK_DURABLE": "false", "MPUFLASK_SWEEP_INTERVAL": "0.2"}
    with serve(tmp_path, **settings) as server, Api(server) as api:
        old_etag = api.upload(KEY, old_parts)

        reader = api.get(KEY, stream=True)
        try:
            assert reader.status_code == 200, reader.text
            assert reader.headers["etag"] == old_etag
            assert reader.headers["Content-Length"] == str(len(old))
            chunks = reader.iter_content(MIB)
            digest = hashlib.sha256(first := next(chunks))
            received = len(first)

            # Mid-stream: the key gets a new version, which new readers see ...
            new_etag = api.upload(KEY, new_parts)
            assert new_etag != old_etag
            api.assert_object(KEY, new, new_etag)
            if then_delete:
                # ... and then loses it.
                api.delete(KEY)
                api.assert_absent(KEY)
            # The reader pins its version: the old bytes are all still on disk,
            # whatever the periodic sweep (every 0.2 s here) does meanwhile.
            assert sum(stored_files(server.data_dir).values()) >= len(old)

            for chunk in chunks:
                digest.update(chunk)
                received += len(chunk)
        finally:
            reader.close()
        assert received == len(old)
        assert digest.hexdigest() == hashlib.sha256(old).hexdigest()

        # Once the reader is done, the server's periodic sweep reclaims the
        # old version: what is left is the current object, or nothing.
        expected_bytes = 0 if then_delete else len(new)

        def only_current_left() -> bool:
            # Nothing outside objects/ (a reclaim in progress may still hold
            # a record in trash/), and only the current version's bytes.
            files = stored_files(server.data_dir)
            part_bytes = sum(
                size for name, size in files.items() if not name.endswith(".json")
            )
            settled = all(name.startswith("objects/") for name in files)
            return settled and part_bytes == expected_bytes

        wait_for(only_current_left, "the retired version to be reclaimed")
        files = stored_files(server.data_dir)
        if then_delete:
            assert files == {}
            api.assert_absent(KEY)
        else:
            assert all(name.startswith("objects/") for name in files), files
            part_sizes = [size for n, size in files.items() if not n.endswith(".json")]
            assert sorted(part_sizes) == sorted(map(len, new_parts)), files
            api.assert_object(KEY, new, f'"{multipart_etag(new_parts)}"')
