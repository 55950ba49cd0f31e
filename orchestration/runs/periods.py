"""Report periods and windows: parsed strictly per cadence, bounded, and named for people.

A window is [start, end) in whole days. A period key is what a cadence calls one of its
periods: 'YYYY-MM' for monthly (Dagster's partitions name it 'YYYY-MM-01', accepted too),
the Monday 'YYYY-MM-DD' of an ISO week for weekly, the day for daily. Anything else is refused
with a message that says what was expected: '2026-09junk' is not September.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from orchestration.errors import Invalid

PERIOD_DAYS = {"daily": 1, "weekly": 7}
# Reports cover recorded history: nothing before this, and nothing that has not ended yet.
EARLIEST = dt.date(2000, 1, 1)
DEFAULT_MAX_WINDOW_DAYS = 366

_MONTH = re.compile(r"(\d{4})-(\d{2})(?:-01)?")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class RequestError(Invalid):
    """A run request that cannot run; the message says what to change."""


def parse_day(text: str, what: str = "date") -> dt.date:
    """'YYYY-MM-DD' exactly (no time, no trailing text), as a date."""
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        raise RequestError(f"invalid {what} {text!r}: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise RequestError(f"invalid {what} {text!r}: no such day") from None


def month_window(period_key: str) -> tuple[dt.date, dt.date]:
    """'2026-10' or '2026-10-01' -> (2026-10-01, 2026-11-01)."""
    match = _MONTH.fullmatch(period_key) if isinstance(period_key, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise RequestError(f"invalid period {period_key!r}: expected YYYY-MM")
    start = dt.date(int(match.group(1)), int(match.group(2)), 1)
    if start.year >= dt.MAXYEAR:
        raise RequestError(f"invalid period {period_key!r}: year out of range")
    return start, start + dt.timedelta(days=calendar.monthrange(start.year, start.month)[1])


def period_window(cadence: str, period_key: str) -> tuple[str, dt.date, dt.date]:
    """(canonical period key, start, end exclusive) of one period of a cadence."""
    if cadence == "monthly":
        start, end = month_window(period_key)
        return start.strftime("%Y-%m"), start, end
    start = parse_day(period_key, f"{cadence} period")
    if cadence == "weekly" and start.weekday() != 0:
        monday = start - dt.timedelta(days=start.weekday())
        raise RequestError(f"invalid weekly period {period_key!r}: weeks run Monday to Sunday; "
                           f"the week containing it starts {monday.isoformat()}")
    if start >= dt.date.max - dt.timedelta(days=PERIOD_DAYS[cadence]):
        raise RequestError(f"invalid {cadence} period {period_key!r}: out of range")
    return start.isoformat(), start, start + dt.timedelta(days=PERIOD_DAYS[cadence])


def check_window(start: dt.date, end: dt.date, *, today: dt.date, max_days: int = DEFAULT_MAX_WINDOW_DAYS) -> None:
    """Refuse windows that are empty, too long, before recorded history or not yet ended.

    A window that has not ended would report on data that is still arriving and fail Gate B with
    "fix the data" when nothing is wrong: it is refused before anything runs.
    """
    if start >= end:
        raise RequestError(f"empty window: {start} is not before {end}")
    if start < EARLIEST:
        raise RequestError(f"window starts {start}, before {EARLIEST}: no data is recorded that early")
    if start > today:
        raise RequestError(f"window starts {start}, in the future (today is {today})")
    if end > today:
        last = end - dt.timedelta(days=1)
        raise RequestError(f"window {start}..{last} has not ended yet (today is {today}); "
                           f"run it from {end} on, or choose an earlier period")
    if (end - start).days > max_days:
        raise RequestError(f"window {start}..{end - dt.timedelta(days=1)} spans {(end - start).days} days; "
                           f"this template allows at most {max_days}")


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def window_label(start: dt.date, end: dt.date) -> str:
    """How a report names its window: 'June 2026', 'Week of 22 Jun 2026', '3 Jun 2026', or the range."""
    last = end - dt.timedelta(days=1)
    if start.day == 1 and end == (start + dt.timedelta(days=32)).replace(day=1):
        return start.strftime("%B %Y")
    if (end - start).days == PERIOD_DAYS["weekly"] and start.weekday() == 0:
        return f"Week of {start.day} {start:%b %Y} ({start:%d %b} – {last:%d %b})"
    if (end - start).days == 1:
        return f"{start.day} {start:%b %Y}"
    return f"{start.isoformat()} – {last.isoformat()}"


def last_complete_month(today: dt.date | None = None) -> str:
    first = (today or utc_today()).replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")
