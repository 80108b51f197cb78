"""The value types of mpuflask's settings: each reads text or a Python value.

A type is a :class:`Kind`: a short description (the README's "type" column)
and a function that turns what an operator gave into the value the app uses,
or raises ``ValueError`` with a phrase that completes "<setting name> ...",
for example ``must be true or false (...), not 'maybe'``. mpuflask/config.py
adds the name and raises :class:`~mpuflask.config.ConfigError`.

Text (the environment, or a string in the ``create_app`` mapping) is never
JSON-decoded; a Python value of the right type (``int``, ``bool``, a list) is
taken as it is. A phrase never quotes a secret.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .urltext import userinfo_span

#: What an empty value is told, whatever its type (set-but-empty is a mistake:
#: for a secret or token list it would silently turn auth off).
EMPTY = "is set but empty; unset it or give it a value"
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
BOOLEAN_WORDS = "true or false (or 1/0, yes/no, on/off)"
#: Largest integer setting: 16 digits at most, and exact in JavaScript (the
#: upload page reads the part limits).
INTEGER_MAX = 10**15
SECONDS_MAX = 10**9

_DIGITS = re.compile(r"[0-9]{1,16}")
_DECIMAL = re.compile(r"[0-9]{1,10}(\.[0-9]{1,6})?")
#: scheme://host[:port]: a DNS name or an IP literal, no pattern characters
#: (flask-cors would read ``*`` and the like as a regular expression).
_ORIGIN = re.compile(
    r"[a-z][a-z0-9+.-]*://([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])"
    r"(:[0-9]{1,5})?"
)
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
#: ``type/subtype``, ``type/*`` (any subtype) or ``*/*``.
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/({_TOKEN}|\*)|\*/\*")


@dataclass(frozen=True)
class Kind:
    """One setting type: its description and its parser."""

    description: str
    parse: Callable[[Any], Any]
    #: How a default is written back as text (README, round trips).
    show: Callable[[Any], str] = str


def optional(kind: Kind) -> Kind:
    """``kind``, or None (unset) from code; the doc line says what unset means."""
    return Kind(
        kind.description,
        lambda value: None if value is None else kind.parse(value),
        kind.show,
    )


def shown(value: Any) -> str:
    """A value in an error line: repr (one line), cut at about 60 characters."""
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:56] + "...")
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "..."


def _text(value: Any) -> str:
    """``value`` as non-empty text; a wrong type is named, never shown."""
    if not isinstance(value, str):
        raise ValueError(f"must be text, not a value of type {type(value).__name__}")
    if not value.strip():
        raise ValueError(EMPTY)
    return value


def _utf8(value: Any) -> str:
    """Non-empty text that is UTF-8: a byte that is not (an environment
    variable holds it as a surrogate) would fail where the value is used, a
    secret on every signed URL or webhook. The value is never shown."""
    text = _text(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "holds a byte that is not UTF-8 text; write it in UTF-8"
        ) from None
    return text


def _trimmed(value: Any) -> str:
    """UTF-8 text without spaces around it (a name, an address)."""
    return _unpadded(_utf8(value))


def _unpadded(text: str) -> str:
    """``text``, refused with spaces around it: a name or a path followed by a
    stray space (``/srv/data ``) names something else, silently."""
    if text != text.strip():
        raise ValueError(f"has spaces before or after it, {shown(text)}; remove them")
    return text


def _words(value: str) -> bool | None:
    if value.isascii():
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def _parse_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not value:
            raise ValueError(EMPTY)
        word = _words(value)
        if word is not None:
            return word
    raise ValueError(f"must be {BOOLEAN_WORDS}, not {shown(value)}")


def _show_boolean(value: Any) -> str:
    return "true" if value else "false"


BOOLEAN = Kind("boolean", _parse_boolean, _show_boolean)


def _auto_or_boolean(value: Any) -> bool | str:
    if value == "auto":
        return "auto"
    try:
        return _parse_boolean(value)
    except ValueError:
        if value == "":
            raise
        raise ValueError(
            f"must be auto, or {BOOLEAN_WORDS}, not {shown(value)}"
        ) from None


AUTO_OR_BOOLEAN = Kind(
    "`auto` or boolean",
    _auto_or_boolean,
    lambda value: value if value == "auto" else _show_boolean(value),
)


def _bound(limit: int) -> str:
    return {INTEGER_MAX: "10^15", SECONDS_MAX: "10^9"}.get(limit, str(limit))


def integer(minimum: int, maximum: int = INTEGER_MAX) -> Kind:
    """Whole numbers in ASCII digits (no sign, exponent or spaces), bounded."""
    wanted = f"an integer from {minimum} to {_bound(maximum)}"

    def parse(value: Any) -> int:
        if value == "":
            raise ValueError(EMPTY)
        number = None
        if type(value) is int:
            number = value
        elif isinstance(value, str) and _DIGITS.fullmatch(value):
            number = int(value)
        if number is None or not minimum <= number <= maximum:
            raise ValueError(f"must be {wanted}, not {shown(value)}")
        return number

    return Kind(f"integer {minimum} to {_bound(maximum)}", parse)


def seconds(minimum: float, or_zero: bool = False) -> Kind:
    """A duration: digits with an optional decimal part (``600``, ``0.5``).

    ``or_zero``: 0 is taken too (it means "never"), but nothing between 0
    and ``minimum`` (an interval of a microsecond would be a busy loop).
    """
    wanted = (
        ("0 or " if or_zero else "")
        + f"a number of seconds from {minimum:g} to {_bound(SECONDS_MAX)} "
        "(like 600 or 0.5)"
    )

    def parse(value: Any) -> float:
        if value == "":
            raise ValueError(EMPTY)
        number = None
        if type(value) in (int, float) and math.isfinite(value):
            number = float(value)
        elif isinstance(value, str) and _DECIMAL.fullmatch(value):
            number = float(value)
        if number is None or not (
            minimum <= number <= SECONDS_MAX or (or_zero and number == 0)
        ):
            raise ValueError(f"must be {wanted}, not {shown(value)}")
        return number

    return Kind(
        ("0, or " if or_zero else "") + f"seconds {minimum:g} to {_bound(SECONDS_MAX)}",
        parse,
        lambda v: f"{v:g}",
    )


def choice(*options: str) -> Kind:
    """One of a few words, exactly as written."""
    listed = ", ".join(options[:-1]) + f" or {options[-1]}"

    def parse(value: Any) -> str:
        if value == "":
            raise ValueError(EMPTY)
        if value not in options:
            raise ValueError(f"must be {listed}, not {shown(value)}")
        return str(value)

    quoted = [f"`{option}`" for option in options]
    return Kind(", ".join(quoted[:-1]) + f" or {quoted[-1]}", parse)


#: A name or an address: UTF-8, no spaces around it.
TEXT = Kind("text", _trimmed)


def _path(value: Any) -> str:
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    text = _unpadded(_text(text))
    if "\0" in text:  # only from code: no environment variable holds one
        raise ValueError("holds a NUL character, which no path can hold")
    return text


#: A directory: text, or a ``pathlib.Path`` from code (any bytes Linux allows).
PATH = Kind("path", _path)
#: A secret: UTF-8 text taken as it is (never stripped, decoded or shown).
SECRET = Kind("secret text", _utf8)


def _state_prefix(value: Any) -> str:
    text = _text(value)
    if not text.endswith("/") or len(text) > 256:
        raise ValueError(
            f"must end in / and be at most 256 characters, not {shown(value)}"
        )
    return text


STATE_PREFIX = Kind("text ending in /", _state_prefix)


def items(value: Any) -> list[Any]:
    """The items of a comma-separated text or of a list; empty items refused."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(EMPTY)
        found: list[Any] = [item.strip() for item in value.split(",")]
    elif isinstance(value, list | tuple):
        found = list(value)
    else:
        raise ValueError(
            f"must be text or a list, not a value of type {type(value).__name__}"
        )
    if not found:
        raise ValueError(EMPTY)
    if any(isinstance(item, str) and not item.strip() for item in found):
        raise ValueError("has an empty item (a stray comma?)")
    return found


def _matching(
    pattern: re.Pattern[str], example: str
) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        listed = items(value)
        for item in listed:
            if not isinstance(item, str) or not pattern.fullmatch(item.strip()):
                raise ValueError(f"has {shown(item)}, which is not {example}")
        return tuple(item.strip() for item in listed)

    return parse


def _origins(value: Any) -> tuple[str, ...]:
    if value == "*" or value in (["*"], ("*",)):
        return ("*",)
    return _matching(
        _ORIGIN,
        "an origin like https://app.example (scheme://host[:port], no path) or *",
    )(value)


ORIGINS = Kind("origins, or `*`", _origins)
MEDIA_TYPES = Kind(
    "media types",
    _matching(_MEDIA_TYPE, "a media type like image/png, or image/* for any image"),
)


_URL = re.compile(r"(?i:https?)://[^/\s?#]+(/[^\s]*)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def url(instead: str) -> Kind:
    """An http(s) URL that a request can go to as written: a host, a port in
    range, no control character, and no ``user:password@``, which Python's
    HTTP clients would take for part of the host name (and which an error
    line or a log would print). ``instead`` says where credentials go."""

    def parse(value: Any) -> str:
        text = _trimmed(value)
        if userinfo_span(text) is not None:
            # Before any line that quotes the value: it may hold a password.
            raise ValueError(
                "must not hold a user name or password (user:password@host): it "
                f"would be sent as the host name; leave it out ({instead})"
            )
        try:
            parts = urlsplit(text) if _URL.fullmatch(text) else None
        except ValueError:  # an unclosed [IPv6 literal
            parts = None
        if parts is None or not parts.hostname or _CONTROL.search(text):
            raise ValueError(
                f"must be an http:// or https:// URL with a host, not {shown(value)}"
            )
        literal_end = parts.netloc.rfind("]") + 1  # 0 if no [IPv6] literal
        after_host = parts.netloc[literal_end:]
        if literal_end and after_host[:1] not in ("", ":"):  # http://[::1]x/
            raise ValueError(
                f"must be an http:// or https:// URL with a host, not {shown(value)}"
            )
        port = after_host.partition(":")[2]
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(
                f"has port {shown(port)}, which is not a number from 1 to 65535"
            )
        scheme, colon, rest = text.partition(":")
        return f"{scheme.lower()}{colon}{rest}"  # HTTP:// as http://

    return Kind("http(s) URL", parse)


def some_of(*options: str) -> Kind:
    """A comma-separated selection of a few words (at least one, no repeats)."""

    def parse(value: Any) -> tuple[str, ...]:
        listed = [
            item.strip() if isinstance(item, str) else item for item in items(value)
        ]
        for item in listed:
            if item not in options:
                raise ValueError(
                    f"has {shown(item)}, which is not one of {', '.join(options)}"
                )
        if len(set(listed)) != len(listed):
            raise ValueError("names a value twice")
        return tuple(listed)

    return Kind("list of " + ", ".join(f"`{o}`" for o in options), parse, ",".join)
