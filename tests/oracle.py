"""The values tests and benches expect from the server, computed independently.

One home for R2's etag arithmetic as the tests know it, written from the spec
(``shared/spec/r2-multipart.md``) and never imported from ``mpuflask``: a test
that compared the server with ``mpuflask.rules.multipart_etag`` would pass
whatever that function did. ``tests/test_properties.py`` checks the two agree.

* a part's etag is the hex MD5 of its bytes;
* an object's etag is the hex MD5 of the parts' binary MD5s joined in order,
  then ``-`` and the number of parts (sent quoted in the ``ETag`` header).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def md5(data: bytes) -> str:
    """A part's etag: the hex MD5 of its bytes."""
    return hashlib.md5(data).hexdigest()


def etag_from_md5s(md5s: Iterable[str]) -> str:
    """An object's etag from its parts' hex MD5s, in part order (unquoted)."""
    digests = [bytes.fromhex(digest) for digest in md5s]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def multipart_etag(parts: Iterable[bytes]) -> str:
    """An object's etag from its parts' bytes, in part order (unquoted)."""
    return etag_from_md5s(md5(part) for part in parts)


def split(data: bytes, part_size: int) -> list[bytes]:
    """``data`` cut in parts of ``part_size`` (the last may be shorter; one
    empty part for no bytes), as the clients upload a file."""
    return [data[i : i + part_size] for i in range(0, len(data), part_size)] or [b""]
