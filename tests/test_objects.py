"""Reading and deleting objects: GET, HEAD, ranges, conditionals, delete."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from mpuflask.preconditions import http_date

from .conftest import MIN_PART
from .conftest import Flow
from .conftest import stored_files
from .oracle import multipart_etag

PARTS = [
    b"0123456789" * (MIN_PART // 10 + 1),
    b"abcdefghij" * (MIN_PART // 10 + 1),
    b"tail",
]
DATA = b"".join(PARTS)
SIZE = len(DATA)
ETAG = f'"{multipart_etag(PARTS)}"'


@pytest.fixture
def stored(flow: Flow) -> Flow:
    flow.upload(PARTS, key="obj", **{"Content-Type": "text/plain"})
    return flow


def test_get_headers(stored: Flow) -> None:
    got = stored.get("obj")
    assert got.status_code == 200
    assert got.data == DATA
    assert got.headers["etag"] == ETAG
    assert got.headers["Content-Length"] == str(SIZE)
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Accept-Ranges"] == "bytes"
    assert "Last-Modified" in got.headers
    assert "Content-Disposition" not in got.headers


def test_get_without_stored_type_is_octet_stream(flow: Flow) -> None:
    flow.upload([b"x"], key="plain")
    assert flow.get("plain").headers["Content-Type"] == "application/octet-stream"


def test_head_has_headers_no_body(stored: Flow) -> None:
    head = stored.client.head("/obj?action=get")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == str(SIZE)
    assert head.headers["etag"] == ETAG


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=5-20", 5, 20),
        (f"bytes={MIN_PART - 3}-{MIN_PART + 3}", MIN_PART - 3, MIN_PART + 3),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-7", SIZE - 7, SIZE - 1),
        (f"bytes=10-{SIZE + 100}", 10, SIZE - 1),
        (f"bytes=-{SIZE + 5}", 0, SIZE - 1),
    ],
)
def test_ranges(stored: Flow, header, start, end) -> None:
    got = stored.get("obj", Range=header)
    assert got.status_code == 206
    assert got.data == DATA[start : end + 1]
    assert got.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert got.headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}"])
def test_unsatisfiable_range_is_416(stored: Flow, header) -> None:
    got = stored.get("obj", Range=header)
    assert got.status_code == 416
    assert got.headers["Content-Range"] == f"bytes */{SIZE}"


def test_conditionals(stored: Flow) -> None:
    last_modified = stored.get("obj").headers["Last-Modified"]
    cases = [
        ({"If-None-Match": ETAG}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-None-Match": "*"}, 304),
        ({"If-Match": ETAG}, 200),
        ({"If-Match": '"other"'}, 412),
        ({"If-Match": '"other"', "Range": "bytes=0-3"}, 412),
        ({"If-Modified-Since": last_modified}, 304),
        ({"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 200),
        ({"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 412),
        ({"If-None-Match": '"other"', "If-Modified-Since": last_modified}, 200),
    ]
    for headers, status in cases:
        got = stored.get("obj", **headers)
        assert got.status_code == status, headers
        if status != 200:
            assert got.data == b""
            assert got.headers["etag"] == ETAG


@pytest.mark.parametrize(
    "sent",
    ['"other', '"a" "b"', f'{ETAG} "b"', f'"b" {ETAG}', '"', "W/"],
)
def test_an_if_match_no_etag_of_parses_from_fails(stored: Flow, sent: str) -> None:
    """An If-Match whose value Werkzeug could not parse was taken as absent:
    the object was served whatever the client meant to pin. It matches
    nothing, as one naming another version does (412, no body)."""
    got = stored.get("obj", **{"If-Match": sent})
    assert (got.status_code, got.data) == (412, b"")
    assert got.headers["etag"] == ETAG
    ranged = stored.get("obj", **{"If-Match": sent, "Range": "bytes=0-3"})
    assert ranged.status_code == 412
    head = stored.client.head("/obj?action=get", headers={"If-Match": sent})
    assert head.status_code == 412


def test_an_if_none_match_no_etag_of_parses_from_still_outranks_the_date(
    stored: Flow,
) -> None:
    """RFC 9110 13.1.3: If-Modified-Since is read only without If-None-Match.
    One that names nothing matches nothing: the object, 200."""
    last_modified = stored.get("obj").headers["Last-Modified"]
    for sent in ['"other', '"a" "b"']:
        got = stored.get(
            "obj", **{"If-None-Match": sent, "If-Modified-Since": last_modified}
        )
        assert (got.status_code, got.data) == (200, DATA), sent
    # Empty (or only commas): no list, no condition; the date decides.
    for sent in ["", " , "]:
        got = stored.get(
            "obj", **{"If-None-Match": sent, "If-Modified-Since": last_modified}
        )
        assert got.status_code == 304, repr(sent)
        got = stored.get("obj", **{"If-Match": sent})
        assert got.status_code == 200, repr(sent)


EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def _obsolete_forms(last_modified: str) -> tuple[str, str]:
    """``last_modified`` (an IMF-fixdate) in rfc850 and asctime form."""
    when = parsedate_to_datetime(last_modified)
    rfc850 = f"{when:%A, %d-%b-%y %H:%M:%S} GMT"
    asctime = f"{when:%a %b} {when.day:2d} {when:%H:%M:%S %Y}"
    return rfc850, asctime


@pytest.mark.parametrize(
    ("name", "value", "status"),
    [
        # Two header lines, joined by the server (gunicorn joins with ","),
        # or one line listing two dates: RFC 9110 13.1.3 / 13.1.4 MUST
        # ignore it. The first date was read and decided the answer.
        ("If-Modified-Since", "{lm},{lm}", 200),
        ("If-Modified-Since", "{lm}, " + EPOCH, 200),
        ("If-Unmodified-Since", EPOCH + ",{lm}", 200),
        ("If-Unmodified-Since", EPOCH + ", {lm}", 200),
        # rfc850's two-digit year: one more than 50 years ahead is the past
        # century's (RFC 9110 5.6.7), so "70" is 2070 until then, not 1970.
        ("If-Unmodified-Since", "Thursday, 01-Jan-70 00:00:00 GMT", 200),
        ("If-Modified-Since", "Thursday, 01-Jan-70 00:00:00 GMT", 304),
        # Not an HTTP-date (a zone other than GMT): ignored, not converted.
        ("If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 -0500", 200),
        ("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 +0000", 200),
        # Still read: the three forms RFC 9110 5.6.7 defines.
        ("If-Modified-Since", "{lm}", 304),
        ("If-Modified-Since", "{rfc850}", 304),
        ("If-Modified-Since", "{asctime}", 304),
        ("If-Unmodified-Since", EPOCH, 412),
        (
            "If-Unmodified-Since",
            "Thursday, 01-Jan-70 00:00:00 GMT".replace("70", "99"),
            412,
        ),
        ("If-Unmodified-Since", "Thu Jan  1 00:00:00 1970", 412),
    ],
)
def test_a_date_condition_reads_one_http_date_or_is_ignored(
    stored: Flow, name: str, value: str, status: int
) -> None:
    last_modified = stored.get("obj").headers["Last-Modified"]
    rfc850, asctime = _obsolete_forms(last_modified)
    sent = value.format(lm=last_modified, rfc850=rfc850, asctime=asctime)
    got = stored.get("obj", **{name: sent})
    assert got.status_code == status, sent
    assert got.data == (DATA if status == 200 else b"")


@pytest.mark.parametrize(
    ("year", "now", "read"),
    [("70", 2026, 2070), ("76", 2026, 2076), ("77", 2026, 1977), ("26", 2026, 2026)]
    + [("99", 2026, 1999), ("00", 2099, 2100), ("49", 2099, 2149), ("50", 2099, 2050)],
)
def test_an_rfc850_year_is_the_one_within_50_years(
    year: str, now: int, read: int
) -> None:
    date = http_date(f"Sunday, 06-Nov-{year} 08:49:37 GMT", datetime(now, 6, 1))
    assert date is not None and date.year == read


def test_if_range_with_a_list_of_dates_serves_the_whole_object(stored: Flow) -> None:
    """If-Range holds one validator (RFC 9110 13.1.5); a list is none: 200."""
    last_modified = stored.get("obj").headers["Last-Modified"]
    exact = stored.get("obj", Range="bytes=0-1", **{"If-Range": last_modified})
    assert (exact.status_code, exact.data) == (206, DATA[:2])
    listed = f"{last_modified}, {EPOCH}"
    got = stored.get("obj", Range="bytes=0-1", **{"If-Range": listed})
    assert (got.status_code, got.data) == (200, DATA)


def test_a_304_repeats_the_stored_freshness_headers(flow: Flow) -> None:
    """RFC 9110 15.4.5: a 304 carries the Cache-Control and Expires a 200
    would have sent; it said only nosniff, the etag and Last-Modified, so a
    cache refreshed by it lost the object's own freshness."""
    stored = {
        "Cache-Control": "max-age=3600",
        "Expires": "Wed, 21 Oct 2030 07:28:00 GMT",
        "Content-Type": "text/html",
        "Content-Disposition": "attachment",
    }
    flow.upload([b"page"], key="page", **stored)
    whole = flow.get("page")
    assert whole.headers["Cache-Control"] == stored["Cache-Control"]
    etag = whole.headers["etag"]
    for condition in (
        {"If-None-Match": etag},
        {"If-Modified-Since": whole.headers["Last-Modified"]},
    ):
        got = flow.get("page", **condition)
        assert (got.status_code, got.data) == (304, b"")
        assert got.headers["Cache-Control"] == stored["Cache-Control"]
        assert got.headers["Expires"] == stored["Expires"]
        assert got.headers["etag"] == etag
        assert "Content-Type" not in got.headers
        assert "Content-Disposition" not in got.headers
    refused = flow.get("page", **{"If-Match": '"other"'})
    assert refused.status_code == 412
    assert "Cache-Control" not in refused.headers
    # Stored without them: a 304 adds none.
    flow.upload([b"plain"], key="plain")
    plain = flow.get("plain", **{"If-None-Match": flow.get("plain").headers["etag"]})
    assert plain.status_code == 304
    assert "Cache-Control" not in plain.headers
    assert "Expires" not in plain.headers


def test_delete(stored: Flow, stored_state) -> None:
    response = stored.client.delete("/obj?action=delete")
    assert response.status_code == 204
    assert response.data == b""
    assert stored.get("obj").status_code == 404
    assert stored_state() == {}
    assert stored.client.delete("/obj?action=delete").status_code == 204


@pytest.mark.filesystem_only(
    "S3 cannot pin an old version: tests/s3 checks the reader fails cleanly"
)
def test_reader_keeps_its_version_through_overwrite_and_delete(
    app, stored: Flow, data_dir: Path
) -> None:
    """A GET that has started streams the whole old version, whatever happens."""
    bucket = app.extensions["mpuflask"].bucket
    body = bucket.get("obj")
    first = body.read(10)
    stored.upload([b"new version"], key="obj")
    stored.client.delete("/obj?action=delete")
    stored.upload([b"newer still"], key="obj")
    rest = body.read()
    assert first + rest == DATA
    body.close()
    assert stored.get("obj").data == b"newer still"
    bucket.sweep()
    assert DATA[:100] not in b"".join(stored_files(data_dir).values())
