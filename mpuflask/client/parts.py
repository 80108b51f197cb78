"""How a file is cut into parts: R2's rules applied on the client, no I/O.

R2 (``shared/spec/r2-multipart.md``): at most 10,000 parts, every part but the
last at least 5 MiB and all of one size, none over 5 GiB. Choosing the size
here, before the first byte is sent, saves finding out at complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..rules import DEFAULT_MAX_PART_SIZE
from ..rules import DEFAULT_MIN_PART_SIZE
from ..rules import MAX_PART_NUMBER
from ..rules import MIB
from .errors import ClientError


@dataclass(frozen=True)
class PartPlan:
    """A file of ``size`` bytes cut into ``count`` parts of ``part_size`` bytes.

    The last part holds the remainder; an empty file has no parts (complete
    with an empty list makes an empty object, as R2 does).
    """

    size: int
    part_size: int

    @property
    def count(self) -> int:
        return -(-self.size // self.part_size)

    def span(self, part_number: int) -> tuple[int, int]:
        """``(offset, length)`` of part ``part_number`` (1-based) in the file."""
        if not 1 <= part_number <= self.count:
            raise ValueError(f"part {part_number} is outside 1..{self.count}")
        offset = (part_number - 1) * self.part_size
        return offset, min(self.part_size, self.size - offset)

    def numbers(self) -> Iterator[int]:
        return iter(range(1, self.count + 1))


def choose_part_size(
    size: int,
    part_size: int | None = None,
    *,
    min_part_size: int = DEFAULT_MIN_PART_SIZE,
    max_part_size: int = DEFAULT_MAX_PART_SIZE,
) -> PartPlan:
    """Plan the parts of a ``size``-byte file, checking a given ``part_size``.

    Without ``part_size``: the smallest whole number of MiB (at least
    ``min_part_size``) that keeps the count within 10,000, so a download can
    recompute the same size from the object's length alone.
    Raises :class:`ClientError` naming the rule a given size breaks.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    if part_size is None:
        needed = -(-size // MAX_PART_NUMBER)
        part_size = max(min_part_size, -(-needed // MIB) * MIB)
        if part_size > max_part_size:
            raise ClientError(
                f"a file of {size} bytes needs parts over {max_part_size} bytes "
                f"to fit in {MAX_PART_NUMBER} parts"
            )
        return PartPlan(size, part_size)
    if part_size <= 0:
        raise ClientError("the part size must be positive")
    if part_size > max_part_size:
        raise ClientError(
            f"part size {part_size} is over the maximum of {max_part_size} bytes"
        )
    plan = PartPlan(size, part_size)
    if plan.count > 1 and part_size < min_part_size:
        raise ClientError(
            f"part size {part_size} is under the minimum of {min_part_size} bytes "
            "(only the last part may be smaller)"
        )
    if plan.count > MAX_PART_NUMBER:
        least = -(-size // MAX_PART_NUMBER)
        raise ClientError(
            f"part size {part_size} cuts {size} bytes into {plan.count} parts; "
            f"at most {MAX_PART_NUMBER} are allowed: use at least {least} bytes"
        )
    return plan


def stream_part_size(part_size: int | None, min_part_size: int) -> int:
    """The part size for a stream of unknown size: ``part_size`` checked, or
    the default.

    The default is the cut :func:`choose_part_size` makes for any file of up
    to 10,000 parts of it (5 MiB: files up to ~48.8 GiB), so a download can
    recompute the etag. A given size must suit a part that is not the last
    (any stream may need many parts): at least the minimum, at most 5 GiB.
    Raises :class:`ClientError`.
    """
    if part_size is None:
        return choose_part_size(1, min_part_size=min_part_size).part_size
    if part_size < min_part_size:
        raise ClientError(
            f"part size {part_size} is under the minimum of {min_part_size} bytes"
        )
    if part_size > DEFAULT_MAX_PART_SIZE:
        raise ClientError(
            f"part size {part_size} is over the maximum of "
            f"{DEFAULT_MAX_PART_SIZE} bytes"
        )
    return part_size
