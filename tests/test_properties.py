"""Bad input, hunted with hypothesis: never a 500, never a file outside the
data directory, never a changed object after a refused request."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mpuflask import create_app
from mpuflask.errors import EntityTooSmall
from mpuflask.errors import PartSizesDiffer
from mpuflask.rules import check_part_sizes
from mpuflask.rules import multipart_etag

from . import oracle
from .conftest import MIN_PART
from .conftest import Flow
from .oracle import md5

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

keys = st.one_of(
    st.text(min_size=0, max_size=40),
    st.sampled_from(
        ["..", "../..", "/", "//x", "a/../../b", "\x00", ".", "~", "%2e%2e"]
    ),
    st.text(alphabet="./\\\x00é", min_size=1, max_size=12),
    st.text(min_size=1000, max_size=1100),
)
methods = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS"])
actions = st.one_of(
    st.sampled_from(
        ["mpu-create", "mpu-uploadpart", "mpu-complete", "mpu-abort", "mpu-listparts"]
        + ["get", "delete", "health", "metrics", ""]
    ),
    st.text(max_size=10),
    st.none(),
)
junk = st.one_of(
    st.none(), st.text(max_size=20), st.sampled_from(["1", "0", "10001", "-1"])
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, Path, Path]:
    root = tmp_path_factory.mktemp("world")
    data_dir = root / "data"
    app = create_app(
        {
            "TESTING": True,
            "MPUFLASK_DATA_DIR": str(data_dir),
            "MPUFLASK_MIN_PART_SIZE": MIN_PART,
        }
    )
    return app, root, data_dir


def _path_info(key: str) -> str:
    return "/" + key.encode("utf-8", "surrogatepass").decode("latin-1")


def _everything_inside(root: Path, data_dir: Path) -> None:
    assert sorted(p.name for p in root.iterdir()) == ["data"]
    real = os.path.realpath(data_dir)
    for folder, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            path = os.path.join(folder, name)
            target = os.path.realpath(path)
            assert target.startswith(real + os.sep), path


@SETTINGS
@given(
    key=keys,
    method=methods,
    action=actions,
    upload_id=junk,
    part_number=junk,
    body=st.binary(max_size=64),
)
def test_no_request_gets_a_500_or_escapes(
    world, key, method, action, upload_id, part_number, body
) -> None:
    app, root, data_dir = world
    query = {
        name: value
        for name, value in [
            ("action", action),
            ("uploadId", upload_id),
            ("partNumber", part_number),
        ]
        if value is not None
    }
    response = app.test_client().open(
        "/?" + urlencode(query),
        method=method,
        data=body,
        environ_overrides={"PATH_INFO": _path_info(key)},
    )
    assert response.status_code < 500, response.text
    _everything_inside(root, data_dir)


@pytest.fixture(scope="module")
def published(world) -> tuple[Flow, str, bytes]:
    app, _, _ = world
    flow = Flow(app.test_client())
    data = b"the object" * 200
    etag = flow.upload([data], key="stable")
    return flow, etag, data


part_refs = st.one_of(
    st.fixed_dictionaries(
        {
            "partNumber": st.one_of(
                st.integers(-5, 10005), st.text(max_size=3), st.none()
            ),
            "etag": st.one_of(st.text(max_size=34), st.integers(), st.none()),
        }
    ),
    st.integers(),
    st.text(max_size=5),
    st.none(),
)


@SETTINGS
@given(
    parts=st.one_of(
        st.lists(part_refs, max_size=6), st.integers(), st.none(), st.text(max_size=5)
    )
)
def test_refused_completes_change_nothing(world, published, parts) -> None:
    flow, etag, data = published
    upload_id = flow.create("stable")
    good = flow.part(upload_id, 1, b"replacement", key="stable")
    response = flow.client.post(
        f"/stable?action=mpu-complete&uploadId={upload_id}", json={"parts": parts}
    )
    assert response.status_code < 500
    if response.status_code == 200:
        # Only an empty list can succeed here: nothing else was uploaded.
        flow.upload([data], key="stable")
    else:
        got = flow.get("stable")
        assert (got.data, got.headers["etag"]) == (data, etag)
        flow.abort(upload_id, key="stable")
    assert good["etag"] == md5(b"replacement")


@SETTINGS
@given(number=st.text(max_size=8))
def test_part_numbers(world, number) -> None:
    app, _, _ = world
    flow = Flow(app.test_client())
    upload_id = flow.create("pn")
    response = flow.client.put(
        "/pn?"
        + urlencode(
            {"action": "mpu-uploadpart", "uploadId": upload_id, "partNumber": number}
        ),
        data=b"x",
    )
    valid = number.isascii() and number.isdigit() and 1 <= int(number) <= 10000
    if valid:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert response.text.startswith(
            "Part number must be between 1 and 10000 (inclusive)."
        )
    flow.abort(upload_id, key="pn")


@given(sizes=st.lists(st.integers(0, 3 * MIN_PART), max_size=6))
def test_size_rules_match_r2(sizes) -> None:
    """Accepted exactly when R2 accepts; refused with R2's error for the rule
    broken (10011 when a leading part is too small, else 10048)."""
    refusal: type[Exception] | None = None
    try:
        check_part_sizes(sizes, MIN_PART)
    except (EntityTooSmall, PartSizesDiffer) as error:
        refusal = type(error)
    leading = sizes[:-1]
    if len(sizes) < 2:
        expected = None
    elif any(s < MIN_PART for s in leading):
        expected = EntityTooSmall
    elif len(set(leading)) != 1 or sizes[-1] > leading[0]:
        expected = PartSizesDiffer
    else:
        expected = None
    assert refusal is expected


@given(parts=st.lists(st.binary(max_size=30), max_size=5))
def test_multipart_etag_is_md5_of_md5s(parts) -> None:
    """The server's etag arithmetic agrees with the tests' oracle."""
    assert multipart_etag([md5(p) for p in parts]) == oracle.multipart_etag(parts)


_entry_values = st.one_of(
    st.integers(min_value=-2, max_value=10_002),
    st.floats(allow_nan=False),
    st.sampled_from(["1", "01", "1a", "", "abc", True, None, [], {}]),
    st.sampled_from([md5(b"a"), md5(b"a").upper(), f'"{md5(b"b")}"', "x" * 32]),
)
_entries = st.one_of(
    st.fixed_dictionaries(
        {
            "partNumber": st.integers(min_value=1, max_value=10_000),
            "etag": st.sampled_from([md5(b"a"), md5(b"b")]),
        }
    ),
    st.dictionaries(st.sampled_from(["partNumber", "etag", "x"]), _entry_values),
    _entry_values,
)


@SETTINGS
@given(st.lists(_entries, max_size=8))
def test_a_complete_list_reads_as_each_entry_on_its_own_would(
    entries: list[object],
) -> None:
    """parse_complete_body takes the usual list in one comprehension: it
    answers exactly what reading each entry as R2 does, then sorting and
    checking the order, answers (refs, or the same error)."""
    from mpuflask.rules import _parsed_refs
    from mpuflask.rules import check_part_order
    from mpuflask.rules import parse_complete_body

    def outcome(read: object) -> object:
        try:
            return read()  # type: ignore[operator]
        except Exception as error:  # noqa: BLE001 - compared, not hidden
            return (type(error), str(error))

    def reference() -> object:
        refs = sorted(_parsed_refs(entries), key=lambda ref: ref.part_number)
        check_part_order(refs)
        return refs

    assert outcome(lambda: parse_complete_body({"parts": entries})) == outcome(
        reference
    )
