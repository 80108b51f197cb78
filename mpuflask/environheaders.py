"""The request headers read on every request, straight from the WSGI environ.

``request.headers`` is Werkzeug's ``EnvironHeaders``: ``headers.get(name)``
upper-cases the name, turns ``-`` into ``_`` and looks up ``HTTP_<NAME>``
(``CONTENT_LENGTH`` and ``CONTENT_TYPE`` without the prefix); a header not
sent raises a ``KeyError`` inside, which ``get`` catches. These give the same
values for the few headers every request or every part asks for, without
that work; ``request.content_length`` asks for two headers at each use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.sansio.utils import get_content_length

#: ``request.headers.get("Transfer-Encoding")``.
TRANSFER_ENCODING = "HTTP_TRANSFER_ENCODING"
#: ``request.headers.get("X-Request-Id")``.
X_REQUEST_ID = "HTTP_X_REQUEST_ID"


def content_length(environ: Mapping[str, Any]) -> int | None:
    """``request.content_length``: the declared length; None for a body
    without one or a chunked body; 0 for a value that is no length."""
    return get_content_length(
        http_content_length=environ.get("CONTENT_LENGTH"),
        http_transfer_encoding=environ.get(TRANSFER_ENCODING),
    )
