"""How long a link may live: capped per template sensitivity; every decision takes `now` from
the caller, so tests (and the web app's clock) can move time."""

from __future__ import annotations

import datetime as dt
import re

from orchestration.catalog.templates import Template
from orchestration.links.errors import LinkError

# The longest a link may live, per template sensitivity; asking for longer is an error and the
# default is the cap.
EXPIRY_CAPS: dict[str, dt.timedelta] = {
    "restricted": dt.timedelta(hours=1),
    "confidential": dt.timedelta(hours=24),
    "internal": dt.timedelta(days=7),
}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_duration(text: str) -> dt.timedelta:
    """'90m', '2h', '7d', '1w' -> timedelta."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise LinkError(f"invalid duration {text!r}: expected a positive number and a unit, e.g. 30m, 2h, 7d")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def expiry_cap(template: Template) -> dt.timedelta:
    return EXPIRY_CAPS[template.sensitivity]


def human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def checked_lifetime(template: Template, expires_in: dt.timedelta | None) -> dt.timedelta:
    """The lifetime asked for (default: the cap), refused when not positive or over the cap."""
    cap = expiry_cap(template)
    expires_in = cap if expires_in is None else expires_in
    if expires_in <= dt.timedelta(0):
        raise LinkError("a link must expire in the future")
    if expires_in > cap:
        raise LinkError(f"{template.key} is {template.sensitivity}: a link may live at most {human(cap)}, "
                        f"not {human(expires_in)}")
    return expires_in
