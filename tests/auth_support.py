"""What the auth tests share: the bearer tokens they configure, and a flow
that sends one identity's headers with every request."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Flow

TOKENS = json.dumps(
    [
        {"token": "tok-alice", "identity": "alice"},
        {"token": "tok-bob", "identity": "bob"},
        {"token": "tok-reader", "identity": "reader", "actions": ["get"]},
        {"token": "tok-scoped", "identity": "scoped", "prefix": "public/"},
    ]
)
ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}


class AuthFlow(Flow):
    """The user's steps, with headers on every request."""

    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        super().__init__(client)
        self.headers = headers

    def req(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)
