"""Compact JSON text, as the Worker's ``JSON.stringify`` writes it.

A listing of 10,000 parts (``mpu-listparts``, an object's manifest) is one
array of small, same-shaped objects; building and walking a dict for each
takes three times as long as writing each entry's text directly. Callers
write those entries (quoting strings with :func:`quoted`) and this module
puts them into the object around them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from json.encoder import encode_basestring
from typing import Any

#: A str as ``json.dumps(..., ensure_ascii=False)`` quotes it.
quoted = encode_basestring


#: What ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``
#: encodes with, made once: dumps makes an encoder per call when given options.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact(value: Any) -> str:
    """``value`` as compact JSON: no spaces, non-ASCII as it is."""
    return _COMPACT.encode(value)


def with_array(head: dict[str, Any], name: str, items: Iterable[str]) -> str:
    """The object ``head`` plus a last field ``name``: the array of the JSON
    texts ``items``, as :func:`compact` would write ``{**head, name: [...]}``."""
    fields = compact(head)[1:-1]
    array = f"{quoted(name)}:[{','.join(items)}]"
    return f"{{{fields},{array}}}" if fields else f"{{{array}}}"
