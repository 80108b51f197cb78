"""What the listing tests share: tokens and the requests that list."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask.testing import FlaskClient

from .conftest import Flow

TOKENS = json.dumps(
    [
        {"token": "t-root", "identity": "root"},
        {"token": "t-alice", "identity": "alice", "prefix": "alice/"},
        {"token": "t-bob", "identity": "bob", "prefix": "bob/"},
        {"token": "t-reader", "identity": "reader", "actions": ["get"]},
    ]
)
ROOT = {"Authorization": "Bearer t-root"}
ALICE = {"Authorization": "Bearer t-alice"}
BOB = {"Authorization": "Bearer t-bob"}


def listing(client: FlaskClient, query: str = "", **headers: str) -> dict[str, Any]:
    response = client.get(f"/?action=list{query}", headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json  # type: ignore[assignment]
    return answer


def keys(answer: dict[str, Any]) -> list[str]:
    return [item["key"] for item in answer["objects"]]


def every_page(client: FlaskClient, query: str, **headers: str) -> list[str]:
    """Objects and folded prefixes of every page, following the cursor."""
    seen: list[str] = []
    cursor = ""
    for _ in range(1000):
        answer = listing(client, query + cursor, **headers)
        seen += keys(answer) + [f"PRE {p}" for p in answer["delimitedPrefixes"]]
        if not answer["truncated"]:
            return seen
        cursor = "&cursor=" + answer["cursor"]
    raise AssertionError("the cursor never ended")


def put(flow: Flow, key: str, data: bytes = b"x", **headers: str) -> str:
    return flow.upload([data], key=quote(key, safe="/"), **headers).strip('"')
