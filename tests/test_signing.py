"""Signed URLs: the whole flow, forgeries tried, refusals, and the worked example.

docs/security.md writes the scheme down; the worked example there is checked
here, so the document and the code cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import quote
from urllib.parse import urlencode
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
from flask import Flask

from mpuflask import signing
from mpuflask.signing import sign_url

from .conftest import MIN_PART
from .signing_support import BAD_EXPIRES
from .signing_support import BAD_SIGNATURE
from .signing_support import MISMATCH
from .signing_support import SECRET
from .signing_support import _path
from .signing_support import signed

DOCS = Path(__file__).resolve().parent.parent / "docs"


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
