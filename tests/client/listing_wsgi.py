"""A stand-in for the server's listing actions, with R2's shapes and paging.

``GET /?action=list&prefix=P&delimiter=D&cursor=C&limit=N`` and
``GET /?action=mpu-list&prefix=P&cursor=C&limit=N``, answered from lists given
by the test, exactly in the shape the server documents (docs/client.md);
any other request goes to the wrapped app. Every listing request is
recorded, so a test can see the pages the client asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from tests.client.middleware import Environ
from tests.client.middleware import StartResponse
from tests.client.middleware import WsgiApp
from tests.client.middleware import query

#: The server's page size when the client gives no ``limit``.
DEFAULT_LIMIT = 1000


def stored(key: str, size: int = 3, **metadata: str) -> dict[str, Any]:
    """An object as the listing shows it."""
    return {
        "key": key,
        "size": size,
        "etag": "0123456789abcdef0123456789abcdef",
        "uploaded": "2024-05-01T12:00:00.000Z",
        "httpMetadata": metadata,
    }


def open_upload(key: str, upload_id: str) -> dict[str, Any]:
    """An open upload as ``mpu-list`` shows it."""
    return {
        "key": key,
        "uploadId": upload_id,
        "created": "2024-05-01T12:00:00.000Z",
        "expires": "2024-05-08T12:00:00.000Z",
    }


@dataclass
class FakeListing:
    """Answers the two listing actions on ``mount``; the rest goes to ``app``."""

    app: WsgiApp
    objects: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    default_limit: int = DEFAULT_LIMIT
    #: The server's root path: "/", or "/mpu/" behind a proxy serving it there.
    mount: str = "/"
    asked: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        params = query(environ)
        action = params.get("action")
        if environ.get("PATH_INFO") != self.mount or action not in {"list", "mpu-list"}:
            return self.app(environ, start_response)
        self.asked.append(params)
        limit = int(params.get("limit", self.default_limit))
        if action == "list":
            entries = self._entries(params.get("prefix", ""), params.get("delimiter"))
        else:
            entries = [
                (u["key"] + "\0" + u["uploadId"], u)
                for u in sorted(self.uploads, key=lambda u: (u["key"], u["uploadId"]))
                if u["key"].startswith(params.get("prefix", ""))
            ]
        after = params.get("cursor")
        if after is not None:
            entries = [e for e in entries if e[0] > after]
        page, truncated = entries[:limit], len(entries) > limit
        body: dict[str, Any] = {"truncated": truncated}
        if truncated:
            body["cursor"] = page[-1][0]
        if action == "list":
            body["objects"] = [item for _, item in page if isinstance(item, dict)]
            body["delimitedPrefixes"] = [
                item for _, item in page if isinstance(item, str)
            ]
        else:
            body["uploads"] = [item for _, item in page]
        data = json.dumps(body).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def _entries(self, prefix: str, delimiter: str | None) -> list[tuple[str, Any]]:
        """Objects under ``prefix`` and folded prefixes, in key order."""
        entries: dict[str, Any] = {}
        for item in self.objects:
            key = item["key"]
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                folded = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                entries[folded] = folded
            else:
                entries[key] = item
        return sorted(entries.items())
