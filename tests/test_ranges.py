"""Ranges and conditionals on GET (``mpuflask.ranges``, ``preconditions``).

Through the app on both stores: what RFC 9110 says where the Worker ignores the
headers (issue 12, items 4 and 5). Then ``requested_ranges`` against a plain
reading of RFC 9110 section 14, by hypothesis.
"""

from __future__ import annotations

import email
import email.policy
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpuflask.ranges import MAX_RANGES
from mpuflask.ranges import ByteRange
from mpuflask.ranges import multipart_byteranges
from mpuflask.ranges import requested_ranges

from .conftest import MIN_PART
from .conftest import Flow
from .oracle import multipart_etag

PARTS = [b"a" * MIN_PART, b"b" * MIN_PART, b"tail"]

# -- 4 and 5. If-Match: * and Range --------------------------------------------------

DATA = b"".join(PARTS)
SIZE = len(DATA)
OBJECT_ETAG = f'"{multipart_etag(PARTS)}"'


@pytest.fixture
def stored(flow: Flow) -> Flow:
    flow.upload(PARTS, key="obj", **{"Content-Type": "text/plain"})
    return flow


def test_if_match_star_matches_a_current_object(stored: Flow) -> None:
    got = stored.get("obj", **{"If-Match": "*"})
    assert (got.status_code, got.data) == (200, DATA)
    assert got.headers["etag"] == OBJECT_ETAG
    ranged = stored.get("obj", **{"If-Match": "*", "Range": "bytes=0-3"})
    assert (ranged.status_code, ranged.data) == (206, DATA[:4])
    listed = stored.get("obj", **{"If-Match": f'"other", {OBJECT_ETAG}'})
    assert listed.status_code == 200
    head = stored.client.head("/obj?action=get", headers={"If-Match": "*"})
    assert (head.status_code, head.data) == (200, b"")


def test_if_match_star_on_a_missing_object_is_404(flow: Flow) -> None:
    """RFC 9110 13.2.1: preconditions do not apply to a response that is a 404."""
    got = flow.get("absent", **{"If-Match": "*"})
    assert (got.status_code, got.text) == (404, "Object Not Found")


@pytest.mark.parametrize(
    "header",
    [
        "items=0-1",
        "bits=0-1",
        "none",
        "bytes",
        "bytes=",
        "bytes=abc",
        "bytes=-",
        "bytes=5-2",
        "bytes=0-1;x",
        "bytes=0-1,3-2",
        "bytes=1-x",
        "bytes=0x1-2",
        "bytes=²-3",
        "bytes=0-5,3-8",
        "bytes=0-,0-",
        "bytes=-5,0-",
        "bytes=0-1,0-1",
    ],
)
def test_ranges_we_ignore_serve_the_whole_object(stored: Flow, header: str) -> None:
    got = stored.get("obj", Range=header)
    assert (got.status_code, got.data) == (200, DATA)
    assert got.headers["Content-Length"] == str(SIZE)
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Accept-Ranges"] == "bytes"
    assert "Content-Range" not in got.headers


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("BYTES=0-1", 0, 1),
        ("bytes= 2-3 ", 2, 3),
        ("bytes=,2-3,", 2, 3),
        (f"bytes=0-1,{SIZE}-", 0, 1),
        (f"bytes={SIZE + 1}-{SIZE + 9},-1", SIZE - 1, SIZE - 1),
        ("bytes=0000000000000000000000000007-7", 7, 7),
        (f"bytes=5-{'9' * 5000}", 5, SIZE - 1),
    ],
)
def test_one_satisfiable_range_is_a_single_part(
    stored: Flow, header: str, start: int, end: int
) -> None:
    got = stored.get("obj", Range=header)
    assert got.status_code == 206
    assert got.data == DATA[start : end + 1]
    assert got.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert got.headers["Content-Length"] == str(end - start + 1)
    assert got.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    "header",
    ["bytes=-0", f"bytes={SIZE}-,{SIZE + 5}-{SIZE + 9}", f"bytes={'9' * 5000}-"],
)
def test_no_satisfiable_range_is_416(stored: Flow, header: str) -> None:
    got = stored.get("obj", Range=header)
    assert got.status_code == 416
    assert got.headers["Content-Range"] == f"bytes */{SIZE}"


def expected_multipart(
    content_type: str,
    ranges: list[tuple[int, int]],
    part_type: str,
    data: bytes = DATA,
) -> bytes:
    """The exact body RFC 9110 14.6 describes, for the boundary the server chose."""
    prefix = "multipart/byteranges; boundary="
    assert content_type.startswith(prefix)
    boundary = content_type[len(prefix) :].encode()
    assert boundary and len(boundary) <= 70
    body = b""
    for index, (start, end) in enumerate(ranges):
        body += (b"\r\n" if index else b"") + b"--" + boundary + b"\r\n"
        body += f"Content-Type: {part_type}\r\n".encode()
        body += f"Content-Range: bytes {start}-{end}/{len(data)}\r\n\r\n".encode()
        body += data[start : end + 1]
    return body + b"\r\n--" + boundary + b"--\r\n"


def parsed_parts(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """The parts as a MIME parser reads them: (type, range, bytes)."""
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body,
        policy=email.policy.HTTP,
    )
    assert message.is_multipart()
    return [
        (part["Content-Type"], part["Content-Range"], part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        ("bytes=0-1,3-4", [(0, 1), (3, 4)]),
        ("bytes=3-4,0-1", [(3, 4), (0, 1)]),
        ("bytes=0-1,2-3", [(0, 1), (2, 3)]),
        ("bytes=0-1,-3", [(0, 1), (SIZE - 3, SIZE - 1)]),
        (
            f"bytes={MIN_PART - 2}-{MIN_PART + 1}, 10-19, {SIZE}-",
            [(MIN_PART - 2, MIN_PART + 1), (10, 19)],
        ),
        (f"bytes=0-0,{SIZE - 1}-{SIZE + 100}", [(0, 0), (SIZE - 1, SIZE - 1)]),
    ],
)
def test_several_ranges_are_multipart_byteranges(
    stored: Flow, header: str, ranges: list[tuple[int, int]]
) -> None:
    got = stored.get("obj", Range=header)
    assert got.status_code == 206
    content_type = got.headers["Content-Type"]
    assert got.data == expected_multipart(content_type, ranges, "text/plain")
    assert got.headers["Content-Length"] == str(len(got.data))
    assert "Content-Range" not in got.headers
    assert got.headers["etag"] == OBJECT_ETAG
    assert parsed_parts(content_type, got.data) == [
        ("text/plain", f"bytes {start}-{end}/{SIZE}", DATA[start : end + 1])
        for start, end in ranges
    ]


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1", "bytes=0-1,3-4", f"bytes={SIZE}-", "bytes=-0"],
)
def test_head_ignores_range(stored: Flow, header: str) -> None:
    """RFC 9110 14.2: range handling is defined for GET only, and a server
    MUST ignore Range on any other method. A HEAD with Range was answered
    206 (one range: Content-Range, Content-Length 2; several: a multipart
    type) or 416 for an unsatisfiable one; it is the whole object's 200."""
    for if_range in ({}, {"If-Range": OBJECT_ETAG}):
        head = stored.client.head(
            "/obj?action=get", headers={"Range": header, **if_range}
        )
        assert (head.status_code, head.data) == (200, b"")
        assert head.headers["Content-Length"] == str(SIZE)
        assert head.headers["Content-Type"] == "text/plain"
        assert head.headers["Accept-Ranges"] == "bytes"
        assert head.headers["etag"] == OBJECT_ETAG
        assert "Content-Range" not in head.headers


def test_range_count_is_bounded(stored: Flow) -> None:
    ranges = [(2 * i, 2 * i) for i in range(100)]
    allowed = "bytes=" + ",".join(f"{s}-{e}" for s, e in ranges)
    got = stored.get("obj", Range=allowed)
    assert got.status_code == 206
    assert got.data == expected_multipart(
        got.headers["Content-Type"], ranges, "text/plain"
    )
    too_many = allowed + ",300-300"
    got = stored.get("obj", Range=too_many)
    assert (got.status_code, got.data) == (200, DATA)


def test_multipart_parts_carry_the_stored_type_or_octet_stream(flow: Flow) -> None:
    data = b"0123456789"
    flow.upload([data], key="untyped")
    got = flow.get("untyped", Range="bytes=0-0,9-9")
    assert got.status_code == 206
    assert got.data == expected_multipart(
        got.headers["Content-Type"],
        [(0, 0), (9, 9)],
        "application/octet-stream",
        data,
    )


def test_multipart_drops_the_content_encoding(flow: Flow) -> None:
    """The stored coding names the object's bytes, not the multipart wrapping."""
    flow.upload(
        [b"0123456789"],
        key="coded",
        **{"Content-Encoding": "gzip", "Cache-Control": "no-cache"},
    )
    several = flow.get("coded", Range="bytes=0-0,9-9")
    assert several.status_code == 206
    assert "Content-Encoding" not in several.headers
    assert several.headers["Cache-Control"] == "no-cache"
    one = flow.get("coded", Range="bytes=0-0")
    assert one.headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize(
    ("if_range", "served"),
    [
        (OBJECT_ETAG, 206),
        ('"other"', 200),
        (f"W/{OBJECT_ETAG}", 200),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 200),
        ("not a validator", 200),
        ("last-modified", 206),
    ],
)
def test_if_range_decides_between_ranges_and_whole(
    stored: Flow, if_range: str, served: int
) -> None:
    if if_range == "last-modified":
        if_range = stored.get("obj").headers["Last-Modified"]
    for header in ("bytes=0-1", "bytes=0-1,3-4"):
        got = stored.get("obj", Range=header, **{"If-Range": if_range})
        assert got.status_code == served, (header, if_range)
        if served == 200:
            assert got.data == DATA


def test_conditionals_still_come_before_ranges(stored: Flow) -> None:
    assert (
        stored.get(
            "obj", Range="bytes=0-1,3-4", **{"If-None-Match": OBJECT_ETAG}
        ).status_code
        == 304
    )
    assert (
        stored.get("obj", Range="bytes=0-1,3-4", **{"If-Match": '"other"'}).status_code
        == 412
    )
    assert (
        stored.get("obj", Range="items=0-1", **{"If-Match": '"other"'}).status_code
        == 412
    )


# -- the selection, by hypothesis ----------------------------------------------

positions = st.integers(min_value=0, max_value=300)
specs = st.one_of(
    st.tuples(positions, positions).map(lambda p: f"{p[0]}-{p[1]}"),
    positions.map(lambda first: f"{first}-"),
    positions.map(lambda suffix: f"-{suffix}"),
)


def reference(specs: list[str], size: int) -> list[tuple[int, int]] | None:
    """RFC 9110 14.1.2, spelled out; None where we serve the whole object."""
    if size == 0 or len(specs) > MAX_RANGES:
        return None
    chosen = []
    for spec in specs:
        first, _, last = spec.partition("-")
        if first == "":
            if int(last) > 0:
                chosen.append((max(0, size - int(last)), size))
        elif last == "":
            if int(first) < size:
                chosen.append((int(first), size))
        else:
            if int(last) < int(first):
                return None
            if int(first) < size:
                chosen.append((int(first), min(int(last) + 1, size)))
    ordered = sorted(chosen)
    if any(a[1] > b[0] for a, b in zip(ordered, ordered[1:], strict=False)):
        return None
    return chosen


@given(st.lists(specs, min_size=1, max_size=MAX_RANGES + 3), st.integers(0, 250))
def test_ranges_follow_the_rfc(specs: list[str], size: int) -> None:
    got = requested_ranges("bytes=" + ",".join(specs), size)
    expected = reference(specs, size)
    if got is None:
        assert expected is None
    else:
        assert [(r.start, r.stop) for r in got] == expected


@given(st.text(max_size=60), st.integers(0, 100))
def test_any_header_is_served_or_ignored_never_an_error(header: str, size: int) -> None:
    ranges = requested_ranges(header, size)
    for byte_range in ranges or []:
        assert 0 <= byte_range.start < byte_range.stop <= size


@given(
    st.binary(min_size=1, max_size=200),
    st.lists(
        st.tuples(st.integers(0, 199), st.integers(1, 50)), min_size=2, max_size=6
    ),
)
def test_multipart_length_is_exact(data: bytes, picks: list[tuple[int, int]]) -> None:
    ranges = [
        ByteRange(start, min(start + length, len(data)))
        for start, length in picks
        if start < len(data)
    ]
    body = multipart_byteranges(io.BytesIO(data), ranges, len(data), "a/b", 7)
    produced = b"".join(body.chunks)
    assert len(produced) == body.length
    for byte_range in ranges:
        assert data[byte_range.start : byte_range.stop] in produced
