"""What the Worker-edge tests share: the parts of a three-part upload."""

from __future__ import annotations

from .conftest import MIN_PART

#: Two full parts and a short last one.
PARTS = [b"a" * MIN_PART, b"b" * MIN_PART, b"tail"]
