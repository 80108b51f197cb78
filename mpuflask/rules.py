"""R2's multipart rules, with no I/O: every store applies the same ones.

Source: ``shared/spec/r2-multipart.md`` (R2's documentation and Cloudflare's own
runtime, observed request by request).
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .bulk import all_match
from .bulk import instances
from .errors import ApiError
from .errors import EntityTooSmall
from .errors import InvalidObjectName
from .errors import InvalidPartNumber
from .errors import InvalidPartOrder
from .errors import PartSizesDiffer

MIN_PART_NUMBER = 1
MAX_PART_NUMBER = 10_000
MAX_KEY_BYTES = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_MIN_PART_SIZE = 5 * MIB
DEFAULT_MAX_PART_SIZE = 5 * GIB

#: ASCII digits only: ``str.isdigit`` also accepts "²", which ``int()`` refuses.
_DIGITS = re.compile(r"[0-9]+")
_MD5_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class PartRef:
    """One entry of a complete list: which part, and the etag the client saw.

    Slotted: a complete of 10,000 parts makes 10,000 of them, a quarter
    faster than with a ``__dict__`` each.
    """

    part_number: int
    etag: str


def check_key(key: str, operation: str) -> str:
    """Return ``key`` if R2 accepts it as an object name, else raise 10020.

    A key is any UTF-8 string of 1 to 1024 bytes; ``..``, ``//`` and NUL are
    just characters (stores never turn a key into a path).
    """
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidObjectName(operation) from None
    if not 1 <= size <= MAX_KEY_BYTES:
        raise InvalidObjectName(operation)
    return key


#: What no header value can hold: WSGI headers are latin-1 text, and a control
#: character (a line break above all) would end or break the header. Stored
#: metadata is checked with it twice: at create (:func:`check_http_metadata`)
#: and when a record is read back from the data directory.
UNSENDABLE_HEADER_TEXT = re.compile(r"[^\t\x20-\x7e\x80-\xff]")


def check_http_metadata(headers: Mapping[str, str], operation: str) -> None:
    """Refuse (400) metadata a GET could never send back.

    gunicorn refuses such header bytes itself; a laxer WSGI server or a
    caller in process may hand them over, and the upload made with them
    would be unusable (its record fails the same check when read).
    """
    for name, value in headers.items():
        if UNSENDABLE_HEADER_TEXT.search(value):
            raise ApiError(
                f"{operation}: the {name} header holds a character no HTTP header "
                "can carry (a control character, or one beyond latin-1)"
            )


def parse_part_number(text: str) -> int:
    """Parse the ``partNumber`` query parameter strictly.

    The seed Worker's ``parseInt`` reads ``"abc"`` as NaN and ``"2x"`` as 2;
    we accept only plain decimal digits, in R2's range.
    """
    number = _digits_value(text) if _DIGITS.fullmatch(text) else None
    if number is None or not MIN_PART_NUMBER <= number <= MAX_PART_NUMBER:
        raise InvalidPartNumber(text, MAX_PART_NUMBER)
    return number


def _digits_value(digits: str) -> int:
    """The value of a string of ASCII digits, any length, leading zeros allowed.

    Past 6 significant digits it is out of any part number's range anyway,
    and ``int()`` refuses strings of over 4,300 digits: answer "too big".
    """
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 6 else MAX_PART_NUMBER + 1


def normalize_etag(etag: str) -> str:
    """Compare etags as R2 does: surrounding double quotes do not matter."""
    if len(etag) >= 2 and etag[0] == etag[-1] == '"':
        etag = etag[1:-1]
    return etag.lower()


def is_md5_hex(etag: str) -> bool:
    """True for the only shape a part etag can have: 32 lowercase hex digits."""
    return _MD5_HEX.fullmatch(etag) is not None


_BY_NUMBER = operator.attrgetter("part_number")


def parse_complete_body(body: Any) -> list[PartRef]:
    """Read ``{"parts": [{"partNumber": N, "etag": "..."}, ...]}`` into PartRefs.

    Returns the refs sorted by part number: R2 assembles by part number
    whatever the listed order (a client may list parts as their uploads
    finished). Raises a 400 naming what is wrong with the body, and
    InvalidPartOrder for a part listed twice (S3 refuses it too).
    """
    if body is None:
        raise ApiError("Missing or incomplete body")
    if not isinstance(body, dict) or not isinstance(body.get("parts"), list):
        raise ApiError(
            'Missing or incomplete body: expected {"parts": '
            '[{"partNumber": <integer>, "etag": "<string>"}, ...]}'
        )
    items = body["parts"]
    refs = _usual_refs(items)
    if refs is None:
        refs = _parsed_refs(items)
    refs.sort(key=_BY_NUMBER)
    check_part_order(refs)
    return refs


def _usual_refs(items: list[Any]) -> list[PartRef] | None:
    """The refs of the usual list, every entry ``{"partNumber": <int in
    range>, "etag": "<md5 hex>"}``, checked and made column by column
    (:mod:`mpuflask.bulk`: complete lists up to 10,000); None for any other
    list, for :func:`_parsed_refs` to read entry by entry."""
    if not set(map(type, items)) <= {dict}:
        return None
    numbers = [item.get("partNumber") for item in items]
    etags = [item.get("etag") for item in items]
    if not (
        set(map(type, numbers)) <= {int}
        and MIN_PART_NUMBER <= min(numbers, default=MIN_PART_NUMBER)
        and max(numbers, default=MAX_PART_NUMBER) <= MAX_PART_NUMBER
        and all_match(_MD5_HEX, etags)
    ):
        return None
    return instances(PartRef, part_number=numbers, etag=etags)


def _parsed_refs(items: list[Any]) -> list[PartRef]:
    """Each entry as R2 reads it, or a 400 naming the first that is wrong."""
    refs: list[PartRef] = []
    for index, item in enumerate(items):
        number = item.get("partNumber") if isinstance(item, dict) else None
        etag = item.get("etag") if isinstance(item, dict) else None
        value = _listed_part_number(number)
        if value is None or not isinstance(etag, str):
            raise ApiError(
                f"Missing or incomplete body: parts[{index}] needs an integer "
                '"partNumber" and a string "etag"'
            )
        if not MIN_PART_NUMBER <= value <= MAX_PART_NUMBER:
            raise InvalidPartNumber(_shown_number(number, value), MAX_PART_NUMBER)
        refs.append(PartRef(value, normalize_etag(etag)))
    return refs


def _listed_part_number(value: Any) -> int | None:
    """A complete body's ``partNumber`` as R2 reads it, or None if it is not one.

    R2 takes any integer-valued JSON number (``1``, ``1.0``, ``1e0``) and a
    string of ASCII digits (``"1"``); ``1.5``, ``"1a"``, ``true`` and ``null``
    are not part numbers.
    """
    if type(value) is int:
        return value
    if type(value) is float:
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return _digits_value(value)
    return None


def _shown_number(listed: Any, value: int) -> str:
    """The out-of-range part number as the client wrote it, for the error text."""
    return listed if isinstance(listed, str) else str(value)


def check_part_order(refs: Sequence[PartRef]) -> None:
    """Refuse a list of refs that is not strictly ascending by part number.

    :func:`parse_complete_body` sorts what the client listed, so from a request
    only a part listed twice gets here; the stores call this again as a guard
    on their own input.
    """
    for before, after in zip(refs, refs[1:], strict=False):
        if after.part_number == before.part_number:
            raise InvalidPartOrder(
                "completeMultipartUpload",
                f"Part number {after.part_number} is listed more than once; "
                "each part may appear only once.",
            )
        if after.part_number < before.part_number:
            raise InvalidPartOrder("completeMultipartUpload")


def check_part_sizes(sizes: Sequence[int], min_part_size: int) -> None:
    """Apply R2's size rules to the listed parts, in order, at complete.

    Every part but the last is at least ``min_part_size``; all but the last
    have one size; the last is that size or smaller.
    """
    if len(sizes) < 2:
        return
    *leading, last = sizes
    if any(size < min_part_size for size in leading):
        raise EntityTooSmall("completeMultipartUpload")
    if any(size != leading[0] for size in leading) or last > leading[0]:
        raise PartSizesDiffer("completeMultipartUpload")


def multipart_etag(part_md5s: Sequence[str]) -> str:
    """The object etag: MD5 of the parts' binary MD5s, then ``-<count>``."""
    digest = hashlib.md5(b"".join(bytes.fromhex(md5) for md5 in part_md5s))
    return f"{digest.hexdigest()}-{len(part_md5s)}"
