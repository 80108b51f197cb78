"""A user's before_request, after_request and errorhandler on mpuflask's
blueprints run for exactly that blueprint's actions (issue 13).

The hooks are declared as a Flask user would, at import time, in
tests/user_blueprint_hooks.py; it runs in a fresh interpreter because Flask
refuses hooks on a blueprint that an app has already registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def seen(base_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each case of tests/user_blueprint_hooks.py: status, text, hooks' headers."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.user_blueprint_hooks", json.dumps(base_config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {case.pop("case"): case for case in json.loads(result.stdout)}


MULTIPART = [
    "POST /k?action=mpu-create {}",
    "PUT /k?action=mpu-uploadpart&uploadId={U}&partNumber=1 {}",
    "GET /k?action=mpu-listparts&uploadId={U} {}",
    "POST /k?action=mpu-complete&uploadId={U} {}",
    "DELETE /k?action=mpu-abort&uploadId={U} {}",
]
OBJECTS = [
    "GET /k?action=get {}",
    "HEAD /k?action=get {}",
    "DELETE /k?action=delete {}",
]
NEITHER = [
    "GET /?action=health {}",
    "GET /k {}",
    "GET /k?action=junk {}",
    "PUT /k?action=get {}",
    "PATCH /k?action=get {}",
]


def test_each_blueprints_hooks_run_for_exactly_its_actions(
    seen: dict[str, dict[str, Any]],
) -> None:
    hooks = {case: (got["before"], got["after"]) for case, got in seen.items()}
    for case in MULTIPART:
        assert hooks[case] == ("multipart", "multipart"), case
        assert seen[case]["endpoint"].startswith("multipart.mpu_"), case
    for case in OBJECTS:
        assert hooks[case] == ("objects", "objects"), case
    for case in NEITHER:
        assert hooks[case] == (None, None), case


def test_the_actions_still_answer_as_before(seen: dict[str, dict[str, Any]]) -> None:
    answers = {case: (got["status"], got["text"]) for case, got in seen.items()}
    assert answers["PUT /k?action=mpu-uploadpart&uploadId={U}&partNumber=1 {}"] == (
        200,
        '{"partNumber":1,"etag":"9dd4e461268c8034f5c8564e155c67a6"}',
    )
    assert answers["DELETE /k?action=delete {}"] == (204, "")
    assert answers["GET /?action=health {}"] == (200, '{"status":"ok"}')
    assert answers["GET /k {}"] == (400, "Missing action type")
    assert answers["GET /k?action=junk {}"] == (400, "Unknown action junk for GET")
    assert answers["PUT /k?action=get {}"] == (400, "Unknown action get for PUT")
    assert answers["PATCH /k?action=get {}"] == (405, "Method Not Allowed")


def test_each_blueprints_errorhandler_catches_only_its_own(
    seen: dict[str, dict[str, Any]],
) -> None:
    answers = {case: (got["status"], got["text"]) for case, got in seen.items()}
    assert answers["POST /k?action=mpu-create {'X-Teapot': '1'}"] == (
        418,
        "multipart caught the teapot from multipart",
    )
    assert answers["GET /k?action=get {'X-Teapot': '1'}"] == (
        418,
        "objects caught the teapot from objects",
    )
    # No blueprint's hook runs where no action does: the Worker's answer.
    assert answers["GET /k {'X-Teapot': '1'}"] == (400, "Missing action type")
    # The objects blueprint's own 404 page: for its actions only.
    assert answers["GET /k?action=get {}"] == (404, "no such object: {'key': 'k'}")
    assert answers["DELETE /k?action=mpu-abort&uploadId={U} {}"][0] == 204
