"""Signed URLs and bearer tokens: the scheme, its refusals, and forgeries tried.

docs/security.md writes the scheme down; the worked example there is checked
here, so the document and the code cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import quote
from urllib.parse import urlencode
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mpuflask import signing
from mpuflask.signing import sign_url
from mpuflask.tokens import parse_tokens

from .conftest import MIN_PART

SECRET = "signing-secret"
MISMATCH = "Forbidden: the URL's signature does not match this request"
BAD_EXPIRES = (
    "Forbidden: X-Mpu-Expires must be a Unix time in seconds: "
    "1 to 12 ASCII digits, without a leading zero"
)
BAD_SIGNATURE = "Forbidden: X-Mpu-Signature must be 64 lower-case hex digits"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def signed(key: str, method: str, action: str, **kwargs: Any) -> str:
    return _path(
        sign_url(
            "http://x/", key, method=method, action=action, secret=SECRET, **kwargs
        )
    )


@pytest.fixture
def signed_app(make_app: Any) -> Flask:
    return make_app(MPUFLASK_SIGNING_KEY=SECRET)


def _signed_upload(client: Any, key: str, data: bytes, identity: str) -> None:
    """Store ``data`` at ``key`` through signed URLs made for ``identity``."""
    upload_id = client.post(signed(key, "POST", "mpu-create", identity=identity)).json[
        "uploadId"
    ]
    url = signed(
        key,
        "PUT",
        "mpu-uploadpart",
        upload_id=upload_id,
        part_number=1,
        identity=identity,
    )
    part = client.put(url, data=data).json
    url = signed(key, "POST", "mpu-complete", upload_id=upload_id, identity=identity)
    assert client.post(url, json={"parts": [part]}).status_code == 200


# -- the whole flow, and what one URL allows -------------------------------------


def test_signed_urls_run_the_whole_flow(signed_app: Flask) -> None:
    client = signed_app.test_client()
    created = client.post(signed("v.bin", "POST", "mpu-create", identity="ann"))
    assert created.status_code == 200
    upload_id = created.json["uploadId"]
    listed = []
    for number, data in enumerate([b"p" * MIN_PART, b"q"], 1):
        url = signed(
            "v.bin",
            "PUT",
            "mpu-uploadpart",
            upload_id=upload_id,
            part_number=number,
            identity="ann",
        )
        listed.append(client.put(url, data=data).json)
    url = signed("v.bin", "POST", "mpu-complete", upload_id=upload_id, identity="ann")
    assert client.post(url, json={"parts": listed}).status_code == 200
    assert client.get(signed("v.bin", "GET", "get")).data == b"p" * MIN_PART + b"q"
    assert client.head(signed("v.bin", "HEAD", "get")).status_code == 200


def test_keys_and_identities_of_any_text_work(signed_app: Flask) -> None:
    """The characters the old scheme choked on are just characters now."""
    client = signed_app.test_client()
    key = "a b/c&d=e%f+g#h?i/é/\N{PILE OF POO}"
    _signed_upload(client, key, b"data", identity="x\ny&z=%")
    assert client.get(signed(key, "GET", "get")).data == b"data"


@pytest.mark.parametrize("key", ["a/../b", "../x", "a/./b", ".", "..", "a/..", "/lead"])
def test_a_signed_url_survives_the_dot_segments_clients_remove(
    signed_app: Flask, key: str
) -> None:
    """Browsers, curl and urljoin remove ``.`` and ``..`` path segments before
    sending: a URL for ``a/../b`` went to ``/b`` and answered 403. Such
    segments are percent-encoded, as the server's own URLs do."""
    path = signed(key, "POST", "mpu-create")
    assert urljoin("http://x/", path) == "http://x" + path
    created = signed_app.test_client().post(path)
    assert created.status_code == 200, created.text
    assert created.json["key"] == key


def test_signed_url_is_good_for_nothing_else(signed_app: Flask, stored_state) -> None:
    client = signed_app.test_client()
    upload_id = client.post(signed("k", "POST", "mpu-create")).json["uploadId"]
    other_id = client.post(signed("k", "POST", "mpu-create")).json["uploadId"]
    good = signed("k", "PUT", "mpu-uploadpart", upload_id=upload_id, part_number=3)
    before = stored_state()
    attempts = [
        ("POST", good, MISMATCH),  # another method
        ("PUT", good.replace("/k?", "/other?"), MISMATCH),  # another key
        ("PUT", good.replace("partNumber=3", "partNumber=4"), MISMATCH),  # another part
        ("PUT", good.replace("partNumber=3", "partNumber=03"), MISMATCH),
        ("PUT", good.replace(upload_id, other_id), MISMATCH),  # another upload
        ("PUT", good.replace("mpu-uploadpart", "mpu-complete"), MISMATCH),
        ("PUT", good + "&X-Mpu-Identity=mallory", MISMATCH),
        (
            "PUT",
            signed(
                "k",
                "PUT",
                "mpu-uploadpart",
                upload_id=upload_id,
                part_number=3,
                expires_in=-1,
            ),
            "Forbidden: the signed URL has expired",
        ),
        ("PUT", good.replace("X-Mpu-Expires=", "X-Mpu-Expires=9"), MISMATCH),
    ]
    for method, url, text in attempts:
        response = client.open(url, method=method, data=b"x")
        assert (response.status_code, response.text) == (403, text), url
    assert stored_state() == before
    assert client.put(good, data=b"x").status_code == 200


def test_signed_url_without_signature_is_401(signed_app: Flask) -> None:
    response = signed_app.test_client().post("/k?action=mpu-create")
    assert response.status_code == 401


def test_sign_cli(signed_app: Flask) -> None:
    from click.testing import CliRunner

    from mpuflask.signing import sign_command

    result = CliRunner().invoke(
        sign_command,
        [
            "http://x/k",
            "--method",
            "POST",
            "--action",
            "mpu-create",
            "--secret",
            SECRET,
        ],
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert signed_app.test_client().post(_path(url)).status_code == 200


# -- finding 1: a key chosen by the caller must not move the other fields -----------


def _backend(method: str, action: str, key: str, **kwargs: Any) -> dict[str, str]:
    """A signing backend that signs any key its user asks for.

    It signs only ``mpu-listparts`` and ``mpu-abort``, for its user's identity,
    and trusts mpuflask's ownership check to keep other uploads safe. Returns
    the signed URL's query parameters.
    """
    url = sign_url(
        "http://x/",
        key,
        method=method,
        action=action,
        identity="mallory",
        secret=SECRET,
        **kwargs,
    )
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _forged(key: str, action: str, query: dict[str, str], chosen: str) -> str:
    """The request the old ``"\\n".join`` message also described.

    The old message was method, key, action, expiry, uploadId, partNumber and
    identity joined with newlines. A key of ``victim/secret\\n<action>\\n<E>\\n\\n``
    makes the fields after it slide right: the last one, the identity, takes
    everything the backend meant as action, expiry, uploadId, partNumber and
    identity.
    """
    shifted_identity = "\n".join(
        [
            query["action"],
            query[signing.EXPIRES_PARAM],
            query.get("uploadId", ""),
            query.get("partNumber", ""),
            query[signing.IDENTITY_PARAM],
        ]
    )
    expires = chosen.split("\n")[2]
    params = {
        "action": action,
        signing.IDENTITY_PARAM: shifted_identity,
        signing.EXPIRES_PARAM: expires,
        signing.SIGNATURE_PARAM: query[signing.SIGNATURE_PARAM],
    }
    return f"/{quote(key)}?{urlencode(params)}"


@pytest.mark.parametrize(
    ("method", "backend_action", "target_action"),
    [("GET", "mpu-listparts", "get"), ("DELETE", "mpu-abort", "delete")],
)
def test_a_chosen_key_cannot_forge_a_url_for_another_object(
    signed_app: Flask,
    stored_state,
    method: str,
    backend_action: str,
    target_action: str,
) -> None:
    client = signed_app.test_client()
    _signed_upload(client, "victim/secret", b"the victim's data", identity="victim")
    before = stored_state()
    chosen = f"victim/secret\n{target_action}\n99999999999\n\n"
    query = _backend(method, backend_action, chosen, upload_id="")
    forged = _forged("victim/secret", target_action, query, chosen)
    response = client.open(forged, method=method)
    assert (response.status_code, response.text) == (403, MISMATCH)
    assert stored_state() == before
    assert client.get(signed("victim/secret", "GET", "get")).data == (
        b"the victim's data"
    )


# -- finding 6 (part): malformed signed URLs are a 403 with a clear text ------------

GOOD_SIGNATURE = "0" * 64


@pytest.mark.parametrize(
    ("query", "text"),
    [
        # Unicode digits: isdigit() says yes, int() says no (was a 500).
        (f"X-Mpu-Expires=%C2%B2&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=%D9%A1&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        # Longer than int() reads (was a 500), and merely long.
        (f"X-Mpu-Expires={'9' * 5000}&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires={'9' * 13}&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=01&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=-1&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=%2B1&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=%201&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=1%0A&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (f"X-Mpu-Expires=1_0&X-Mpu-Signature={GOOD_SIGNATURE}", BAD_EXPIRES),
        (
            f"X-Mpu-Signature={GOOD_SIGNATURE}",
            "Forbidden: signed URL without X-Mpu-Expires",
        ),
        # compare_digest refuses non-ASCII str (was a 500).
        ("X-Mpu-Expires=9999999999&X-Mpu-Signature=%C3%A9", BAD_SIGNATURE),
        (f"X-Mpu-Expires=9999999999&X-Mpu-Signature={'é' * 64}", BAD_SIGNATURE),
        (f"X-Mpu-Expires=9999999999&X-Mpu-Signature={'A' * 64}", BAD_SIGNATURE),
        (f"X-Mpu-Expires=9999999999&X-Mpu-Signature={'0' * 63}", BAD_SIGNATURE),
        (f"X-Mpu-Expires=9999999999&X-Mpu-Signature={'0' * 65}", BAD_SIGNATURE),
        (f"X-Mpu-Expires=9999999999&X-Mpu-Signature={'0' * 64}%0A", BAD_SIGNATURE),
        (f"X-Mpu-Expires=9999999999&X-Mpu-Signature={'0' * 5000}", BAD_SIGNATURE),
        ("X-Mpu-Expires=9999999999&X-Mpu-Signature=", BAD_SIGNATURE),
        # The shape of the parameters themselves.
        (
            "X-Mpu-Expires=9999999999",
            "Forbidden: signed URL without X-Mpu-Signature",
        ),
        (
            "X-Mpu-Identity=ann",
            "Forbidden: signed URL without X-Mpu-Signature",
        ),
        (
            f"X-Mpu-Expires=9999999999&X-Mpu-Signature={GOOD_SIGNATURE}"
            f"&X-Mpu-Signature={GOOD_SIGNATURE}",
            "Forbidden: signed URL with X-Mpu-Signature given more than once",
        ),
        (
            f"X-Mpu-Expires=9999999999&X-Mpu-Expires=1&X-Mpu-Signature={GOOD_SIGNATURE}",
            "Forbidden: signed URL with X-Mpu-Expires given more than once",
        ),
        (
            f"action=get&X-Mpu-Expires=9999999999&X-Mpu-Signature={GOOD_SIGNATURE}",
            "Forbidden: signed URL with action given more than once",
        ),
        (
            f"X-Mpu-Expires=9999999999&X-Mpu-Signature={GOOD_SIGNATURE}&X-Mpu-Identty=a",
            "Forbidden: unknown signed URL parameter; the known ones are "
            "X-Mpu-Expires, X-Mpu-Signature and X-Mpu-Identity (case matters)",
        ),
        (
            f"x-mpu-expires=9999999999&x-mpu-signature={GOOD_SIGNATURE}",
            "Forbidden: unknown signed URL parameter; the known ones are "
            "X-Mpu-Expires, X-Mpu-Signature and X-Mpu-Identity (case matters)",
        ),
        (
            f"X-Mpu-Expires=9999999999&X-Mpu-Signature={GOOD_SIGNATURE}&X-Mpu-Identity=",
            "Forbidden: X-Mpu-Identity must not be empty",
        ),
    ],
)
def test_malformed_signed_url_is_403(
    signed_app: Flask, stored_state, query: str, text: str
) -> None:
    client = signed_app.test_client()
    before = stored_state()
    response = client.post(f"/k?action=mpu-create&{query}")
    assert (response.status_code, response.text) == (403, text)
    assert stored_state() == before


def test_bad_signature_shape_with_a_valid_url_beside_it(signed_app: Flask) -> None:
    """A well-formed URL made malformed in one place is refused for that place."""
    client = signed_app.test_client()
    good = signed("k", "POST", "mpu-create")
    sig = dict(parse_qsl(urlsplit(good).query))[signing.SIGNATURE_PARAM]
    response = client.post(good.replace(sig, sig.upper()))
    assert (response.status_code, response.text) == (403, BAD_SIGNATURE)
    assert client.post(good).status_code == 200


def test_sign_url_refuses_what_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        sign_url("http://x/", "k", method="GET", action="get", secret="s", now=1e12)
    with pytest.raises(ValueError, match="before 1970"):
        sign_url("http://x/", "k", method="GET", action="get", secret="s", now=-5000)
    with pytest.raises(ValueError, match="identity"):
        sign_url("http://x/", "k", method="GET", action="get", secret="s", identity="")


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


# -- the worked example of docs/security.md -----------------------------------------

EXAMPLE = {
    "method": "PUT",
    "key": "vidéos/cat 1.mp4",
    "action": "mpu-uploadpart",
    "expires": 1700000000,
    "upload_id": "6bd2d4c4-upload",
    "part_number": "3",
    "identity": "alice",
}
EXAMPLE_SECRET = "example-signing-key"


def test_worked_example_in_the_docs() -> None:
    text = (DOCS / "security.md").read_text()
    message = signing.canonical_message(**EXAMPLE)
    made = signing.signature(EXAMPLE_SECRET, **EXAMPLE)
    url = sign_url(
        "https://up.example.com/",
        EXAMPLE["key"],
        method="PUT",
        action="mpu-uploadpart",
        upload_id=EXAMPLE["upload_id"],
        part_number=3,
        identity="alice",
        secret=EXAMPLE_SECRET,
        expires_in=300,
        now=EXAMPLE["expires"] - 300,
    )
    # The message, line by line, as the document shows it.
    for line in message.decode().split("\n")[:-1]:
        assert f"\n{line}\n" in text, line
    assert made in text
    assert url in text
    assert made == dict(parse_qsl(urlsplit(url).query))[signing.SIGNATURE_PARAM]
    absent = signing.canonical_message(
        method="POST", key="a&b=c", action="mpu-create", expires=1700000000
    )
    assert f"```\n{absent.decode()}```" in text


def test_the_readme_links_security_md() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert "docs/security.md" in readme


# -- bearer tokens: compared as fixed-length digests ----------------------------------

TOKENS = json.dumps(
    [
        {"token": "tok-alice", "identity": "alice"},
        # Configured tokens are RFC 6750 b64token characters (the config
        # refuses others); presented ones may be anything.
        {"token": "tok.Bob_~+/==", "identity": "bob"},
    ]
)


@pytest.fixture
def token_app(make_app: Any) -> Flask:
    return make_app(MPUFLASK_AUTH_TOKENS=TOKENS)


def _wire(text: str) -> str:
    """A header value as WSGI hands it over: its UTF-8 bytes read as latin-1."""
    return text.encode().decode("latin-1")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer tök",
        _wire("Bearer tök"),
        "Bearer " + "x" * 100_000,
        "Bearer tok-alice" + "\x00",
        "Bearer tok-alic",
        "Bearer tok-alice-",
        "Bearer \N{PILE OF POO}",
        "Bearer \ud800",
        _wire("Bearer tök-ünïcode"),
    ],
)
def test_wrong_tokens_of_any_shape_are_401(
    token_app: Flask, stored_state, header: str
) -> None:
    before = stored_state()
    response = token_app.test_client().post(
        "/k?action=mpu-create", headers={"Authorization": header}
    )
    assert (response.status_code, response.text) == (
        401,
        "Unauthorized: invalid bearer token",
    )
    assert stored_state() == before


@pytest.mark.parametrize(
    "header",
    [
        "Bearer tok-alice",
        "Bearer  tok-alice\t",
        "Bearer tok.Bob_~+/==",
    ],
)
def test_right_tokens_pass(token_app: Flask, header: str) -> None:
    response = token_app.test_client().post(
        "/k?action=mpu-create", headers={"Authorization": header}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "bearer \t"])
def test_a_bearer_header_without_a_token_is_401(token_app: Flask, header: str) -> None:
    response = token_app.test_client().post(
        "/k?action=mpu-create", headers={"Authorization": header}
    )
    assert (response.status_code, response.text) == (
        401,
        "Unauthorized: expected 'Authorization: Bearer <token>'",
    )


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "\N{PILE OF POO} x", "x" * 9000, "tok-alice"]
)
def test_other_authorization_schemes_are_no_credentials(
    token_app: Flask, stored_state, header: str
) -> None:
    """Not a bearer token, so not refused as one: with no other way in, the
    request has no credentials."""
    response = token_app.test_client().post(
        "/k?action=mpu-create", headers={"Authorization": header}
    )
    assert (response.status_code, response.text) == (
        401,
        "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL",
    )
    assert stored_state() == {}


def test_a_signed_url_works_beside_another_authorization_scheme(
    make_app: Any,
) -> None:
    """Tokens and signed URLs on together: a signed URL opened where the
    browser sends ``Authorization: Basic`` (a site behind a password) still
    works; the token check leaves other schemes alone."""
    app = make_app(MPUFLASK_AUTH_TOKENS=TOKENS, MPUFLASK_SIGNING_KEY=SECRET)
    client = app.test_client()
    url = signed("basic/site.txt", "POST", "mpu-create")
    response = client.post(_path(url), headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 200, response.text
    forged = client.post(
        _path(url).replace("basic/site.txt", "basic/other.txt"),
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
    )
    assert forged.status_code == 403


def test_tokens_are_compared_as_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    """compare_digest only ever sees two 32-byte SHA-256 digests."""
    import hmac

    from mpuflask import auth
    from mpuflask.hooks import RequestInfo

    seen: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    hook = auth.bearer_tokens(parse_tokens("short,a-much-longer-token"))
    from werkzeug.datastructures import Headers

    req = RequestInfo(
        method="GET",
        action="get",
        key="k",
        upload_id=None,
        part_number=None,
        headers=Headers({"Authorization": "Bearer " + "y" * 5000}),
        remote_addr=None,
        args={},
    )
    with pytest.raises(auth.Unauthorized):
        hook(req)
    assert len(seen) == 2
    assert all(isinstance(x, bytes) and len(x) == 32 for pair in seen for x in pair)


# -- examples/signing_endpoint.py ----------------------------------------------------


@pytest.fixture
def endpoint() -> Any:
    """The example endpoint's test client, logged in as alice."""
    from examples.signing_endpoint import create_app

    app = create_app(
        {
            "MPUFLASK_URL": "http://x/",
            "MPUFLASK_SIGNING_KEY": SECRET,
            "SIGNING_USERS": '{"alice": "wonderland"}',
        }
    )
    client = app.test_client()
    login = client.post("/login", data={"user": "alice", "password": "wonderland"})
    assert login.status_code == 302
    return client


def test_example_endpoint_signs_what_the_server_accepts(
    endpoint: Any, signed_app: Flask
) -> None:
    client = signed_app.test_client()

    def ask(**fields: Any) -> Any:
        return endpoint.post("/sign", json={"key": "alice/a b&c=%d", **fields})

    created = ask(method="POST", action="mpu-create")
    upload_id = client.post(_path(created.json["url"])).json["uploadId"]
    url = ask(
        method="PUT", action="mpu-uploadpart", uploadId=upload_id, partNumber=1
    ).json["url"]
    part = client.put(_path(url), data=b"hi").json
    url = ask(method="POST", action="mpu-complete", uploadId=upload_id).json["url"]
    assert client.post(_path(url), json={"parts": [part]}).status_code == 200
    url = ask(method="GET", action="get").json["url"]
    assert client.get(_path(url)).data == b"hi"


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        (
            {"key": "bob/x", "method": "POST", "action": "mpu-create"},
            403,
            "alice may only use keys under 'alice/'",
        ),
        (
            {"key": "alice/x", "method": "DELETE", "action": "delete"},
            403,
            "DELETE delete is not allowed here",
        ),
        (
            {
                "key": "alice/x",
                "method": "PUT",
                "action": "mpu-uploadpart",
                "uploadId": "u",
                "partNumber": True,
            },
            400,
            "partNumber must be an integer 1..10000",
        ),
    ],
)
def test_example_endpoint_refuses(
    endpoint: Any, fields: dict[str, Any], status: int, error: str
) -> None:
    response = endpoint.post("/sign", json=fields)
    assert (response.status_code, response.json) == (status, {"error": error})


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["h/k", "--secret", "s"],
            "'h/k' is not an http:// or https:// URL with a host",
        ),
        (
            ["ftp://h/k", "--secret", "s"],
            "'ftp://h/k' is not an http:// or https:// URL",
        ),
        (["http://[::1/k", "--secret", "s"], "'http://[::1/k' is not a URL"),
        (
            ["http://h/k", "--secret", ""],
            "--secret (MPUFLASK_SIGNING_KEY) is set but empty",
        ),
        # Signed the key a\ufffd, silently, before.
        (
            ["http://h/a%ff", "--secret", "s"],
            "the key of 'http://h/a%ff' is not UTF-8 once percent-decoded",
        ),
        # Signed the key 'report', while the URL named 'report?.pdf'.
        (
            ["http://h/report?.pdf", "--secret", "s"],
            "'http://h/report?.pdf' has a ?query or #fragment, which is not part "
            "of a key: write ? and # in a key as %3F and %23",
        ),
        (
            ["http://h/notes#draft", "--secret", "s"],
            "'http://h/notes#draft' has a ?query or #fragment, which is not part "
            "of a key: write ? and # in a key as %3F and %23",
        ),
    ],
)
def test_sign_refuses_what_no_server_would_accept(args: list[str], error: str) -> None:
    """``mpuflask sign`` printed ``://k?...`` for a URL without a scheme, and a
    URL signed with an empty secret that every server refuses."""
    from click.testing import CliRunner

    from mpuflask.signing import sign_command

    result = CliRunner().invoke(
        sign_command, [*args, "--method", "GET", "--action", "get"]
    )
    assert result.exit_code == 2, result.output
    assert error in result.output
    assert "X-Mpu-Signature" not in result.output
