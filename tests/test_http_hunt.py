"""The whole HTTP surface, hunted with hypothesis: no 5xx for anything a client
sends, and nothing stored or changed by a refusal.

Every action, with and without auth configured: arbitrary query strings (raw,
percent-encoded, non-ASCII, huge numbers), header values (latin-1 bytes as a
WSGI server hands them over, over-long, the headers every hook reads) and
bodies (bytes, JSON nested deep, huge numbers). The world holds one object and
one open upload whose ids the strategies reuse, so requests reach deep.

``HUNT_EXAMPLES`` sets the example count per surface (default 300).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mpuflask import create_app
from mpuflask.signing import sign_url

from .conftest import MIN_PART
from .conftest import stored_files

EXAMPLES = int(os.environ.get("HUNT_EXAMPLES", "300"))
HUNT = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECRET = "hunt-secret"
TOKEN = "hunt-token"
ACTIONS = [
    "mpu-create",
    "mpu-uploadpart",
    "mpu-complete",
    "mpu-abort",
    "mpu-listparts",
    "get",
    "delete",
    "health",
    "metrics",
]


@dataclass
class World:
    """An app over a data dir, with one object and one open upload in it."""

    app: Flask
    data_dir: Path
    upload_id: str
    etag: str
    auth: dict[str, str]


def _build(root: Path, settings_: dict[str, Any], auth: dict[str, str]) -> World:
    data_dir = root / "data"
    app = create_app(
        {
            "TESTING": True,
            "MPUFLASK_DATA_DIR": str(data_dir),
            "MPUFLASK_MIN_PART_SIZE": MIN_PART,
            "MPUFLASK_SWEEP_ON_START": False,
            **settings_,
        }
    )
    client = app.test_client()
    created = client.post("/k?action=mpu-create", headers=auth)
    upload_id = created.json["uploadId"]  # type: ignore[index]
    part = client.put(
        f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"p" * 10,
        headers=auth,
    ).json
    done = client.post(
        f"/k?action=mpu-complete&uploadId={upload_id}",
        json={"parts": [part]},
        headers=auth,
    )
    assert done.status_code == 200, done.text
    upload_id = client.post("/k?action=mpu-create", headers=auth).json["uploadId"]  # type: ignore[index]
    client.put(
        f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"q" * MIN_PART,
        headers=auth,
    )
    return World(app, data_dir, upload_id, part["etag"], auth)  # type: ignore[index]


@pytest.fixture(scope="module", params=["open", "auth"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> World:
    root = tmp_path_factory.mktemp(f"hunt-{request.param}")
    if request.param == "open":
        return _build(root, {}, {})
    return _build(
        root,
        {
            "MPUFLASK_AUTH_TOKENS": json.dumps(
                [
                    {"token": TOKEN, "identity": "hunter"},
                    {"token": "reader", "identity": "r", "actions": ["get"]},
                    {"token": "scoped", "identity": "s", "prefix": "pub/"},
                ]
            ),
            "MPUFLASK_SIGNING_KEY": SECRET,
            "MPUFLASK_MAX_OBJECT_SIZE": 100_000,
            "MPUFLASK_MAX_PARTS": 50,
            "MPUFLASK_PART_CONTENT_TYPES": "application/octet-stream,text/plain",
        },
        {"Authorization": f"Bearer {TOKEN}"},
    )


def _header_value(text: str) -> str:
    """A value an HTTP/1.1 server can receive: no CR, LF or NUL (gunicorn
    refuses those before the app runs), as latin-1 bytes."""
    return _wire(text.translate({0: None, 10: None, 13: None}))


def _wire(text: str) -> str:
    """``text`` as a WSGI server hands it over: its UTF-8 bytes as latin-1."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


wild_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", "²", "١٢", "0", "-1", "1e3", "null", "true", "\n", "%", "&=", "\x00"]
    ),
    st.integers(-(10**6), 10**6).map(str),
    st.integers(1, 5000).map(lambda n: "9" * n),
    st.text(alphabet="0123456789abcdef", min_size=60, max_size=70),
    st.text(min_size=2000, max_size=3000),
)


def query_pairs(world_ids: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    names = st.one_of(
        st.sampled_from(
            [
                "action",
                "uploadId",
                "partNumber",
                "X-Mpu-Expires",
                "X-Mpu-Signature",
                "X-Mpu-Identity",
            ]
        ),
        st.text(max_size=10),
    )
    values = st.one_of(
        wild_text,
        st.sampled_from(ACTIONS + world_ids + ["1", "2", "10000", "10001"]),
    )
    return st.lists(st.tuples(names, values), max_size=7)


HEADER_NAMES = [
    "Authorization",
    "Content-Type",
    "Content-MD5",
    "x-amz-checksum-sha256",
    "Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Content-Encoding",
    "Content-Disposition",
    "Cache-Control",
    "Expires",
    "X-Request-Id",
    "Origin",
    "Access-Control-Request-Method",
    "Accept",
]
header_values = st.one_of(
    wild_text,
    st.sampled_from(
        [
            f"Bearer {TOKEN}",
            "Bearer ",
            "Basic Zm9vOmJhcg==",
            "bytes=0-1",
            "bytes=-5",
            "bytes=5-",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=99999999999999999999999-",
            "*",
            '"x"',
            'W/"x"',
            "Tue, 01 Dec 2026 00:00:00 GMT",
            "text/html",
            "1B2M2Y8AsgTpgAmY7PhCfg==",
        ]
    ),
)
bodies = st.one_of(
    st.binary(max_size=64),
    st.just(b""),
    st.integers(1, 3000).map(lambda n: b'{"parts": ' + b"[" * n + b"]" * n + b"}"),
    st.recursive(
        st.one_of(
            st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)
        ),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.sampled_from(["parts", "partNumber", "etag"]), inner, max_size=3
            ),
        ),
        max_leaves=12,
    ).map(lambda value: json.dumps({"parts": value}).encode()),
)
methods = st.sampled_from(
    [
        "GET",
        "HEAD",
        "PUT",
        "POST",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "TRACE",
        "PROPFIND",
        "get",
    ]
)
keys = st.one_of(
    st.sampled_from(["k", "", "pub/x", "static/x", "a%2Fb", "%0A", "é", "//k"]),
    st.text(max_size=20),
    st.text(min_size=1020, max_size=1100),
)


def _snapshot(world: World) -> dict[str, bytes]:
    return {
        name: value
        for name, value in stored_files(world.data_dir).items()
        if not name.startswith("tmp/")
    }


def _send(
    world: World,
    method: str,
    key: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> Any:
    return world.app.test_client().open(
        "/",
        method=method,
        data=body,
        headers=headers,
        environ_overrides={"PATH_INFO": "/" + _wire(key), "QUERY_STRING": query},
    )


def _encode_query(pairs: list[tuple[str, str]], raw: bool) -> str:
    if raw:  # as a careless client sends it: non-ASCII and all
        return _wire("&".join(f"{name}={value}" for name, value in pairs))
    return "&".join(
        f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs
    )


@HUNT
@given(data=st.data())
def test_no_5xx_and_no_change_on_refusal(world: World, data: st.DataObject) -> None:
    ids = [world.upload_id, world.etag]
    method = data.draw(methods, "method")
    key = data.draw(keys, "key")
    pairs = data.draw(query_pairs(ids), "query")
    query = _encode_query(pairs, data.draw(st.booleans(), "raw query"))
    headers = data.draw(
        st.lists(
            st.tuples(st.sampled_from(HEADER_NAMES), header_values.map(_header_value)),
            max_size=5,
        ),
        "headers",
    )
    if data.draw(st.booleans(), "authenticated"):
        headers += list(world.auth.items())
    body = data.draw(bodies, "body")
    before = _snapshot(world)
    response = _send(world, method, key, query, headers, body)
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert _snapshot(world) == before, response.text


@HUNT
@given(data=st.data())
def test_signed_urls_with_any_field_tampered(world: World, data: st.DataObject) -> None:
    """A signed URL with any query field replaced never 5xx, and never stores."""
    if (
        "MPUFLASK_SIGNING_KEY" not in world.app.config
        or not world.app.config["MPUFLASK_SIGNING_KEY"]
    ):
        pytest.skip("no signing key in this world")
    action = data.draw(st.sampled_from(ACTIONS[:7]), "action")
    method = {
        "mpu-create": "POST",
        "mpu-uploadpart": "PUT",
        "mpu-complete": "POST",
    }.get(action, "DELETE" if action in ("mpu-abort", "delete") else "GET")
    url = sign_url(
        "http://x/",
        data.draw(st.sampled_from(["k", "pub/x", "é\n&=%"]), "key"),
        method=method,
        action=action,
        secret=SECRET,
        upload_id=world.upload_id,
        part_number=1,
        identity=data.draw(
            st.one_of(st.none(), st.text(min_size=1, max_size=10)), "identity"
        ),
    )
    path, _, query = url.removeprefix("http://x").partition("?")
    fields = [field.partition("=") for field in query.split("&")]
    index = data.draw(st.integers(0, len(fields) - 1), "field")
    replacement = data.draw(wild_text, "value")
    fields[index] = (fields[index][0], "=", quote(replacement, safe=""))
    tampered = "&".join("".join(field) for field in fields)
    before = _snapshot(world)
    from urllib.parse import unquote

    response = _send(world, method, unquote(path[1:]), tampered, [], b"x" * 4)
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert _snapshot(world) == before
