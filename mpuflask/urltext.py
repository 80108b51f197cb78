"""URLs as shown in messages: a password (or a bare user, often a token) and
a query (it may hold a signature) hidden, for URLs that may not even parse.

The userinfo is found by position: after a scheme, whole or typo'd
(``http://``, ``https//``, ``http:/``), up to the last ``@`` before the next
``/``. So a password may hold ``#``, ``?`` or ``@`` and is still found, and
an ``@`` in a path is not taken for one. Used by the client's usage errors,
``mpuflask sign`` and the URL settings, which must never quote a password.
"""

from __future__ import annotations

import re

#: A scheme, whole or typo'd, and the slashes after it (always matches).
_LEAD = re.compile(r"(?i)^(?:[a-z][a-z0-9+.-]*(?::|(?=[/\\])))?[/\\]*")


def userinfo_span(url: str) -> tuple[int, int] | None:
    """Where ``url``'s ``user[:password]@`` is (start, end past the ``@``), or None."""
    start = _LEAD.match(url).end()  # type: ignore[union-attr] # always matches
    end = url.find("/", start)
    at = url.rfind("@", start, len(url) if end < 0 else end)
    return None if at < 0 else (start, at + 1)


def hidden(url: str) -> str:
    """``url`` with its password and query hidden: ``http://u:***@h/k?...``."""
    span = userinfo_span(url)
    if span is not None:
        start, end = span
        user, colon, _ = url[start:end].partition(":")
        url = url[:start] + (f"{user}:***@" if colon else "***@") + url[end:]
    head, mark, rest = url.partition("?")
    if mark and "#" not in head:
        fragment = rest.partition("#")[2]
        url = f"{head}?..." + (f"#{fragment}" if "#" in rest else "")
    return url


def quoted(url: str) -> str:
    """``url`` quoted for an error line, as :func:`hidden` shows it."""
    return repr(hidden(url))
