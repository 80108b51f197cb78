"""Reading ``MPUFLASK_AUTH_TOKENS``: the bearer tokens and what each may do.

Two forms. Comma-separated tokens (``tok1,tok2``), each allowed everything,
with identity ``token:<first 12 hex of its SHA-256>``. Or a JSON list whose
entries are objects ``{"token", "identity"?, "prefix"?, "actions"?}`` (or plain
token strings); JSON is read only for this structured form, never for a lone
token, so ``0`` or ``null`` stay tokens. Every mistake is refused with the
entry's number and what is wrong, never with the token itself.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from typing import Any

from .actions import ACTIONS
from .auth import Token
from .setting_types import EMPTY
from .setting_types import shown

#: RFC 6750's b64token: what an ``Authorization: Bearer`` header can carry.
_BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_BAD_CHARACTERS = (
    "has a token with characters a bearer token cannot carry "
    "(RFC 6750: letters, digits and - . _ ~ + /, then = padding)"
)
FIELDS = ("token", "identity", "prefix", "actions")


def parse_tokens(value: Any) -> tuple[Token, ...]:
    """The tokens ``value`` lists: text in either form, or a Python list.

    Raises ``ValueError`` with a phrase that follows the setting's name, e.g.
    ``entry 2 has an unknown action 'gett' (known: ...)``.
    """
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(EMPTY)
        if value.lstrip().startswith("["):
            entries = _json_list(value)
        else:
            entries = [item.strip() for item in value.split(",")]
            for number, item in enumerate(entries, 1):
                if not item:
                    raise ValueError(f"entry {number} is empty (a stray comma?)")
    elif isinstance(value, list | tuple):
        entries = list(value)
    else:
        raise ValueError(
            "must be text or a list of tokens, not a value of type "
            f"{type(value).__name__}"
        )
    if not entries:
        raise ValueError(EMPTY)
    tokens = tuple(_token(number, entry) for number, entry in enumerate(entries, 1))
    seen: dict[str, int] = {}
    for number, token in enumerate(tokens, 1):
        if token.secret in seen:
            raise ValueError(
                f"entries {seen[token.secret]} and {number} have the same token"
            )
        seen[token.secret] = number
    return tokens


def _json_list(text: str) -> list[Any]:
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        # The position, not the text around it: the text holds secrets.
        raise ValueError(
            "is not a valid JSON list of tokens "
            f"({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except RecursionError:
        raise ValueError(
            "is not a valid JSON list of tokens (nested too deeply)"
        ) from None
    if not isinstance(entries, list):  # e.g. "[1] " parses; "[1], 2" does not
        raise ValueError("is not a valid JSON list of tokens")
    return entries


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a value of type {type(value).__name__}"


def _token(number: int, entry: Any) -> Token:
    """One entry as a :class:`~mpuflask.auth.Token`, or the reason it is wrong."""
    where = f"entry {number}"
    if isinstance(entry, Token):  # from code, already made
        return entry
    if isinstance(entry, str):
        entry = {"token": entry}
    if not isinstance(entry, dict):
        raise ValueError(
            f'{where} must be an object like {{"token": "..."}} or a string, '
            f"not {_json_type(entry)}"
        )
    for field in entry:
        if field not in FIELDS:
            close = difflib.get_close_matches(str(field), FIELDS, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            name = json.dumps(str(field)) if len(str(field)) <= 40 else shown(field)
            raise ValueError(f"{where} has an unknown field {name}{hint}")
    if "token" not in entry:
        raise ValueError(f'{where} has no "token"')
    secret = entry["token"]
    if not isinstance(secret, str):
        raise ValueError(
            f"{where} has a token that is {_json_type(secret)}, not a string"
        )
    if not secret:
        raise ValueError(f"{where} has an empty token")
    if not _BEARER.fullmatch(secret):
        raise ValueError(f"{where} {_BAD_CHARACTERS}")
    identity = entry.get("identity")
    if "identity" in entry and (not isinstance(identity, str) or not identity):
        raise ValueError(f'{where} has an "identity" that is not a non-empty string')
    prefix = entry.get("prefix", "")
    if not isinstance(prefix, str):
        raise ValueError(f'{where} has a "prefix" that is not a string')
    actions = None
    if "actions" in entry:
        actions = _actions(where, entry["actions"])
    fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
    return Token(
        secret=secret,
        identity=identity or f"token:{fingerprint}",
        prefix=prefix,
        actions=actions,
    )


def _actions(where: str, listed: Any) -> frozenset[str]:
    if not isinstance(listed, list | tuple) or not all(
        isinstance(action, str) for action in listed
    ):
        raise ValueError(f'{where} has "actions" that are not a list of action names')
    if not listed:
        # Allowing nothing is no use, and "everything" would be a guess.
        raise ValueError(
            f'{where} has an empty "actions" list (leave it out to allow every action)'
        )
    for action in listed:
        if action not in ACTIONS:
            raise ValueError(
                f"{where} has an unknown action {shown(action)} "
                f"(known: {', '.join(sorted(ACTIONS))})"
            )
    return frozenset(listed)
