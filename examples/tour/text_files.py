"""Exercise 2 of docs/tour.md, solved: a text file's parts hold no NUL byte.

A part validator, in its two stages. On the headers, it decides whether the
part needs looking at (only parts of keys ending in ``.txt`` or ``.csv``);
then its stream check sees every chunk as it arrives and refuses the part at
the first NUL byte, before anything is stored. The upload stays usable: the
client can send the part again.

Run it::

    MPUFLASK_PART_VALIDATORS=examples.tour.text_files:text_files_are_text \\
      gunicorn wsgi:app
    printf 'a\\0b' | curl -X PUT --data-binary @- \\
      'http://127.0.0.1:8000/notes.txt?action=mpu-uploadpart&uploadId=U&partNumber=1'
    # 415 uploadPart: part 1 of a text file holds a NUL byte. (text_files_are_text)
"""

from __future__ import annotations

from mpuflask.hooks import PartInfo
from mpuflask.validators import PartRefused

TEXT_SUFFIXES = (".txt", ".csv")


class _NoNulByte:
    """A stream check: ``update`` sees each chunk, ``finish`` the end."""

    def __init__(self, part_number: int) -> None:
        self.part_number = part_number

    def update(self, chunk: bytes) -> None:
        if b"\0" in chunk:
            raise PartRefused(
                f"part {self.part_number} of a text file holds a NUL byte.",
                "text_files_are_text",
                415,
            )

    def finish(self) -> None:
        pass  # nothing to check at the end: every chunk was looked at


def text_files_are_text(part: PartInfo) -> _NoNulByte | None:
    """Part validator: look at the bodies of text files' parts only."""
    if not part.request.key.endswith(TEXT_SUFFIXES):
        return None
    return _NoNulByte(part.part_number)
