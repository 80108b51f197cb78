"""The built-in webhook: each event POSTed as JSON, signed when a secret is set.

Sent with the standard library (``urllib``: proxies from the usual
environment variables), never following a redirect. Any answer but 2xx, a
connection error or a timeout is a failure: the delivery loop retries later
with the same body and event id.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from .model import Event
from .signature import SIGNATURE_HEADER
from .signature import sign_webhook

USER_AGENT = "mpuflask-webhook/1"
#: The most of a receiver's answer we read (and ignore).
_MAX_ANSWER = 64 * 1024


class WebhookFailed(Exception):
    """The receiver did not take the event (a non-2xx answer)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx


class Webhook:
    """POSTs events to ``url``; a consumer of the delivery loop."""

    def __init__(self, url: str, secret: str | None, timeout: float) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __call__(self, event: Event, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Mpuflask-Event-Id": event.id,
            "X-Mpuflask-Event-Type": event.type,
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign_webhook(body, self.secret)
        request = urllib.request.Request(
            self.url, data=body, headers=headers, method="POST"
        )
        with self._opener.open(request, timeout=self.timeout) as answer:
            answer.read(_MAX_ANSWER)
            status = int(answer.status)
        if not 200 <= status < 300:
            raise WebhookFailed(f"the receiver answered {status}")
