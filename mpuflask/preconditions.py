"""Conditional GET/HEAD, evaluated in RFC 9110's order (section 13.2.2).

Werkzeug parses the etags; the order matters (Werkzeug's
``make_conditional`` applies ``Range`` before ``If-Match``), so we decide the
304/412 cases first and serve ranges after (:mod:`mpuflask.ranges`).

Dates are read by :func:`http_date`, not Werkzeug's ``parse_date``: that one
reads any RFC 2822 date, the first of a list included (two header lines,
which the server joins with ","), and a two-digit year as 19xx or 20xx by a
fixed pivot; RFC 9110 says to ignore all but one HTTP-date.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime

from flask import request

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_TIME = r"(?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)"
#: RFC 9110 5.6.7: IMF-fixdate and the obsolete rfc850-date and asctime-date,
#: names in any case, digits ASCII only.
_FLAGS = re.IGNORECASE | re.ASCII
_IMF_FIXDATE = re.compile(
    rf"{_DAY}, (?P<d>\d\d) (?P<m>[a-z]{{3}}) (?P<y>\d{{4}}) {_TIME} GMT", _FLAGS
)
_RFC850 = re.compile(
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    rf"(?P<d>\d\d)-(?P<m>[a-z]{{3}})-(?P<y>\d\d) {_TIME} GMT",
    _FLAGS,
)
_ASCTIME = re.compile(
    rf"{_DAY} (?P<m>[a-z]{{3}}) (?P<d>[ \d]\d) {_TIME} (?P<y>\d{{4}})", _FLAGS
)
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()


def http_date(value: str | None, now: datetime | None = None) -> datetime | None:
    """The instant of one HTTP-date (RFC 9110 5.6.7), or None if it is not one.

    Names are read in any case, the weekday is not checked against the date;
    anything else (another zone than GMT, a list, a day 31 Feb) is None, which
    the conditions take as absent. An rfc850 two-digit year is the one within
    50 years of ``now`` (RFC 9110: more than 50 years ahead is the past's).
    """
    if value is None:
        return None
    text = value.strip(" \t")
    for pattern in (_IMF_FIXDATE, _RFC850, _ASCTIME):
        match = pattern.fullmatch(text)
        if match is not None:
            break
    else:
        return None
    month = match["m"].lower()
    if month not in _MONTHS:
        return None
    year = int(match["y"])
    if len(match["y"]) == 2:
        this_year = (now or datetime.now(UTC)).year
        year += this_year - this_year % 100
        if year > this_year + 50:
            year -= 100
        elif year <= this_year - 50:
            year += 100
    day, hour, minute, second = (int(match[name]) for name in "dHMS")
    try:
        return datetime(
            year,
            _MONTHS.index(month) + 1,
            day,
            hour,
            minute,
            second,
            tzinfo=UTC,
        )
    except ValueError:
        return None


def evaluate_preconditions(etag: str, last_modified: datetime) -> int | None:
    """Return 412 or 304 if a precondition decides the answer, else None.

    An ``If-Match`` or ``If-None-Match`` that is sent is evaluated even if no
    entity-tag in it parses (``"a`` unclosed, ``"a" "b"`` with no comma): it
    then matches nothing, so ``If-Match`` fails (412, never the object of any
    version) and the date it stands before is not read (RFC 9110 13.2.2).
    """
    seconds = last_modified.replace(microsecond=0)
    if _sent("If-Match"):
        if_match = request.if_match
        # "*" matches any current version (RFC 9110 13.1.1); there is one here.
        if not (if_match.star_tag or if_match.is_strong(etag)):
            return 412
    elif (since := http_date(request.headers.get("If-Unmodified-Since"))) is not None:
        if seconds > since:
            return 412
    if _sent("If-None-Match"):
        if request.if_none_match.contains_weak(etag):
            return 304
    elif (since := http_date(request.headers.get("If-Modified-Since"))) is not None:
        if seconds <= since:
            return 304
    return None


def _sent(name: str) -> bool:
    """Whether the request carries the header with a value (an empty one is
    an empty list: no condition)."""
    return bool(request.headers.get(name, "").strip(" \t,"))
