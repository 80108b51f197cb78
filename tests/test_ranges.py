"""``mpuflask.ranges`` against a plain reading of RFC 9110 section 14, by hypothesis."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from mpuflask.ranges import MAX_RANGES
from mpuflask.ranges import ByteRange
from mpuflask.ranges import multipart_byteranges
from mpuflask.ranges import requested_ranges

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
