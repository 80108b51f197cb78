"""The crash harness's requests: one each, on its own connection, classified.

Nothing is kept alive across kills: every request opens a connection and
closes it. How it ended (:data:`~.model.OK`, refused, cut, timed out) decides
what the model may assume it did.
"""

from __future__ import annotations

import http.client
import math
import time
from urllib.parse import quote
from urllib.parse import urlencode

from .model import CUT
from .model import OK
from .model import REFUSED
from .model import TIMEOUT
from .model import Reply
from .report import Findings


def target(key: str, **params: str) -> str:
    """The request target of an action on ``key``: ``/<key>?action=...``."""
    return f"/{quote(key, safe='/')}?{urlencode(params)}"


class Api:
    """The server under test on 127.0.0.1:``port``."""

    def __init__(self, port: int, timeout: float, findings: Findings) -> None:
        self.port = port
        self.timeout = timeout
        self.findings = findings

    def call(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request on its own connection (nothing kept alive across kills)."""
        start = time.monotonic()
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=self.timeout
        )
        try:
            try:
                connection.connect()
            except (ConnectionRefusedError, TimeoutError) as error:
                return Reply(REFUSED, start, time.monotonic(), error=repr(error))
            except OSError as error:
                return Reply(CUT, start, time.monotonic(), error=repr(error))
            try:
                connection.request(
                    method, target, body, {"Connection": "close", **(headers or {})}
                )
                response = connection.getresponse()
                data = response.read()
            except TimeoutError as error:
                return Reply(TIMEOUT, start, math.inf, error=repr(error))
            except (OSError, http.client.HTTPException) as error:
                return Reply(CUT, start, time.monotonic(), error=repr(error))
            headers_seen = {
                name.lower(): value for name, value in response.getheaders()
            }
            return Reply(
                OK, start, time.monotonic(), response.status, headers_seen, data
            )
        finally:
            connection.close()

    def classify(self, reply: Reply, what: str) -> str:
        """``ack``, ``refused`` (a 4xx: nothing done), ``none`` (never sent), ``unknown``."""
        if reply.outcome == REFUSED:
            return "none"
        if reply.outcome != OK:
            return "unknown"
        if 200 <= reply.status < 300:
            return "ack"
        if reply.status >= 500:
            self.findings.violation(
                "server errors (5xx)", f"{what}: {reply.status} {reply.body[:300]!r}"
            )
            return "unknown"
        return "refused"
