"""The signing scheme: one tuple, one signature, and any one field changed refused.

Property tests of ``mpuflask.signing`` on its own, then the same through HTTP.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mpuflask import signing

from .signing_support import MISMATCH
from .signing_support import SECRET
from .signing_support import signed


@pytest.fixture
def signed_app(make_app: Any) -> Flask:
    return make_app(MPUFLASK_SIGNING_KEY=SECRET)


# -- the scheme: one tuple, one signature --------------------------------------------

texts = st.text()
optional_texts = st.none() | st.text()
nasty = st.sampled_from(["", "\n", "&", "=", "%", ":", "-", "0", "1:", "-\n", "%0A"])
tricky_texts = st.one_of(texts, nasty, st.text(alphabet="\n&=%:-01", max_size=8))
tuples = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]) | texts,
        "key": tricky_texts,
        "action": st.none() | tricky_texts,
        "expires": st.integers(min_value=0, max_value=10**12 - 1),
        "upload_id": st.none() | tricky_texts,
        "part_number": st.none() | tricky_texts,
        "identity": st.none() | tricky_texts.filter(bool),
    }
)
FIELDS = ("method", "key", "action", "expires", "upload_id", "part_number", "identity")


def _args(fields: dict[str, Any], given_signature: str) -> dict[str, str]:
    """The query parameters a request for ``fields`` carries."""
    args = {
        signing.EXPIRES_PARAM: str(fields["expires"]),
        signing.SIGNATURE_PARAM: given_signature,
    }
    for name, param in [
        ("action", "action"),
        ("upload_id", "uploadId"),
        ("part_number", "partNumber"),
        ("identity", signing.IDENTITY_PARAM),
    ]:
        if fields[name] is not None:
            args[param] = fields[name]
    return args


def _verifies(fields: dict[str, Any], given_signature: str) -> bool:
    try:
        signing.verify(
            SECRET,
            method=fields["method"],
            key=fields["key"],
            args=_args(fields, given_signature),
            now=0,
        )
    except signing.SignedUrlError:
        return False
    return True


def _resliced(draw: st.DrawFn, first: dict[str, Any]) -> dict[str, Any]:
    """``first``'s fields glued together, then cut at other places.

    The attack on a scheme that joins fields: the same characters, other
    boundaries (a key that swallows the action, an identity that takes the
    rest). Cuts fall on the glue (so a joined message stays the same), or
    anywhere when the glue is empty.
    """
    glue = draw(st.sampled_from(["\n", "&", ":", ""]))
    whole = glue.join(
        "" if first[name] is None else str(first[name]) for name in FIELDS
    )
    if glue:
        places = [i for i in range(len(whole)) if whole.startswith(glue, i)]
    else:
        places = list(range(len(whole) + 1))
    if len(places) < 6:
        return draw(tuples)
    cuts = sorted(
        draw(
            st.lists(st.sampled_from(places), min_size=6, max_size=6, unique=glue != "")
        )
    )
    starts = [0, *(cut + len(glue) for cut in cuts)]
    pieces = [whole[a:b] for a, b in zip(starts, [*cuts, len(whole)], strict=True)]
    second: dict[str, Any] = dict(zip(FIELDS, pieces, strict=True))
    digits = second["expires"]
    ok = digits.isascii() and digits.isdigit() and 0 < len(digits) <= 12
    second["expires"] = int(digits) if ok else first["expires"]
    for name in ("action", "upload_id", "part_number", "identity"):
        if not second[name] and (name == "identity" or draw(st.booleans())):
            second[name] = None
    return second


@st.composite
def two_tuples(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A tuple and another: anything, it with fields redrawn, or it resliced."""
    first = draw(tuples)
    how = draw(st.sampled_from(["anything", "redrawn", "resliced"]))
    if how == "anything":
        return first, draw(tuples)
    if how == "resliced":
        return first, _resliced(draw, first)
    second = dict(first)
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3)):
        second[name] = draw(tuples)[name]
    return first, second


@settings(max_examples=1000, deadline=None)
@given(two_tuples())
@example(
    (
        {
            "method": "GET",
            "key": "victim/secret\nget\n99999999999\n\n",
            "action": "mpu-listparts",
            "expires": 1700000000,
            "upload_id": "",
            "part_number": None,
            "identity": "mallory",
        },
        {
            "method": "GET",
            "key": "victim/secret",
            "action": "get",
            "expires": 99999999999,
            "upload_id": None,
            "part_number": None,
            "identity": "mpu-listparts\n1700000000\n\n\nmallory",
        },
    )
)
@example(
    (
        {**dict.fromkeys(FIELDS), "method": "GET", "key": "k", "expires": 1},
        {
            **dict.fromkeys(FIELDS),
            "method": "GET",
            "key": "k",
            "expires": 1,
            "action": "",
        },
    )
)
def test_a_signature_verifies_for_its_own_tuple_only(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = pair
    made = signing.signature(SECRET, **first)
    assert len(made) == 64 and made == made.lower()
    assert _verifies(first, made)
    if first != second:
        assert signing.canonical_message(**first) != signing.canonical_message(**second)
        assert not _verifies(second, made)


def test_a_url_verifies_until_it_expires() -> None:
    fields = {**dict.fromkeys(FIELDS), "method": "GET", "key": "k", "expires": 100}
    made = signing.signature(SECRET, **fields)
    args = _args(fields, made)
    assert signing.verify(SECRET, method="GET", key="k", args=args, now=100)
    with pytest.raises(signing.SignedUrlError, match="expired"):
        signing.verify(SECRET, method="GET", key="k", args=args, now=101)
    with pytest.raises(signing.SignedUrlError, match="does not match"):
        signing.verify("another secret", method="GET", key="k", args=args, now=0)


# -- through HTTP: change any one field of a signed URL, and it is refused ------------


@pytest.fixture
def upload_url(signed_app: Flask) -> tuple[Any, str, dict[str, str]]:
    """A client, and a signed part URL (as path and query) for ann's upload."""
    client = signed_app.test_client()
    upload_id = client.post(signed("k", "POST", "mpu-create", identity="ann")).json[
        "uploadId"
    ]
    url = signed(
        "k", "PUT", "mpu-uploadpart", upload_id=upload_id, part_number=2, identity="ann"
    )
    return client, "/k", dict(parse_qsl(urlsplit(url).query))


def _send(client: Any, method: str, path: str, query: dict[str, str]) -> Any:
    return client.open(f"{path}?{urlencode(query)}", method=method, data=b"x")


def test_the_unchanged_url_works(upload_url: tuple[Any, str, dict[str, str]]) -> None:
    client, path, query = upload_url
    assert _send(client, "PUT", path, query).status_code == 200


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE", "PATCH"])
def test_another_method_is_403(
    upload_url: tuple[Any, str, dict[str, str]], stored_state, method: str
) -> None:
    client, path, query = upload_url
    before = stored_state()
    response = _send(client, method, path, query)
    assert response.status_code == 403
    assert stored_state() == before


@pytest.mark.parametrize("path", ["/K", "/k/", "/a//k", "/k%20", "/%6B2", "/"])
def test_another_key_is_403(
    upload_url: tuple[Any, str, dict[str, str]], stored_state, path: str
) -> None:
    client, _, query = upload_url
    before = stored_state()
    response = _send(client, "PUT", path, query)
    assert (response.status_code, response.text) == (403, MISMATCH)
    assert stored_state() == before


QUERY_FIELDS = [
    "action",
    "uploadId",
    "partNumber",
    signing.IDENTITY_PARAM,
    signing.EXPIRES_PARAM,
    signing.SIGNATURE_PARAM,
]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(QUERY_FIELDS),
    value=st.none() | st.text() | st.sampled_from(["", "2", "02", "ann\n", "0" * 64]),
)
def test_any_one_query_field_changed_is_403(
    upload_url: tuple[Any, str, dict[str, str]],
    stored_state,
    name: str,
    value: str | None,
) -> None:
    client, path, query = upload_url
    if value == query[name]:
        return
    changed = dict(query)
    if value is None:
        del changed[name]
    else:
        changed[name] = value
    before = stored_state()
    response = _send(client, "PUT", path, changed)
    assert response.status_code == 403, response.text
    assert response.text.startswith("Forbidden: ")
    assert stored_state() == before
