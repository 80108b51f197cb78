"""The load bench's operations, each one checked end to end (``load_bench.py``):
uploads small and large, whole and ranged reads, aborts with their
intentional negatives, deletes."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Sequence
from urllib.parse import quote

from load_client import Budget
from load_client import CheckedClient
from load_content import KiB
from load_content import MiB
from load_content import Part
from load_content import StoredObject

from tests.oracle import etag_from_md5s


class LoadClient(CheckedClient):
    """One client: one operation at a time, chosen from the mix, all answers checked."""

    def run(self, budget: Budget) -> None:
        while budget.take():
            (name,) = self.rng.choices(self.operation_names, self.operation_weights)
            if name in ("get", "range", "delete") and not len(self.registry):
                name = "small"
            try:
                getattr(self, f"op_{name}")()
            except Exception as exc:  # a bench bug must show, not kill the thread
                self.fail(name, "-", f"client exception: {exc!r}")
                self.conn.close()
            self.stats.operations[name] += 1

    def op_small(self) -> None:
        count = self.rng.randint(1, 3)
        self.upload("small", "text/plain; charset=utf-8", count, large=False)

    def op_large(self) -> None:
        low, high = self.args.large_parts_range
        self.upload("large", "video/mp4", self.rng.randint(low, high), large=True)

    def plan(self, count: int, *, large: bool) -> list[Part]:
        """Parts 1..count: equal leading parts, a last part no larger."""
        upload = self.uploads
        tags = [self.tag(upload, number) for number in range(1, count + 1)]
        payload = self.payload
        if large:
            size = self.rng.choice(list(payload.large))
            parts = [
                payload.part(
                    number,
                    self.rng.choice(payload.large[size]),
                    size,
                    tags[number - 1],
                    cache=True,
                )
                for number in range(1, count)
            ]
            last = self.rng.choice([s for s in payload.large if s <= size])
            offset = self.rng.choice(payload.large[last])
            parts.append(payload.part(count, offset, last, tags[-1], cache=True))
            return parts
        parts = [
            payload.part(
                number,
                self.rng.choice(payload.leading_offsets),
                payload.leading_size,
                tags[number - 1],
                cache=True,
            )
            for number in range(1, count)
        ]
        parts.append(payload.small_part(count, self.rng, tags[-1]))
        return parts

    def create(self, key: str, path: str, content_type: str) -> str | None:
        reply = self.call(
            "create",
            "POST",
            f"{path}?action=mpu-create",
            headers={"Content-Type": content_type},
        )
        if reply is None or (doc := self.json_of("create", reply)) is None:
            return None
        upload_id = doc.get("uploadId")
        if doc.get("key") != key or not isinstance(upload_id, str) or not upload_id:
            self.fail("create", reply.request_id, f"create answered {doc!r}")
            return None
        return upload_id

    def upload_part(self, path: str, upload_id: str, part: Part) -> bool:
        query = f"action=mpu-uploadpart&uploadId={quote(upload_id)}"
        reply = self.call(
            "uploadpart",
            "PUT",
            f"{path}?{query}&partNumber={part.number}",
            body=[part.body.view(), part.tag],
        )
        if reply is None or (doc := self.json_of("uploadpart", reply)) is None:
            return False
        if doc != {"partNumber": part.number, "etag": part.md5}:
            self.fail(
                "uploadpart",
                reply.request_id,
                f"part {part.number} answered {doc!r}, expected etag {part.md5}",
            )
            return False
        return True

    def check_listparts(self, path: str, upload_id: str, sent: Sequence[Part]) -> bool:
        reply = self.call(
            "listparts",
            "GET",
            f"{path}?action=mpu-listparts&uploadId={quote(upload_id)}",
        )
        if reply is None or (doc := self.json_of("listparts", reply)) is None:
            return False
        expected = [
            {"partNumber": p.number, "etag": p.md5, "size": p.size}
            for p in sorted(sent, key=lambda p: p.number)
        ]
        if doc.get("uploadId") != upload_id or doc.get("parts") != expected:
            self.fail(
                "listparts",
                reply.request_id,
                f"listparts answered {doc!r}, expected parts {expected!r}",
            )
            return False
        return True

    def upload(self, kind: str, content_type: str, count: int, *, large: bool) -> None:
        key, path = self.new_key(kind)
        upload_id = self.create(key, path, content_type)
        if upload_id is None:
            return
        parts = self.plan(count, large=large)
        order = list(parts)
        if large:
            self.rng.shuffle(order)
        sent: list[Part] = []
        for index, part in enumerate(order):
            if not self.upload_part(path, upload_id, part):
                return
            sent.append(part)
            if large and index == len(order) // 2 - 1:
                if not self.check_listparts(path, upload_id, sent):
                    return
        if large or self.rng.random() < 0.3:
            if not self.check_listparts(path, upload_id, sent):
                return
        body = json.dumps(
            {"parts": [{"partNumber": p.number, "etag": p.md5} for p in parts]}
        ).encode()
        reply = self.call(
            "complete",
            "POST",
            f"{path}?action=mpu-complete&uploadId={quote(upload_id)}",
            body=[body],
            headers={"Content-Type": "application/json"},
        )
        if reply is None:
            return
        etag = etag_from_md5s(part.md5 for part in parts)
        if reply.headers.get("etag") != f'"{etag}"':
            self.fail(
                "complete",
                reply.request_id,
                f"{key}: etag {reply.headers.get('etag')!r}, expected {etag!r}",
            )
            return
        obj = StoredObject.from_parts(key, path, etag, content_type, parts)
        self.registry.add(obj)

    def op_get(self) -> None:
        obj = self.registry.borrow(self.rng)
        if obj is None:
            return
        try:
            self.get(obj, None)
        finally:
            self.registry.give_back(obj)

    def op_range(self) -> None:
        obj = self.registry.borrow(self.rng)
        if obj is None:
            return
        try:
            shape = self.rng.random()
            if shape < 0.6:
                first = self.rng.randrange(obj.size)
                span = self.rng.choice([1, 100, 64 * KiB, MiB, 3 * MiB, obj.size])
                self.get(obj, (first, min(obj.size, first + span) - 1, "closed"))
            elif shape < 0.8:
                first = self.rng.randrange(obj.size)
                self.get(obj, (first, obj.size - 1, "open"))
            else:
                count = self.rng.randint(1, min(obj.size, 2 * MiB))
                self.get(obj, (obj.size - count, obj.size - 1, "suffix"))
        finally:
            self.registry.give_back(obj)

    def get(self, obj: StoredObject, wanted: tuple[int, int, str] | None) -> None:
        """GET the object (or a range), streaming and comparing 1 MiB at a time."""
        action = "get" if wanted is None else "get-range"
        headers: dict[str, str] = {}
        first, last, status = 0, obj.size - 1, 200
        if wanted is not None:
            first, last, shape = wanted
            status = 206
            headers["Range"] = {
                "closed": f"bytes={first}-{last}",
                "open": f"bytes={first}-",
                "suffix": f"bytes=-{last - first + 1}",
            }[shape]
        began = time.perf_counter()
        request_id = f"lb-{self.number}-{self.requests + 1}"
        what = f"GET {obj.path} {headers.get('Range', '')}".rstrip()
        try:
            response, request_id, _ = self._start(
                "GET", f"{obj.path}?action=get", headers, ()
            )
            if response.status != status:
                data = response.read()
                self.fail(
                    action,
                    request_id,
                    f"{what} -> {response.status} (expected {status}): {data[:300]!r}",
                )
                return
            problems = self.check_get_headers(obj, response, first, last, wanted)
            position, view, same = first, memoryview(self.buffer), True
            while True:
                count = response.readinto(view)
                if not count:
                    break
                if same and not obj.matches(position, view[:count]):
                    same = False
                    problems.append(f"bytes differ in the MiB read at {position}")
                position += count
        except (OSError, http.client.HTTPException) as exc:
            self._broken(action, request_id, exc)
            return
        self.stats.latencies[action].append(time.perf_counter() - began)
        self.stats.bytes_down += position - first
        if position != last + 1:
            problems.append(
                f"got {position - first} bytes, expected {last + 1 - first}"
            )
        if problems:
            self.fail(action, request_id, f"{what}: {'; '.join(problems)}")

    @staticmethod
    def check_get_headers(
        obj: StoredObject,
        response: http.client.HTTPResponse,
        first: int,
        last: int,
        wanted: tuple[int, int, str] | None,
    ) -> list[str]:
        problems = []
        if response.getheader("ETag") != f'"{obj.etag}"':
            problems.append(f"ETag {response.getheader('ETag')!r} != {obj.etag!r}")
        if response.getheader("Content-Type") != obj.content_type:
            problems.append(f"Content-Type {response.getheader('Content-Type')!r}")
        if response.getheader("Content-Length") != str(last + 1 - first):
            problems.append(f"Content-Length {response.getheader('Content-Length')}")
        if wanted is not None:
            expected = f"bytes {first}-{last}/{obj.size}"
            if response.getheader("Content-Range") != expected:
                got = response.getheader("Content-Range")
                problems.append(f"Content-Range {got!r} != {expected!r}")
        return problems

    def op_abort(self) -> None:
        key, path = self.new_key("abort")
        upload_id = self.create(key, path, "application/octet-stream")
        if upload_id is None:
            return
        parts = self.plan(self.rng.randint(1, 2), large=False)
        for part in parts:
            if not self.upload_part(path, upload_id, part):
                return
        if not self.check_listparts(path, upload_id, parts):
            return
        query = f"uploadId={quote(upload_id)}"
        if self.call("abort", "DELETE", f"{path}?action=mpu-abort&{query}", expect=204):
            # Intentional negatives: the upload is gone (10024), abort is idempotent.
            self.negative(
                "neg-listparts", "GET", f"{path}?action=mpu-listparts&{query}"
            )
            self.negative(
                "neg-uploadpart",
                "PUT",
                f"{path}?action=mpu-uploadpart&{query}&partNumber=3",
                body=[b"x" * 100],
            )
            self.call("abort", "DELETE", f"{path}?action=mpu-abort&{query}", expect=204)

    def negative(
        self,
        action: str,
        method: str,
        path: str,
        body: Sequence[bytes | memoryview] = (),
    ) -> None:
        reply = self.call(action, method, path, body=body, expect=400)
        if reply is not None and b"(10024)" not in reply.body:
            self.fail(action, reply.request_id, f"{path}: answered {reply.body!r}")

    def op_delete(self) -> None:
        obj = self.registry.take_for_delete(self.rng)
        if obj is None:
            return
        if self.call("delete", "DELETE", f"{obj.path}?action=delete", expect=204):
            self.call("neg-get", "GET", f"{obj.path}?action=get", expect=404)
