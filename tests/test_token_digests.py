"""Bearer tokens are compared as fixed-length digests: wrong ones of any shape
are a 401, right ones pass, and another Authorization scheme is no credential.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from mpuflask.tokens import parse_tokens

from .signing_support import SECRET
from .signing_support import _path
from .signing_support import signed

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
