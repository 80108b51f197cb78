"""The events crash harness's checks of what the receiver got (see ``tests/events_harness.py``).

They run once, after the last server has delivered everything, so they
write into the harness's counts and violations without its lock.
"""

from __future__ import annotations

from collections import Counter
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from tests.events_report import Upload
from tests.webhook_receiver import Delivery

#: The etag ``key`` holds now, or None if it holds nothing.
HeadKey = Callable[[str], "str | None"]


def expected(uploads: list[Upload]) -> tuple[dict[str, Upload], dict[str, Upload]]:
    """The uploads whose publish, and whose abort, must each have an event."""
    published = {u.upload_id: u for u in uploads if u.complete == "published"}
    aborted = {u.upload_id: u for u in uploads if u.abort and u.complete != "published"}
    return published, aborted


class EventChecks:
    """Lost, false and duplicated events, bad signatures, keys' last events."""

    def __init__(self, counts: Counter[str], violations: dict[str, list[str]]) -> None:
        self.counts = counts
        self.violations = violations

    def violation(self, name: str, detail: str) -> None:
        self.violations.setdefault(name, []).append(detail)

    def deliveries(
        self,
        uploads: list[Upload],
        deliveries: list[Delivery],
        accepted: list[Delivery],
    ) -> list[dict[str, Any]]:
        """Check every delivery; the distinct events accepted, for :meth:`keys`."""
        published, aborted = expected(uploads)
        self.counts["expected_published"] = len(published)
        self.counts["expected_aborted"] = len(aborted)
        self.counts["deliveries"] = len(deliveries)
        self.counts["answered_500"] = sum(1 for d in deliveries if d.status == 500)
        self.counts["accepted"] = len(accepted)
        by_id: dict[str, bytes] = {}
        by_step: dict[tuple[str, str], str] = {}
        endings: dict[str, set[str]] = defaultdict(set)
        for delivery in deliveries:
            if delivery.signature != "ok":
                self.violation("bad signatures", f"{delivery.signature}")
                continue
            event = delivery.event
            if by_id.setdefault(event["id"], delivery.body) != delivery.body:
                self.violation(
                    "duplicates with another id or body", f"id {event['id']}: bodies"
                )
            if event["type"] != "object-deleted":
                step = (event["type"], event["uploadId"])
                if by_step.setdefault(step, event["id"]) != event["id"]:
                    self.violation(
                        "duplicates with another id or body", f"{step}: two ids"
                    )
                endings[event["uploadId"]].add(event["type"])
        events = {delivery.event["id"]: delivery.event for delivery in accepted}
        self.counts["distinct_events"] = len(events)
        self.counts["duplicates"] = len(accepted) - len(events)
        received = {(e["type"], e.get("uploadId")): e for e in events.values()}
        for upload_id, upload in published.items():
            publish = received.get(("object-published", upload_id))
            if publish is None:
                self.violation("lost events", f"publish of {upload_id} ({upload.key})")
            elif upload.etag and publish["etag"] != upload.etag:
                self.violation("false events", f"publish of {upload_id}: wrong etag")
        for upload_id, upload in aborted.items():
            if ("upload-aborted", upload_id) not in received:
                self.violation("lost events", f"abort of {upload_id} ({upload.key})")
        for upload in uploads:
            if upload.complete == "not published":
                if ("object-published", upload.upload_id) in received:
                    self.violation(
                        "false events", f"publish of {upload.upload_id}, not published"
                    )
        for upload_id, kinds in endings.items():
            if len(kinds) > 1:
                self.violation("false events", f"{upload_id} ended as {sorted(kinds)}")
        return list(events.values())

    def keys(
        self, uploads: list[Upload], events: list[dict[str, Any]], head: HeadKey
    ) -> None:
        """Each key's events, in time order, end in the key's state now."""
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            if event["type"] in ("object-published", "object-deleted"):
                by_key[event["key"]].append(event)
        for key in sorted({u.key for u in uploads}):
            etag = head(key)
            history = sorted(by_key[key], key=lambda e: e["time"])
            last = history[-1] if history else None
            if etag is not None:
                if (
                    last is None
                    or last["type"] != "object-published"
                    or last["etag"] != etag
                ):
                    self.violation(
                        "lost events", f"{key} holds {etag}; last event {_brief(last)}"
                    )
            elif last is not None and last["type"] != "object-deleted":
                self.violation(
                    "lost events", f"{key} holds nothing; last event {_brief(last)}"
                )
            self.counts["keys_checked"] += 1


def _brief(event: dict[str, Any] | None) -> str:
    if event is None:
        return "none"
    return f"{event['type']} {event.get('etag')} at {event['time']}"
