"""Option types and shared options: every value is checked where it is parsed.

A value out of range or malformed is click's usage error: one line, exit 2, no traceback.
Ids are checked with access.identifiers, the same rule the services apply (NFKC + ASCII only,
so look-alike letters cannot pass for another tenant or principal).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import click

from orchestration.access import identifiers
from orchestration.errors import Invalid

# Counts shown by list commands: at least one row, and not so many a terminal drowns.
MAX_ROWS = 10_000
PORT = click.IntRange(1, 65_535)
ROWS = click.IntRange(1, MAX_ROWS)
VERSION = click.IntRange(1, 1_000_000)
ID_NUMBER = click.IntRange(1, 2**63 - 1)  # bigint keys (schedules, links)


class _Checked(click.ParamType):
    def check(self, value: str) -> str:
        raise NotImplementedError

    def convert(self, value, param, ctx):
        try:
            return self.check(value)
        except Invalid as exc:
            self.fail(str(exc), param, ctx)


class TenantId(_Checked):
    name = "tenant"

    def check(self, value: str) -> str:
        return identifiers.tenant_id(value)


class Membership(_Checked):
    name = "tenant|*"

    def check(self, value: str) -> str:
        return identifiers.membership(value)


class PrincipalId(_Checked):
    name = "principal"

    def check(self, value: str) -> str:
        return identifiers.principal_id(value)


_DURATION = re.compile(r"([1-9][0-9]{0,11})([smhdw])")  # the bound is checked after, with a clear message
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


class Duration(click.ParamType):
    """`30m`, `2h`, `7d`, `1w`: a positive whole number and one unit, nothing else, at most `maximum`."""

    name = "duration"

    def __init__(self, maximum: dt.timedelta | Callable[[], dt.timedelta]):
        self._maximum = maximum  # a callable defers importing the layer that knows the bound

    @property
    def maximum(self) -> dt.timedelta:
        return self._maximum() if callable(self._maximum) else self._maximum

    def convert(self, value, param, ctx):
        if isinstance(value, dt.timedelta):
            return value
        match = _DURATION.fullmatch(value or "")
        if not match:
            self.fail(f"{value!r} is not a duration: a positive number and one unit s, m, h, d or w, e.g. 30m, 2h, 7d",
                      param, ctx)
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        maximum = self.maximum
        if seconds > maximum.total_seconds():
            self.fail(f"{value} is longer than the longest allowed, {_human(maximum)}", param, ctx)
        return dt.timedelta(seconds=seconds)


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


TENANT = TenantId()
MEMBERSHIP = Membership()
PRINCIPAL = PrincipalId()


def actor(help_text: str = "the principal who asks"):
    # Not parsed as a PRINCIPAL: an unknown or malformed actor is refused by the service, which
    # audits the refusal; a usage error here would leave no audit row.
    return click.option("--as", "actor", required=True, help=help_text)


def reason(help_text: str = "why (recorded in the audit log)"):
    return click.option("--reason", required=True, help=help_text)


def tenant(required: bool = False, help_text: str | None = None):
    return click.option("--tenant", required=required, default=None, type=TENANT, help=help_text)
