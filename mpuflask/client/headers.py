"""Extra request headers (``-H 'Name: value'``), checked once, sent every time.

A header-based auth hook (``X-Api-Key`` in docs/hooks.md) needs its header on
every request a transfer makes: create, each part, listparts, complete, the
ranged GETs, abort. Headers the client sets itself per request (the body's
framing, its type, download ranges) cannot be given; ``Authorization`` can,
unless a token is given too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path

#: RFC 9110 token characters: what a header name may be made of.
_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Set by the client per request (the body's framing and type, its MD5, the
#: download's ranges and etag checks): one value for every request would
#: corrupt uploads or mix versions. The object's type is ``--content-type``.
RESERVED = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "content-type",
        "content-md5",
        "range",
        "if-match",
        "if-none-match",
    }
)


class BadHeader(ValueError):
    """A header the client will not send; the message says why."""


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as ``("Name", "value")``; :class:`BadHeader` if unusable."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name:
        raise BadHeader(f"{text!r} is not a header like 'X-Api-Key: s3cret'")
    check_header(name, value)
    return name, value


def check_header(name: str, value: str) -> None:
    """Refuse a bad name, a value with a line break, or a header set per request."""
    if not _NAME.fullmatch(name):
        raise BadHeader(f"{name!r} is not a valid header name")
    if any(c in value for c in "\r\n\0"):
        raise BadHeader(f"the value of {name} contains a line break or NUL")
    if name.lower() == "content-type":
        raise BadHeader("Content-Type is set per request; the object's: --content-type")
    if name.lower() in RESERVED:
        raise BadHeader(f"{name} is set by the client for each request")


def read_header_file(path: Path) -> list[tuple[str, str]]:
    """Headers from a file, one ``Name: value`` a line (``#`` comments, blanks).

    For secrets: a value given on the command line is visible in ``ps``.
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        why = (error.strerror or str(error)).lower()
        raise BadHeader(f"cannot read headers from {path}: {why}") from None
    except UnicodeDecodeError:
        raise BadHeader(f"cannot read headers from {path}: it is not text") from None
    return [
        parse_header(line)
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


def collect(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Pairs as a dict; a name given twice (in any case) is refused."""
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name.lower() in seen:
            raise BadHeader(f"the header {name} is given twice")
        seen.add(name.lower())
        headers[name] = value
    return headers


def check_headers(
    headers: Mapping[str, str], *, token: str | None = None
) -> dict[str, str]:
    """``headers`` checked (names, values, duplicates), as a new dict."""
    checked = collect(headers.items())
    for name, value in checked.items():
        check_header(name, value)
    if token is not None and "authorization" in {n.lower() for n in checked}:
        raise BadHeader("give either a token or an Authorization header, not both")
    return checked
