"""Only the credentials given are sent, and none is ever printed back.

requests adds credentials of its own choosing: a ``~/.netrc`` password for
the host (meant for other programs), or the URL's ``user:password``, each of
which replaced ``--token`` before. A token or header value that no request
can carry is a usage error naming what is wrong, never quoting the value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mpuflask.client import Client
from mpuflask.client.errors import ClientError
from mpuflask.client.headers import BadHeader
from tests.client.conftest import write_file
from tests.client.wsgi_adapter import BASE
from tests.client.wsgi_adapter import WsgiAdapter
from tests.conftest import MIN_PART

SMALL = ["--min-part-size", str(MIN_PART), "-q"]
NOT_A_TOKEN = (
    "the token is not a bearer token (RFC 6750: letters, digits and -._~+/, then "
    "any '='): look for a space, a quote or a line ending copied with it"
)
UNSENDABLE = (
    "holds a character no HTTP header can carry (a line break or another control "
    "character, or one beyond latin-1, like a curly quote)"
)


@pytest.fixture
def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``.netrc`` with a password for the test server's host."""
    path = tmp_path / "netrc"
    path.write_text("machine testserver login alice password netrcpw\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))


def authorizations(adapter: WsgiAdapter) -> set[str | None]:
    return {sent.headers.get("Authorization") for sent in adapter.sent}


@pytest.mark.usefixtures("netrc")
def test_a_netrc_password_is_never_sent(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    assert run_cli("rm", f"{BASE}k", "--token", "tok123").exit_code == 0
    assert run_cli("rm", f"{BASE}k").exit_code == 0
    assert run_cli("rm", f"{BASE}k", "-H", "Authorization: Bearer h").exit_code == 0
    assert [sent.headers.get("Authorization") for sent in adapter.sent] == [
        "Bearer tok123",
        None,
        "Bearer h",
    ]


def test_the_token_wins_over_a_password_in_the_url(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    url = "http://u:pw@testserver/k"
    assert run_cli("rm", url, "--token", "tok123").exit_code == 0
    assert authorizations(adapter) == {"Bearer tok123"}


def test_a_password_in_the_url_alone_is_sent_as_basic(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    """As curl does: a proxy in front may take Basic credentials."""
    assert run_cli("rm", "http://u:pw@testserver/k").exit_code == 0
    assert authorizations(adapter) == {"Basic " + base64.b64encode(b"u:pw").decode()}


@pytest.mark.parametrize(
    "token",
    [
        "tok123\r",  # a token file written on Windows
        "\N{LEFT DOUBLE QUOTATION MARK}tok123\N{RIGHT DOUBLE QUOTATION MARK}",
        "tok 123",
        "tök",
    ],
)
@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_token_no_server_takes_is_a_usage_error(
    run_cli: Callable[..., Result],
    adapter: WsgiAdapter,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    given: str,
) -> None:
    if given == "option":
        result = run_cli("rm", f"{BASE}k", "--token", token)
    else:
        monkeypatch.setenv("MPUFLASK_TOKEN", token)
        result = run_cli("rm", f"{BASE}k")
    assert result.exit_code == 2, result.output
    assert result.output.endswith(
        f"\nError: Invalid value for '--token': {NOT_A_TOKEN}\n"
    )
    assert "tok" not in result.output.rpartition("Error:")[2].replace("token", "")
    assert adapter.sent == []


def test_a_content_type_no_header_carries_is_a_usage_error(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    source = tmp_path / "f.txt"
    write_file(source, 10)
    result = run_cli(
        "upload",
        source,
        f"{BASE}k",
        "--content-type",
        "text/plain; charset=\N{EURO SIGN}",
        *SMALL,
    )
    assert result.exit_code == 2, result.output
    assert result.output.endswith(
        f"\nError: Invalid value for '--content-type': the value of Content-Type {UNSENDABLE}\n"
    )
    assert adapter.sent == []


def test_a_header_file_line_that_is_no_header_is_named_not_shown(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    headers = tmp_path / "headers"
    headers.write_text("# keys\nX-A: 1\nX-Api-Key=topsecret-123\n")
    result = run_cli("rm", f"{BASE}k", "-H", f"@{headers}")
    assert result.exit_code == 2
    assert result.output.endswith(
        f"\nError: Invalid value for '-H' / '--header': line 3 of {headers}: a header "
        "must be written 'Name: value', like 'X-Api-Key: s3cret' (what was given is "
        "not shown: it may hold a secret)\n"
    )
    assert "topsecret" not in result.output
    assert adapter.sent == []


def test_the_library_refuses_them_too(tmp_path: Path, adapter: WsgiAdapter) -> None:
    with pytest.raises(BadHeader) as refused:
        Client(token="tok123\r")
    assert str(refused.value) == NOT_A_TOKEN
    from tests.client.wsgi_adapter import session_for

    client = Client(session=session_for(adapter))
    source = tmp_path / "f.txt"
    write_file(source, 10)
    with pytest.raises(ClientError) as failed:
        client.upload(source, f"{BASE}k", content_type="text/\N{EURO SIGN}")
    assert str(failed.value) == f"the value of Content-Type {UNSENDABLE}"
    assert adapter.sent == []


def test_the_lines_that_say_what_was_done_show_no_password(
    tmp_path: Path, run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    source = tmp_path / "f.txt"
    write_file(source, 10)
    url = "http://u:s3cretpw@testserver/k"
    results = [
        run_cli("upload", source, url, "--min-part-size", str(MIN_PART)),
        run_cli(
            "download", url, tmp_path / "copy.txt", "--min-part-size", str(MIN_PART)
        ),
        run_cli("rm", url),
    ]
    for result in results:
        assert result.exit_code == 0, result.output
        assert "http://testserver/k" in result.output
        assert "s3cretpw" not in result.output


def test_a_sessions_own_auth_is_still_sent(adapter: WsgiAdapter) -> None:
    """A caller's requests.Session with ``auth`` (a proxy's Basic, say):
    nothing given replaces it, and no netrc is read beside it."""
    from tests.client.wsgi_adapter import session_for

    session = session_for(adapter)
    session.auth = ("proxy-user", "proxy-pw")
    Client(session=session).delete(f"{BASE}k")
    basic = base64.b64encode(b"proxy-user:proxy-pw").decode()
    assert authorizations(adapter) == {f"Basic {basic}"}


def test_a_password_without_a_user_name_is_sent(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    assert run_cli("rm", "http://:pw@testserver/k").exit_code == 0
    assert authorizations(adapter) == {"Basic " + base64.b64encode(b":pw").decode()}


def test_a_url_password_basic_cannot_carry_is_one_line(
    run_cli: Callable[..., Result], adapter: WsgiAdapter
) -> None:
    """It was a UnicodeEncodeError traceback."""
    result = run_cli("rm", "http://u:p%E2%82%AC@testserver/k")
    assert (result.exit_code, result.output) == (
        1,
        "Error: the URL's user name or password holds a character Basic "
        "authentication cannot carry (beyond latin-1)\n",
    )
    assert adapter.sent == []


@pytest.mark.parametrize(
    "url",
    [
        "http://:s3cretpw@testserver:80x/k",
        "http://u:pa#s3cretpw@testserver/k",
        "http://s3cretpw@testserver:80x/k",  # a token given as the user name
        "http:/u:s3cretpw@testserver/k",
    ],
)
def test_usage_errors_never_show_a_password(
    run_cli: Callable[..., Result], adapter: WsgiAdapter, url: str
) -> None:
    result = run_cli("rm", url)
    assert result.exit_code == 2, result.output
    assert "s3cretpw" not in result.output
    assert "***@" in result.output
    assert adapter.sent == []
