"""Sending one API request, again if it failed in a way a retry can fix.

Everything that touches the network goes through :meth:`Transport.call`:
the action URL is built (and signed, if a signer is given) afresh for every
try, the caller's headers and the bearer token are added, a body is
re-created whole for every try, and the retry policy of :mod:`.retry` decides
what happens on a failure. Failures leave as one-line client errors
(:mod:`.plain`), never as requests' own exceptions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import requests
from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.auth import HTTPBasicAuth
from requests.utils import get_auth_from_url

from ..keypath import keep_dot_segments
from .errors import Cancelled
from .errors import ClientError
from .errors import ServerRefused
from .errors import TransferFailed
from .headers import BadHeader
from .headers import check_headers
from .headers import check_value
from .plain import connection_problem
from .retry import RetryPolicy
from .retry import is_retryable_status
from .urls import display
from .urls import host_of

T = TypeVar("T")

#: ``url_signer(method, url) -> url``: given the method and the full action URL
#: (``...?action=mpu-uploadpart&uploadId=...``), answer the URL to send, for
#: example with a signature and expiry added. Called for every try.
UrlSigner = Callable[[str, str], str]

#: Bytes handed to the socket per write: what one streaming part costs in RAM.
DEFAULT_BLOCK_SIZE = 256 * 1024
#: (connect, read) seconds. Read covers the wait for the answer after a whole
#: part was sent, while a durable server fsyncs it.
DEFAULT_TIMEOUT = (10.0, 300.0)
USER_AGENT = "mpuflask-client/0.1"

log = logging.getLogger("mpuflask.client")

_RETRYABLE_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
#: A certificate stays wrong however often it is tried.
_FINAL_ERRORS = (requests.exceptions.SSLError,)


class _BlockSizeAdapter(HTTPAdapter):
    """An adapter whose connections send bodies in ``block_size`` writes.

    urllib3 reads a streamed body 16 KiB at a time by default; bigger blocks
    mean fewer Python calls per GiB at a still-bounded memory cost.
    """

    def __init__(self, block_size: int, pool_size: int) -> None:
        self._block_size = block_size
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs.setdefault("blocksize", self._block_size)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


class _AsGiven(AuthBase):
    """Sends a request's own headers, adding no credentials of requests' choosing."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        return request


_AS_GIVEN = _AsGiven()


def make_session(
    pool_size: int = 10, block_size: int = DEFAULT_BLOCK_SIZE
) -> requests.Session:
    """A session with one connection per parallel transfer and no hidden retries."""
    session = requests.Session()
    adapter = _BlockSizeAdapter(block_size, pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def action_url(url: str, action: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """``url`` with ``action`` and ``params`` added to its query string.

    A ``.`` or ``..`` segment of the path is part of the key, so it is
    percent-encoded: sent as written, it would be removed on the way
    (``rm http://h/a/../b`` would delete ``b``).
    """
    parts = urlsplit(url)
    query = urlencode([("action", action), *params])
    if parts.query:
        query = f"{parts.query}&{query}"
    return urlunsplit(parts._replace(path=keep_dot_segments(parts.path), query=query))


class Transport:
    """Credentials, retry policy and connection pool shared by a transfer.

    ``token`` is sent as ``Authorization: Bearer <token>``; ``headers`` (for
    example ``{"X-Api-Key": "..."}`` for a header-based auth hook) go with
    every request; ``url_signer`` rewrites each URL before it is sent.
    ``session`` lets a caller (or a test) bring its own ``requests.Session``.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        url_signer: UrlSigner | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        pool_size: int = 10,
    ) -> None:
        self.token = token
        self.headers = check_headers(headers or {}, token=token)
        self.url_signer = url_signer
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.session = session or make_session(pool_size)

    def call(
        self,
        method: str,
        url: str,
        action: str,
        handle: Callable[[requests.Response], T],
        *,
        params: Iterable[tuple[str, str]] = (),
        body: Callable[[], Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
        stream: bool = False,
        cancel: threading.Event | None = None,
    ) -> T:
        """Send until ``handle`` accepts an answer whose status is in ``ok``.

        ``body()`` makes a fresh body for each try, so a retried part is sent
        whole. ``handle`` runs inside the retry loop: a connection lost while
        it reads a streamed answer is retried like one lost while sending.
        Raises :class:`ServerRefused` for a status no retry can change, or the
        last failure once the policy's attempts are spent.
        """
        params = list(params)
        accepted = frozenset(ok)
        failures = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{action} cancelled")
            target = action_url(url, action, params)
            if self.url_signer is not None:
                target = self.url_signer(method, target)
            retry_after: str | None = None
            try:
                response = self._send(
                    requests.Request(
                        method,
                        target,
                        data=body() if body is not None else None,
                        json=json,
                        headers=self._headers(headers),
                    ),
                    stream,
                )
                with response:
                    if response.status_code in accepted:
                        return handle(response)
                    problem: ClientError = ServerRefused(
                        method,
                        action,
                        response.status_code,
                        response.text,
                        display(url),
                    )
                    if not is_retryable_status(response.status_code):
                        raise problem
                    retry_after = response.headers.get("Retry-After")
            except _FINAL_ERRORS as error:
                raise self._failed(action, url, error) from None
            except _RETRYABLE_ERRORS as error:
                problem = self._failed(action, url, error)
            except requests.RequestException as error:  # a bad URL or header
                raise ClientError(f"{action} {display(url)}: {error}") from None
            failures += 1
            if failures >= self.retry.attempts:
                problem.tries = failures
                raise problem
            wait = self.retry.delay(failures, retry_after)
            log.warning(
                "%s; retrying in %.1f s (try %d of %d)",
                problem,
                wait,
                failures + 1,
                self.retry.attempts,
            )
            if cancel is not None:
                if cancel.wait(wait):
                    raise Cancelled(f"{action} cancelled")
            else:
                time.sleep(wait)

    def _send(self, request: requests.Request, stream: bool) -> requests.Response:
        """``session.request`` without undoing :func:`action_url`'s ``%2E``.

        requests decodes ``%2E`` back to ``.`` (an "unreserved" character),
        so a key's ``..`` would go out as a dot segment that a proxy on the
        way may remove; the prepared URL gets its encoded dots back.
        """
        # Only the credentials given are sent: requests would otherwise
        # replace the token with the URL's user:password, or with a ~/.netrc
        # password for this host (meant for other programs).
        # A session's own auth (a caller's requests.Session) still applies
        # when nothing else is given; requests reads no netrc then either.
        given = any(name.lower() == "authorization" for name in request.headers)
        user, password = get_auth_from_url(request.url)
        if (user or password) and not given:
            try:
                (user + password).encode("latin-1")
            except UnicodeEncodeError:
                raise ClientError(
                    "the URL's user name or password holds a character Basic "
                    "authentication cannot carry (beyond latin-1)"
                ) from None
            request.auth = HTTPBasicAuth(user, password)
        elif given or self.session.auth is None:
            request.auth = _AS_GIVEN
        prepared = self.session.prepare_request(request)
        if prepared.url is not None:  # the password is in the header now
            parts = urlsplit(prepared.url)
            path = keep_dot_segments(parts.path)
            netloc = parts.netloc.rpartition("@")[2]
            prepared.url = urlunsplit(parts._replace(netloc=netloc, path=path))
        settings = self.session.merge_environment_settings(
            prepared.url, {}, stream, None, None
        )
        return self.session.send(
            prepared, timeout=self.timeout, allow_redirects=False, **settings
        )

    def _failed(self, action: str, url: str, error: Exception) -> TransferFailed:
        """``error`` (from requests) as one line: what, where, why."""
        host = host_of(url)
        problem = connection_problem(error, host, self.timeout)
        return TransferFailed(
            f"{action} {display(url)}: {problem.words}", problem.kind, host
        )

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        """The caller's headers, then this request's own, then the token."""
        headers = dict(self.headers)
        for name, value in (extra or {}).items():
            try:  # this request's own (a Content-Type given in code); the
                check_value(name, value)  # others were checked once, at init
            except BadHeader as error:
                raise ClientError(str(error)) from None
            for known in [k for k in headers if k.lower() == name.lower()]:
                del headers[known]
            headers[name] = value
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers
