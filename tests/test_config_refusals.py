"""Refusals beyond one bad variable: token lists, secrets never shown, bad
values given in code, and settings that cannot work together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .config_support import S3_STORE
from .config_support import refused


@pytest.mark.parametrize(
    ("value", "line"),
    [
        (
            "12345,",
            "MPUFLASK_AUTH_TOKENS entry 2 is empty (a stray comma?)",
        ),
        (
            "good, bad token",
            "MPUFLASK_AUTH_TOKENS entry 2 has a token with characters a bearer token cannot carry (RFC 6750: letters, digits and - . _ ~ + /, then = padding)",
        ),
        (
            '{"token": "x"}',
            "MPUFLASK_AUTH_TOKENS entry 1 has a token with characters a bearer token cannot carry (RFC 6750: letters, digits and - . _ ~ + /, then = padding)",
        ),
        (
            "tok, tok",
            "MPUFLASK_AUTH_TOKENS entries 1 and 2 have the same token",
        ),
        (
            '[{"token": "a", }]',
            "MPUFLASK_AUTH_TOKENS is not a valid JSON list of tokens (Expecting property name enclosed in double quotes at line 1 column 17)",
        ),
        (
            "[" * 100_000,
            "MPUFLASK_AUTH_TOKENS is not a valid JSON list of tokens (nested too deeply)",
        ),
        (
            "[]",
            "MPUFLASK_AUTH_TOKENS is set but empty; unset it or give it a value",
        ),
        (
            "[12345]",
            'MPUFLASK_AUTH_TOKENS entry 1 must be an object like {"token": "..."} or a string, not a number',
        ),
        (
            '[{"token": 12345}]',
            "MPUFLASK_AUTH_TOKENS entry 1 has a token that is a number, not a string",
        ),
        (
            '[{"identity": "alice"}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has no "token"',
        ),
        (
            '[{"token": ""}]',
            "MPUFLASK_AUTH_TOKENS entry 1 has an empty token",
        ),
        (
            '[{"token": "a", "prefx": "alice/"}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has an unknown field "prefx" (did you mean "prefix"?)',
        ),
        (
            '[{"token": "a", "identity": ""}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has an "identity" that is not a non-empty string',
        ),
        (
            '[{"token": "a", "prefix": null}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has a "prefix" that is not a string',
        ),
        (
            '[{"token": "a", "actions": "get"}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has "actions" that are not a list of action names',
        ),
        (
            '[{"token": "a", "actions": []}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has an empty "actions" list (leave it out to allow every action)',
        ),
        (
            '[{"token": "a", "actions": ["get", "gett"]}]',
            "MPUFLASK_AUTH_TOKENS entry 1 has an unknown action 'gett' (known: delete, get, list, mpu-abort, mpu-complete, mpu-create, mpu-list, mpu-listparts, mpu-uploadpart)",
        ),
    ],
)
def test_bad_token_list_names_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, line: str
) -> None:
    message = refused(tmp_path, monkeypatch, {"MPUFLASK_AUTH_TOKENS": value})
    assert message == line


def test_a_refused_secret_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = refused(tmp_path, monkeypatch, MPUFLASK_SIGNING_KEY=12345)
    assert message == "MPUFLASK_SIGNING_KEY must be text, not a value of type int"
    message = refused(tmp_path, monkeypatch, MPUFLASK_AUTH_TOKENS="s3cret, s3 cret")
    assert "s3" not in message


@pytest.mark.parametrize(
    ("mapping", "line"),
    [
        (
            {"MPUFLASK_AUTH_TOKEN": "t0k"},
            "unknown setting MPUFLASK_AUTH_TOKEN in the create_app mapping; did you mean MPUFLASK_AUTH_TOKENS?",
        ),
        (
            {"MPUFLASK_SIGNING_KYE": "k"},
            "unknown setting MPUFLASK_SIGNING_KYE in the create_app mapping; did you mean MPUFLASK_SIGNING_KEY?",
        ),
        (
            {"MPUFLASK_WEB_UI": 1},
            "MPUFLASK_WEB_UI must be true or false (or 1/0, yes/no, on/off), not 1",
        ),
        (
            {"MPUFLASK_WEB_UI": None},
            "MPUFLASK_WEB_UI must be true or false (or 1/0, yes/no, on/off), not None",
        ),
        (
            {"MPUFLASK_MIN_PART_SIZE": True},
            "MPUFLASK_MIN_PART_SIZE must be an integer from 1 to 10^15, not True",
        ),
        (
            {"MPUFLASK_MIN_PART_SIZE": 1024.0},
            "MPUFLASK_MIN_PART_SIZE must be an integer from 1 to 10^15, not 1024.0",
        ),
        (
            {"MPUFLASK_S3_SECRET_ACCESS_KEY": 123},
            "MPUFLASK_S3_SECRET_ACCESS_KEY must be text, not a value of type int",
        ),
        (
            {"MPUFLASK_AUTH_TOKENS": [{"token": "a", "identity": 7}]},
            'MPUFLASK_AUTH_TOKENS entry 1 has an "identity" that is not a non-empty string',
        ),
        (
            {"MPUFLASK_AUTH_TOKENS": 12345},
            "MPUFLASK_AUTH_TOKENS must be text or a list of tokens, not a value of type int",
        ),
        (
            {"MPUFLASK_AUTH_HOOKS": ["tests.config_support:no_hook", 42]},
            "MPUFLASK_AUTH_HOOKS has 42, which is neither a dotted path nor a callable",
        ),
        (
            {"MPUFLASK_MIN_PART_SIZE": 2048, "MPUFLASK_MAX_PART_SIZE": "1024"},
            "MPUFLASK_MIN_PART_SIZE (2048) is larger than MPUFLASK_MAX_PART_SIZE (1024)",
        ),
        (
            {"MPUFLASK_STORE": "s3"},
            "MPUFLASK_STORE=s3 needs MPUFLASK_S3_BUCKET (a bucket name)",
        ),
        (
            {"MPUFLASK_S3_STATE_PREFIX": "state"},
            "MPUFLASK_S3_STATE_PREFIX must end in / and be at most 256 characters, not 'state'",
        ),
        (
            {"MPUFLASK_S3_ADDRESSING_STYLE": "dns"},
            "MPUFLASK_S3_ADDRESSING_STYLE must be auto, path or virtual, not 'dns'",
        ),
        (
            # Only from code (no environment variable holds a NUL): a bare
            # ValueError from the store, before.
            {"MPUFLASK_DATA_DIR": "/srv/a\x00b"},
            "MPUFLASK_DATA_DIR holds a NUL character, which no path can hold",
        ),
    ],
)
def test_bad_mapping_stops_start_up_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapping: dict[str, Any], line: str
) -> None:
    assert refused(tmp_path, monkeypatch, **mapping) == line


def test_an_environment_error_is_found_even_when_code_sets_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = refused(
        tmp_path, monkeypatch, {"MPUFLASK_DURABLE": "ja"}, MPUFLASK_DURABLE=True
    )
    assert line.startswith("MPUFLASK_DURABLE must be true or false")


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {"MPUFLASK_S3_BUCKET": "b", "MPUFLASK_S3_ENDPOINT": "http://s3.local"},
            "MPUFLASK_S3_BUCKET is set but MPUFLASK_STORE is filesystem; set"
            " MPUFLASK_STORE=s3 to use the s3 store, or unset the MPUFLASK_S3_*"
            " settings",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_ACCESS_KEY_ID": "x"},
            "MPUFLASK_S3_ACCESS_KEY_ID and MPUFLASK_S3_SECRET_ACCESS_KEY go together:"
            " set both, or neither (boto3's usual sources)",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_ENDPOINT": "ab"},
            "MPUFLASK_S3_ENDPOINT must be an http:// or https:// URL with a host,"
            " not 'ab'",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_ENDPOINT": "https://AK:SK@s3.local"},
            "MPUFLASK_S3_ENDPOINT must not hold a user name or password"
            " (user:password@host): it would be sent as the host name; leave it"
            " out (the keys go in MPUFLASK_S3_ACCESS_KEY_ID and"
            " MPUFLASK_S3_SECRET_ACCESS_KEY)",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_BUCKET": "b "},
            "MPUFLASK_S3_BUCKET has spaces before or after it, 'b '; remove them",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_SPOOL_DIR": "/nonexistent/spool"},
            "MPUFLASK_S3_SPOOL_DIR '/nonexistent/spool' is not a directory the server"
            " may write; create it, or unset it to use the temp dir",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_MAX_CONNECTIONS": "1000000000000000"},
            "MPUFLASK_S3_MAX_CONNECTIONS must be an integer from 1 to 4096, not"
            " '1000000000000000'",
        ),
    ],
)
def test_settings_that_cannot_work_together_stop_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], line: str
) -> None:
    """An operator's hunt: s3 settings without the s3 store were ignored (each
    machine kept a store of its own); half a key pair, an endpoint that is no
    URL and a huge pool failed at start with a 100-line traceback, or hung."""
    assert refused(tmp_path, monkeypatch, environ) == line
