"""Recomputing an object's etag from its bytes, to verify a download.

An R2 multipart etag is ``md5(md5(part 1) + ... + md5(part N))-N``: it can be
recomputed only knowing where the parts were cut. The cut is known for a
single part (the whole body) or when the part size is given; otherwise the
client guesses its own default cut (:func:`.parts.choose_part_size`), which
is right for objects it uploaded but may be wrong for others (the AWS CLI
cuts 8 MiB parts): a guess that gives the same part count is tried, and a
mismatch under it proves nothing. Without a cut, the download is checked
only for length and for an etag that stayed the same (If-Match).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ..rules import DEFAULT_MIN_PART_SIZE
from ..rules import is_md5_hex
from ..rules import multipart_etag
from .errors import ClientError
from .errors import VerificationFailed
from .parts import choose_part_size


class PartHasher:
    """MD5s of consecutive ``part_size`` pieces of a stream fed in any chunks."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self._digests: list[str] = []
        self._md5 = hashlib.md5()
        self._filled = 0

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            piece = view[: self.part_size - self._filled]
            self._md5.update(piece)
            self._filled += len(piece)
            view = view[len(piece) :]
            if self._filled == self.part_size:
                self._digests.append(self._md5.hexdigest())
                self._md5, self._filled = hashlib.md5(), 0

    def digests(self) -> list[str]:
        """The part MD5s so far, including a last, shorter part."""
        if self._filled:
            return [*self._digests, self._md5.hexdigest()]
        return list(self._digests)


@dataclass(frozen=True)
class EtagCheck:
    """How to recompute an etag: hash ``part_size`` pieces, then combine.

    ``part_size`` None: the cut is unknown and the etag cannot be recomputed.
    ``guessed``: ``part_size`` is the client's default, not known: a mismatch
    may mean other parts rather than other bytes.
    """

    etag: str
    part_size: int | None
    multipart: bool
    guessed: bool = False

    def etag_of(self, digests: list[str]) -> str:
        if self.multipart:
            return multipart_etag(digests)
        return digests[0] if digests else hashlib.md5().hexdigest()


def etag_check(
    etag: str,
    size: int,
    part_size: int | None = None,
    min_part_size: int = DEFAULT_MIN_PART_SIZE,
) -> EtagCheck:
    """Work out the part size that produced ``etag`` for a ``size``-byte object."""
    whole = max(size, 1)
    if is_md5_hex(etag):
        return EtagCheck(etag, whole, multipart=False)
    md5, _, count_text = etag.partition("-")
    if not (is_md5_hex(md5) and count_text.isdigit()):
        return EtagCheck(etag, None, multipart=True)
    count = int(count_text)
    if count <= 1:
        return EtagCheck(etag, whole, multipart=True)
    try:
        plan = choose_part_size(size, part_size, min_part_size=min_part_size)
    except ClientError:
        return EtagCheck(etag, None, multipart=True)
    if plan.count != count:
        return EtagCheck(etag, None, multipart=True)
    return EtagCheck(etag, plan.part_size, multipart=True, guessed=part_size is None)


def etag_verdict(
    check: EtagCheck,
    etag: str,
    digests_of: Callable[[int], list[str]],
    checked: str,
    sized: bool,
) -> str | None:
    """Recompute ``etag`` from the part MD5s ``digests_of(part size)`` gives.

    None when it matched; else a warning saying why it could not be checked,
    ending with ``checked`` (what was checked instead). A mismatch fails only
    when the cut is known: one part (the MD5 of the whole body) or the part
    size given. Under the client's guessed default cut it proves nothing (the
    object may be cut otherwise, as the AWS CLI's 8 MiB parts are, with the
    same count): then the bytes are kept, unverified. ``sized``: the length
    was known and checked (for the no-etag warning).
    """
    if not etag:  # nor was If-Match sent: a replaced object goes unseen
        return "the server sent no etag: there was nothing to check the bytes " + (
            "against, only their length" if sized else "against"
        )
    if check.part_size is None:
        return (
            f'etag "{etag}" not recomputed (unknown part size; give '
            f"--part-size); {checked}"
        )
    computed = check.etag_of(digests_of(check.part_size))
    if computed == etag:
        return None
    if check.guessed:
        return (
            f'etag "{etag}" not recomputed (parts of the default '
            f"{check.part_size} bytes do not give it: the object was cut "
            f"otherwise, or its bytes differ; give --part-size); {checked}"
        )
    raise VerificationFailed(
        f"downloaded bytes have etag {computed}, the server said {etag}"
    )
