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

from ..rules import UNSENDABLE_HEADER_TEXT

#: RFC 6750's b64token: what a bearer token is made of (the server's tokens
#: are refused at its start-up otherwise).
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: What is said instead of the value: it may be a secret.
_UNSENDABLE = (
    "holds a character no HTTP header can carry (a line break or another "
    "control character, or one beyond latin-1, like a curly quote)"
)
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


def parse_header(text: str, where: str = "") -> tuple[str, str]:
    """``"Name: value"`` as ``("Name", "value")``; :class:`BadHeader` if unusable.

    The text is never quoted back (it may hold the secret); ``where`` says
    where it was (``"line 3 of FILE: "``).
    """
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name:
        raise BadHeader(
            f"{where}a header must be written 'Name: value', like 'X-Api-Key: "
            "s3cret' (what was given is not shown: it may hold a secret)"
        )
    try:
        check_header(name, value)
    except BadHeader as error:
        raise BadHeader(f"{where}{error}") from None
    return name, value


def check_token(token: str) -> None:
    """Refuse what no server takes for a bearer token, without quoting it.

    A token read from a file written on Windows ends in ``\r``; one pasted
    from a document may have curly quotes: either would fail every request
    (or, beyond latin-1, fail to be sent at all).
    """
    if not _BEARER_TOKEN.fullmatch(token):
        raise BadHeader(
            "the token is not a bearer token (RFC 6750: letters, digits and "
            "-._~+/, then any '='): look for a space, a quote or a line ending "
            "copied with it"
        )


def check_header(name: str, value: str) -> None:
    """Refuse a bad name, a value no header can carry, or a header set per request."""
    if not _NAME.fullmatch(name):
        raise BadHeader(f"{name!r} is not a valid header name")
    check_value(name, value)
    if name.lower() == "content-type":
        raise BadHeader("Content-Type is set per request; the object's: --content-type")
    if name.lower() in RESERVED:
        raise BadHeader(f"{name} is set by the client for each request")


def check_value(name: str, value: str) -> None:
    """Refuse a value no header can carry, naming the header, not the value."""
    if UNSENDABLE_HEADER_TEXT.search(value):
        raise BadHeader(f"the value of {name} {_UNSENDABLE}")


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
        parse_header(line, f"line {number} of {path}: ")
        for number, line in enumerate(lines, 1)
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
    if token is not None:
        check_token(token)
        if "authorization" in {n.lower() for n in checked}:
            raise BadHeader("give either a token or an Authorization header, not both")
    return checked
