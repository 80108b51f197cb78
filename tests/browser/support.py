"""Helpers for the upload page's browser tests (and bench/browser_256mib.py).

Chromium is Debian's (``apt-get install -y chromium``), driven by Playwright
for Python through its executable path: Playwright's own browser downloads
are never used (shared/BROWSER.md beside the repo).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import TypeVar

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
#: Root needs --no-sandbox; without the networking flags Chromium keeps trying
#: hosts it cannot reach.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

#: Settings of the servers the page is tested against: the page on, the
#: access log on (its request lines carry the query: partNumber), and a quick
#: shutdown even with the browser's keep-alive connections open.
PAGE_SERVER_ENV = {
    "MPUFLASK_WEB_UI": "true",
    "GUNICORN_ACCESSLOG": "-",
    "GUNICORN_GRACEFUL_TIMEOUT": "5",
}


def why_no_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if shutil.which("chromium") is None:
        return "Chromium is not installed (apt-get install -y chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    return None


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless."""
    executable = shutil.which("chromium") or CHROMIUM
    return playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)


# gunicorn's access line: ... "PUT /k?action=...&partNumber=3 HTTP/1.1" 200 63 "-" "agent"
_ACCESS = re.compile(
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) \S+ '
    r'"[^"]*" "(?P<agent>[^"]*)"'
)


def access_lines(log: Path) -> list[dict[str, str]]:
    """gunicorn's access log lines in a server's log: method, target, status, agent."""
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if record.get("logger") != "gunicorn.access":
            continue
        match = _ACCESS.search(record.get("message", ""))
        if match:
            lines.append(match.groupdict())
    return lines


def parts_stored(log: Path, upload_id: str, *, agent: str = "") -> Counter[int]:
    """Part number -> how many PUTs of it the server stored (200) for this upload.

    Only requests whose User-Agent contains ``agent`` (e.g. "HeadlessChrome",
    to leave out the test's own requests).
    """
    counts: Counter[int] = Counter()
    for line in access_lines(log):
        target = line["target"]
        if (
            line["method"] == "PUT"
            and line["status"] == "200"
            and "action=mpu-uploadpart" in target
            and f"uploadId={upload_id}" in target
            and agent in line["agent"]
        ):
            number = re.search(r"[?&]partNumber=(\d+)", target)
            assert number is not None, target
            counts[int(number.group(1))] += 1
    return counts


def settled(read: Callable[[], T], expected: T, timeout: float = 10.0) -> T:
    """Poll ``read()`` until it equals ``expected`` or time is up; its last value.

    For the server's log, which gunicorn writes just after it answers (so a
    line may trail the browser's view by a moment). The browser itself is
    waited on with Playwright's waiting APIs.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
