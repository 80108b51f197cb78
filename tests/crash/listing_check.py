"""After every restart: the listings agree with what GET shows.

``action=list`` (the filesystem store's SQLite index, repaired at start-up)
shows exactly the keys GET finds, each with the etag and size GET answered;
``action=mpu-list`` shows exactly the open uploads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from .checker import Checker


def check_listing(checker: Checker, shown: dict[str, int | None]) -> None:
    """Compare both listings with ``shown`` (key -> vid GET answered, None: absent)."""
    findings, model = checker.findings, checker.model
    findings.count("checked_listings")
    by_vid = {version.vid: version for version in model.versions.values()}
    expected = {
        key: (by_vid[vid].etag, by_vid[vid].size)
        for key, vid in shown.items()
        if vid is not None and vid in by_vid
    }
    restart = findings.counts["restarts"]
    listed = {
        item["key"]: (item["etag"], item["size"])
        for item in _list_all(checker, "list", "objects")
    }
    unchecked = set(model.keys) - set(shown)  # a check GET failed: recorded
    for key in sorted(set(listed) | set(expected)):
        if key not in unchecked and listed.get(key) != expected.get(key):
            findings.violation(
                "listing out of step",
                f"after restart {restart}: {key} listed as {listed.get(key)}, "
                f"GET shows {expected.get(key)}",
            )
    ids = sorted(item["uploadId"] for item in _list_all(checker, "mpu-list", "uploads"))
    if ids != sorted(model.open_jobs):
        findings.violation(
            "listing out of step",
            f"after restart {restart}: mpu-list shows {ids}, "
            f"open are {sorted(model.open_jobs)}",
        )


def _list_all(checker: Checker, action: str, field: str) -> list[dict[str, Any]]:
    """Every entry of a listing under crash/, page by page (bounded)."""
    found: list[dict[str, Any]] = []
    params = {"action": action, "prefix": "crash/", "limit": "7"}
    for _ in range(1000):
        reply = checker.must_call("GET", f"/?{urlencode(params)}")
        if reply.status != 200:
            checker.findings.violation(
                "listing out of step", f"{action}: {reply.status} {reply.body[:200]!r}"
            )
            return found
        answer = json.loads(reply.body)
        found += answer[field]
        if not answer["truncated"]:
            return found
        params["cursor"] = answer["cursor"]
    checker.findings.violation("listing out of step", f"{action}: over 1000 pages")
    return found
