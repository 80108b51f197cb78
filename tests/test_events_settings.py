"""The event settings checked at start: webhook URLs refused (a password in
one is never quoted back) or taken, the event types, settings that need the
URL, and hooks named by dotted path.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from mpuflask.config import ConfigError


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {"MPUFLASK_WEBHOOK_URL": "ftp://example.com/x"},
            "MPUFLASK_WEBHOOK_URL must be an http:// or https:// URL with a host, "
            "not 'ftp://example.com/x'",
        ),
        (
            # Never quoted back: the line would print the password.
            {"MPUFLASK_WEBHOOK_URL": "http://user:secretpw@127.0.0.1:18411/hook"},
            "MPUFLASK_WEBHOOK_URL must not hold a user name or password "
            "(user:password@host): it would be sent as the host name; leave it "
            "out (MPUFLASK_WEBHOOK_SECRET signs every delivery)",
        ),
        (
            # A password beside another fault is not shown either.
            {"MPUFLASK_WEBHOOK_URL": "https://user:s3cretpw@[::1/x y"},
            "MPUFLASK_WEBHOOK_URL must not hold a user name or password "
            "(user:password@host): it would be sent as the host name; leave it "
            "out (MPUFLASK_WEBHOOK_SECRET signs every delivery)",
        ),
        (
            # Without its ://, the password was quoted by the "not a URL" line.
            {"MPUFLASK_WEBHOOK_URL": "https//user:s3cretpw@example.com/x"},
            "MPUFLASK_WEBHOOK_URL must not hold a user name or password "
            "(user:password@host): it would be sent as the host name; leave it "
            "out (MPUFLASK_WEBHOOK_SECRET signs every delivery)",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "http:/user:s3cretpw@example.com/x"},
            "MPUFLASK_WEBHOOK_URL must not hold a user name or password "
            "(user:password@host): it would be sent as the host name; leave it "
            "out (MPUFLASK_WEBHOOK_SECRET signs every delivery)",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "user:s3cretpw@example.com/x"},
            "MPUFLASK_WEBHOOK_URL must not hold a user name or password "
            "(user:password@host): it would be sent as the host name; leave it "
            "out (MPUFLASK_WEBHOOK_SECRET signs every delivery)",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "http://h@example.com/x"},
            "MPUFLASK_WEBHOOK_URL must not hold a user name or password "
            "(user:password@host): it would be sent as the host name; leave it "
            "out (MPUFLASK_WEBHOOK_SECRET signs every delivery)",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "http://example.com:99999/x"},
            "MPUFLASK_WEBHOOK_URL has port '99999', which is not a number from "
            "1 to 65535",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "http://example.com:abc/x"},
            "MPUFLASK_WEBHOOK_URL has port 'abc', which is not a number from "
            "1 to 65535",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "http://example.com:0/x"},
            "MPUFLASK_WEBHOOK_URL has port '0', which is not a number from 1 to 65535",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "http://[::1/x"},
            "MPUFLASK_WEBHOOK_URL must be an http:// or https:// URL with a host, "
            "not 'http://[::1/x'",
        ),
        (
            # Python's urlsplit takes "x" for nothing and [::1] for the host.
            {"MPUFLASK_WEBHOOK_URL": "http://[::1]x:80/hook"},
            "MPUFLASK_WEBHOOK_URL must be an http:// or https:// URL with a host, "
            "not 'http://[::1]x:80/hook'",
        ),
        (
            {"MPUFLASK_WEBHOOK_URL": "http://example.com/a\x00b"},
            "MPUFLASK_WEBHOOK_URL must be an http:// or https:// URL with a host, "
            "not 'http://example.com/a\\x00b'",
        ),
        (
            {"MPUFLASK_WEBHOOK_EVENTS": "object-published,object-created"},
            "MPUFLASK_WEBHOOK_EVENTS has 'object-created', which is not one of "
            "object-published, upload-aborted, upload-expired, object-deleted",
        ),
        (
            {"MPUFLASK_WEBHOOK_EVENTS": "object-deleted,object-deleted"},
            "MPUFLASK_WEBHOOK_EVENTS names a value twice",
        ),
        (
            # Without the URL these did nothing, silently.
            {"MPUFLASK_WEBHOOK_SECRET": "s3cret"},
            "MPUFLASK_WEBHOOK_SECRET is set but MPUFLASK_WEBHOOK_URL is not: set "
            "the URL to deliver events to, or unset the MPUFLASK_WEBHOOK_* settings",
        ),
        (
            {
                "MPUFLASK_WEBHOOK_TIMEOUT": "5",
                "MPUFLASK_WEBHOOK_EVENTS": "object-deleted",
            },
            "MPUFLASK_WEBHOOK_EVENTS is set but MPUFLASK_WEBHOOK_URL is not: set "
            "the URL to deliver events to, or unset the MPUFLASK_WEBHOOK_* settings",
        ),
        (
            {"MPUFLASK_WEBHOOK_TIMEOUT": "0"},
            "MPUFLASK_WEBHOOK_TIMEOUT must be a number of seconds from 0.1 to 10^9 "
            "(like 600 or 0.5), not '0'",
        ),
        (
            {"MPUFLASK_EVENT_HOOKS": "tests.event_sink:nowhere"},
            "MPUFLASK_EVENT_HOOKS names 'tests.event_sink:nowhere', but module "
            "'tests.event_sink' has no attribute 'nowhere'",
        ),
    ],
)
@pytest.mark.filesystem_only("the settings are read before any store is opened")
def test_event_settings_are_checked_at_start(
    make_app: Callable[..., Flask], settings: dict[str, str], line: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        make_app(**settings)
    assert str(raised.value) == line


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://hooks.example.com/mpuflask?team=a&x=%20",
        "http://[::1]:65535/",
        "http://example.com",
    ],
)
@pytest.mark.filesystem_only("the settings are read before any store is opened")
def test_webhook_urls_that_can_be_delivered_to_are_taken(
    make_app: Callable[..., Flask], url: str
) -> None:
    app = make_app(MPUFLASK_WEBHOOK_URL=url, MPUFLASK_WEBHOOK_SECRET="s")
    assert app.config["MPUFLASK_WEBHOOK_URL"] == url


@pytest.mark.filesystem_only("the settings are read before any store is opened")
def test_an_upper_case_scheme_is_taken_as_written_in_lower_case(
    make_app: Callable[..., Flask],
) -> None:
    """Schemes are case-insensitive (RFC 3986 3.1); HTTPS:// was refused."""
    app = make_app(
        MPUFLASK_WEBHOOK_URL="HTTPS://Hooks.example.com/In", MPUFLASK_WEBHOOK_SECRET="s"
    )
    assert app.config["MPUFLASK_WEBHOOK_URL"] == "https://Hooks.example.com/In"
