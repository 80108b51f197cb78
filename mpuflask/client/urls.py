"""The URLs the client is given: checked before any request, shown without secrets.

An object URL is the server, then the key, percent-encoded as in any URL
(``http://host:8000/a%2Fb`` is the key ``a/b``), with no query or fragment. A
listing URL is the server, then an optional key prefix. Checking here means a
typo is one plain sentence (``'host:8000/k' has no scheme: try
http://host:8000/k``), not requests' ``No connection adapters were found``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from ..urltext import hidden
from ..urltext import quoted
from .errors import ClientError

SCHEMES = ("http", "https")


class BadUrl(ClientError, ValueError):
    """A URL the client cannot send a request to (no scheme, no host, no key)."""


def check_url(url: str) -> str:
    """``url`` if it is an ``http(s)://host[:port]/...`` URL, else :class:`BadUrl`.

    Each message quotes the URL as :func:`quoted` shows it.
    """
    shown = quoted(url)
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - a bracketed host is checked here
    except ValueError as error:  # http://[::1/k, http://[zz]/k
        raise BadUrl(f"{shown} is not a URL: {error}") from None
    if parts.scheme.lower() not in SCHEMES or "://" not in url:
        if "://" not in url:
            suggestion = hidden(_with_scheme(url))
            if _BROKEN_SCHEME.match(url):
                raise BadUrl(f"{shown} needs '://' after its scheme: try {suggestion}")
            raise BadUrl(f"{shown} has no scheme: try {suggestion}")
        raise BadUrl(
            f"{shown}: the scheme {parts.scheme!r} is not supported, "
            "use http:// or https://"
        )
    if not parts.hostname:
        raise BadUrl(f"{shown} has no host: write it as http://host:port/key")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise BadUrl(
            f"{shown} has a port that is not a number from 0 to 65535"
        ) from None
    if any(c in url for c in "\r\n\0"):
        raise BadUrl(f"{shown} contains a line break or NUL")
    # What follows ? or # is not part of the key: the request would name
    # another object than the one the command reports (a ? in a key, sent
    # as is, would delete or overwrite the key before it).
    if "#" in url:
        raise BadUrl(
            f"{shown} has a #fragment, which is never sent: write # in a key as %23"
        )
    if "?" in url:
        raise BadUrl(
            f"{shown} has a ?query, which is not part of a key (the client adds "
            "its own): write ? in a key as %3F"
        )
    return url


#: A scheme typed without its "://" whole: ``http:/h``, ``http//h``, ``http:h``.
_BROKEN_SCHEME = re.compile(r"(?i)(https?)(?::/*|/+)")


def _with_scheme(url: str) -> str:
    """``url`` as it was likely meant: its broken scheme mended, or http:// added."""
    broken = _BROKEN_SCHEME.match(url)
    if broken:
        return f"{broken.group(1).lower()}://{url[broken.end() :]}"
    return f"http://{url.lstrip('/')}"


def object_key(url: str) -> str:
    """The key an object URL names: its path without the first ``/``, decoded."""
    return unquote(urlsplit(url).path)[1:]


def check_object_url(url: str) -> str:
    """``url`` if it names an object (a non-empty key), else :class:`BadUrl`."""
    check_url(url)
    if not object_key(url):
        root = root_of(url)
        raise BadUrl(
            f"{quoted(url)} names no object: add the key after the host, "
            f"as in {hidden(root)}path/file.bin"
        )
    return url


def base_name(url: str) -> str:
    """The last ``/``-separated piece of the key: a file name for a download.

    Raises :class:`BadUrl` when that piece cannot name a file (the key ends
    with ``/``, or it is ``.`` or ``..``).
    """
    name = object_key(url).rpartition("/")[2]
    if name in {"", ".", ".."} or "\0" in name:
        raise BadUrl(
            f"the key of {display(url)} does not end in a usable file name: "
            "give the file to write, not a folder"
        )
    return name


def root_of(url: str) -> str:
    """``scheme://host[:port]/``: where the server's own actions (listing) live."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


def split_listing_url(url: str, prefix: str | None = None) -> tuple[str, str]:
    """``(root, prefix)`` for a listing: the URL's path is the key prefix.

    ``http://host/photos/`` lists keys starting with ``photos/``. With
    ``prefix`` given, the URL is taken whole as the server's root (a server
    behind a proxy that serves it under a path). :class:`BadUrl` for a
    prefix that is not UTF-8 once percent-decoded (``a%ff``).
    """
    check_url(url)
    if prefix is not None:
        parts = urlsplit(url)
        path = parts.path if parts.path.endswith("/") else f"{parts.path}/"
        return urlunsplit(parts._replace(path=path, fragment="")), prefix
    try:  # not unquote's U+FFFD for the bytes: another prefix than the URL's
        prefix = unquote(urlsplit(url).path, errors="strict")[1:]
    except UnicodeDecodeError:
        raise BadUrl(
            f"the prefix of {quoted(url)} is not UTF-8 once percent-decoded"
        ) from None
    return root_of(url), prefix


def display(url: str) -> str:
    """``url`` as shown in messages: no query (it may hold a signature), no password."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def host_of(url: str) -> str:
    """``host:port`` (or just the host) of ``url``, for "cannot reach ..." messages."""
    return urlsplit(url).netloc.rpartition("@")[2] or url
