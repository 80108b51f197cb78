"""Connection failures are one line of plain words, with a kind to act on.

Real sockets on loopback fail the way networks do (refused, hung up, reset,
silent, not TLS); name resolution fails through a patched ``getaddrinfo``.
None of requests' or urllib3's own text (``HTTPConnectionPool``, ``Max
retries exceeded``, ``NewConnectionError``) reaches the message.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from mpuflask.client import Client
from mpuflask.client import RetryPolicy
from mpuflask.client import ServerRefused
from mpuflask.client import TransferFailed
from mpuflask.client.errors import one_line
from tests.client.sockets import failing_server
from tests.servers import free_port

ONCE = RetryPolicy(attempts=1)
LIBRARY_TEXT = ("HTTPConnectionPool", "Max retries", "NewConnectionError", "urllib3")


def fail(url: str, **settings: Any) -> TransferFailed:
    client = Client(retry=settings.pop("retry", ONCE), **settings)
    with pytest.raises(TransferFailed) as failed:
        client.delete(url)
    message = str(failed.value)
    assert not any(text in message for text in LIBRARY_TEXT), message
    assert "\n" not in message
    return failed.value


def test_refused() -> None:
    port = free_port()
    error = fail(f"http://127.0.0.1:{port}/k")
    assert (error.kind, error.host) == ("refused", f"127.0.0.1:{port}")
    assert str(error) == (
        f"delete http://127.0.0.1:{port}/k: 127.0.0.1:{port} refused the connection"
    )


def test_retries_are_counted_in_the_message() -> None:
    port = free_port()
    error = fail(
        f"http://127.0.0.1:{port}/k",
        retry=RetryPolicy(attempts=3, base_delay=0, max_delay=0),
    )
    assert str(error).endswith("refused the connection (tried 3 times)")


def test_host_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    error = fail("http://files.example.invalid:8000/k")
    assert error.kind == "dns"
    assert str(error) == (
        "delete http://files.example.invalid:8000/k: the host name "
        "'files.example.invalid' was not found"
    )


@pytest.mark.parametrize(
    ("behaviour", "why"),
    [("close", "closed without an answer"), ("reset", "connection reset by peer")],
)
def test_a_connection_cut_without_an_answer(behaviour: str, why: str) -> None:
    with failing_server(behaviour) as port:
        error = fail(f"http://127.0.0.1:{port}/k")
    assert error.kind == "broken"
    assert str(error) == (
        f"delete http://127.0.0.1:{port}/k: the connection to 127.0.0.1:{port} "
        f"broke ({why})"
    )


def test_no_answer_in_time() -> None:
    """The server never answers: the read timeout is always reached."""
    with failing_server("silent") as port:
        error = fail(f"http://127.0.0.1:{port}/k", timeout=(30.0, 0.5))
    assert error.kind == "read-timeout"
    assert str(error) == (
        f"delete http://127.0.0.1:{port}/k: 127.0.0.1:{port} did not answer "
        "within 0.5 s"
    )


def test_https_to_a_server_without_tls_is_not_retried() -> None:
    with failing_server("http") as port:
        client = Client(retry=RetryPolicy(attempts=5, base_delay=0, max_delay=0))
        with pytest.raises(TransferFailed) as failed:
            client.delete(f"https://127.0.0.1:{port}/k")
    assert failed.value.kind == "tls"
    assert failed.value.tries == 1, "a TLS failure stays one"
    assert str(failed.value).startswith(
        f"delete https://127.0.0.1:{port}/k: TLS with 127.0.0.1:{port} failed"
    )


def test_the_url_shown_has_no_query_or_password() -> None:
    """The query a URL signer adds (a signature) and a password are never shown."""
    port = free_port()
    error = fail(
        f"http://user:pw@127.0.0.1:{port}/k",
        url_signer=lambda method, url: f"{url}&sig=secret",
    )
    assert "secret" not in str(error) and "pw" not in str(error)
    assert str(error).startswith(f"delete http://127.0.0.1:{port}/k: ")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("uploadPart: too big (10011)\n", "uploadPart: too big (10011)"),
        (
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>"
            "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
            "</body>\n</html>\n",
            "502 Bad Gateway",
        ),
        ("<p>Gone &amp; done</p>", "Gone & done"),
        ("line one\n  line two", "line one line two"),
        ("", "(no message)"),
        ("x" * 1000, "x" * 297 + "..."),
    ],
)
def test_a_server_text_is_one_short_line(text: str, line: str) -> None:
    assert one_line(text) == line
    refused = ServerRefused("GET", "get", 502, text, "http://h/k")
    assert str(refused) == f"get http://h/k answered 502: {line}"
    assert refused.text == text.strip(), "the text itself is kept whole"
