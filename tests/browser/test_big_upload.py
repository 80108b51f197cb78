"""256 MiB through the page with a reload at half (bench/browser_256mib.py).

Slow (about 15-30 s and 512 MiB of temporary disk), so it runs only when
asked: ``MPUFLASK_BIG_BROWSER_TEST=1 pytest tests/browser/test_big_upload.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .support import why_no_browser

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("MPUFLASK_BIG_BROWSER_TEST") != "1",
        reason="256 MiB browser upload: set MPUFLASK_BIG_BROWSER_TEST=1 to run it",
    ),
]


def test_256_mib_resumes_after_a_reload_without_resending() -> None:
    reason = why_no_browser()
    if reason is not None:
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "browser_256mib.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["parts"] == 52  # 256 MiB in the server's default 5 MiB parts
    assert 0 < figures["parts_on_server_at_reload"] < figures["parts"]
    assert figures["parts_resent_that_server_had"] == []
    assert figures["part_puts_stored_in_all"] == figures["parts"]
    assert figures["byte_identical"] and figures["etag_matches_page"]
