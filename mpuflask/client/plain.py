"""Failures in plain words, instead of the nested text requests and urllib3 give.

``HTTPConnectionPool(host='h', port=9): Max retries exceeded ... Caused by
NewConnectionError(...)`` becomes ``h:9 refused the connection``. Each
failure also gets a ``kind`` (refused, dns, connect, connect-timeout,
read-timeout, broken, tls) so a front end can add what to try.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

import requests
import urllib3.exceptions


@dataclass(frozen=True)
class Problem:
    """What went wrong with a connection: a kind to act on, and words to show."""

    kind: str
    words: str


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and everything it wraps (causes, ``reason``, exception args)."""
    found: list[BaseException] = []
    todo: list[object] = [error]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is f for f in found):
            continue
        found.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None)]
        todo += list(item.args)
    return found


def connection_problem(
    error: BaseException, host: str, timeout: tuple[float, float]
) -> Problem:
    """Describe a failed request to ``host`` (``host:port``) in plain words."""
    chain = _chain(error)

    def has(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    if tls := has(ssl.SSLError):
        detail = getattr(tls, "verify_message", None) or getattr(tls, "reason", None)
        words = str(detail or "handshake failed").replace("_", " ").lower()
        return Problem("tls", f"TLS with {host} failed ({words})")
    if has(requests.exceptions.SSLError):
        return Problem("tls", f"TLS with {host} failed")
    if has(socket.gaierror, urllib3.exceptions.NameResolutionError):
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
        return Problem("dns", f"the host name {name!r} was not found")
    if has(ConnectionRefusedError):
        return Problem("refused", f"{host} refused the connection")
    # urllib3's NewConnectionError is a ConnectTimeoutError: not every one is late.
    late = has(requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)
    if late and not isinstance(late, urllib3.exceptions.NewConnectionError):
        return Problem(
            "connect-timeout",
            f"{host} did not accept a connection within {timeout[0]:g} s",
        )
    if has(requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
        return Problem("read-timeout", f"{host} did not answer within {timeout[1]:g} s")
    broken = has(
        ConnectionResetError,
        BrokenPipeError,
        ConnectionAbortedError,
        http.client.RemoteDisconnected,
        http.client.IncompleteRead,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
    )
    if broken is not None:
        return Problem("broken", f"the connection to {host} broke ({_why(broken)})")
    for item in chain:
        if isinstance(item, OSError) and item.strerror:
            return Problem("connect", f"cannot connect to {host} ({item.strerror})")
    return Problem("broken", f"the connection to {host} failed ({_why(error)})")


def _why(error: BaseException) -> str:
    """The innermost human part of an error: an OS message, else a short text."""
    chain = _chain(error)
    for item in reversed(chain):
        if isinstance(item, http.client.RemoteDisconnected):
            return "closed without an answer"
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
        if isinstance(
            item,
            http.client.IncompleteRead | requests.exceptions.ChunkedEncodingError,
        ):
            return "the answer was cut short"
    short = [str(e) for e in chain if 0 < len(str(e)) < 100 and "(" not in str(e)]
    return short[-1] if short else type(error).__name__
