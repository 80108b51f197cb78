"""A file-type sniff on part 1: only PNG and JPEG images may be uploaded.

A part validator that looks at the first bytes of part 1 as they stream in
and refuses the part (415) before it is stored if they are not an image's
magic number. Other parts pass untouched.

Run it::

    MPUFLASK_PART_VALIDATORS=examples.hooks.sniff_filetype:images_only gunicorn wsgi:app
    curl -X PUT --data-binary @notes.txt \\
      'http://127.0.0.1:8000/a.png?action=mpu-uploadpart&uploadId=U&partNumber=1'
    # 415 uploadPart: part 1 is not a PNG or JPEG image (images_only)
"""

from __future__ import annotations

from mpuflask.errors import ApiError
from mpuflask.hooks import PartInfo

MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
SNIFF_BYTES = 8


class _Sniffer:
    """Collects the first bytes of the part, then checks them once."""

    def __init__(self) -> None:
        self.head = b""
        self.checked = False

    def update(self, chunk: bytes) -> None:
        if self.checked:
            return
        self.head += chunk[: SNIFF_BYTES - len(self.head)]
        if len(self.head) >= SNIFF_BYTES:
            self._check()

    def finish(self) -> None:
        if not self.checked:
            self._check()

    def _check(self) -> None:
        self.checked = True
        if not self.head.startswith(MAGIC):
            raise ApiError(
                "uploadPart: part 1 is not a PNG or JPEG image (images_only)", 415
            )


def images_only(part: PartInfo) -> _Sniffer | None:
    """Part validator: sniff part 1's magic number while it streams."""
    return _Sniffer() if part.part_number == 1 else None
