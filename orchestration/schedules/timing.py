"""Schedule time: cron expressions in IANA time zones, or ISO-8601 intervals, turned into tick
instants (pure).

An interval schedule (`PT6H`, `P1D`, `P1W`) ticks every interval from the instant it was created,
whatever the time zone. A cron schedule's ticks are wall-clock times in the schedule's time zone. A time that does not exist on a
spring-forward day runs once, at the same instant the clock jumps to (02:30 -> 03:30 CEST); a
time that happens twice on a fall-back day runs once, at its first occurrence. The period a
tick runs is the last complete period of the template's cadence as of the tick, in the
partitions' time zone (UTC).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from croniter import croniter

from orchestration.errors import Conflict, Invalid, NotFound

MAX_TICKS_PER_EVALUATION = 1000  # a long outage of a minutely schedule is worked off in chunks
MIN_INTERVAL = dt.timedelta(minutes=5)  # the sensor looks every 30 s; shorter would only pile up ticks
# ISO-8601 durations of fixed length: weeks, or days and a time part. Years and months are not
# fixed lengths (use a cron expression for "monthly").
_INTERVAL = re.compile(r"P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
                       r"(?:(?P<seconds>\d+)S)?)?)")


class ScheduleError(Invalid):
    """A schedule that cannot be created or changed; the message says why."""


class ScheduleNotFound(ScheduleError, NotFound):
    """No such schedule, or one of a tenant the caller is not in."""


class ScheduleStateConflict(Conflict, ScheduleError):
    """The schedule's state does not allow the change (resume an archived one, ...)."""


def is_interval(expression: str) -> bool:
    return expression.strip().upper().startswith("P")


def parse_interval(expression: str) -> dt.timedelta:
    """`PT6H` -> 6 hours; a clear error for anything that is not a fixed ISO-8601 duration."""
    text = expression.strip().upper()
    match = _INTERVAL.fullmatch(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ScheduleError(f"invalid interval {expression!r}: expected an ISO-8601 duration of weeks, days, hours, "
                            "minutes or seconds, e.g. PT6H, P1D or P1W")
    step = dt.timedelta(**{k: int(v) for k, v in match.groupdict().items() if v})
    if step < MIN_INTERVAL:
        minutes = int(MIN_INTERVAL.total_seconds() // 60)
        raise ScheduleError(f"interval {expression!r} is shorter than the minimum of {minutes} minutes")
    return step


def canonical_interval(expression: str) -> str:
    parse_interval(expression)
    return expression.strip().upper()


def validate_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    fields = expression.split(" ")
    if len(fields) != 5 or not croniter.is_valid(expression):
        raise ScheduleError(
            f"invalid cron expression {expression!r}: expected 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 6 * * 1'"
        )
    return expression


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        if not name or name.startswith(("/", ".")) or name.lower() == "localtime":
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}: expected an IANA name such as Europe/Berlin or UTC") from exc


def _to_utc(local: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A naive wall-clock time in tz as a UTC instant.

    fold=0 maps a repeated time to its first occurrence, and a skipped time to the instant the
    clock jumps to (the offset before the change applies), so every wall-clock time is one instant.
    """
    return local.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)


def due_ticks(cron: str, timezone: str, after: dt.datetime, now: dt.datetime,
              limit: int = MAX_TICKS_PER_EVALUATION) -> list[dt.datetime]:
    """UTC instants of the cron's ticks in (after, now], in order, at most `limit` (pure).

    Iterates wall-clock times in the time zone, so a local day has each of its times once,
    whatever daylight saving does.
    """
    tz = validate_timezone(timezone)
    after, now = after.astimezone(dt.UTC), now.astimezone(dt.UTC)
    start_local = after.astimezone(tz).replace(tzinfo=None, fold=0)
    it = croniter(cron, start_local)
    ticks: list[dt.datetime] = []
    while len(ticks) < limit:
        instant = _to_utc(it.get_next(dt.datetime), tz)
        if instant > now:
            break
        if instant > after and (not ticks or instant > ticks[-1]):
            ticks.append(instant)
    return ticks


def interval_ticks(every: str, anchor: dt.datetime, after: dt.datetime, now: dt.datetime,
                   limit: int = MAX_TICKS_PER_EVALUATION) -> list[dt.datetime]:
    """UTC instants anchor + n * interval (n >= 1) in (after, now], in order, at most `limit` (pure)."""
    step = parse_interval(every)
    anchor, after, now = (t.astimezone(dt.UTC) for t in (anchor, after, now))
    n = max(1, (after - anchor) // step + 1) if after >= anchor else 1
    ticks: list[dt.datetime] = []
    while len(ticks) < limit and anchor + n * step <= now:
        ticks.append(anchor + n * step)
        n += 1
    return ticks


def next_tick(*, cron: str | None, every: str | None, timezone: str, anchor: dt.datetime,
              after: dt.datetime) -> dt.datetime:
    """The first tick strictly after `after` (pure): what `next_run_at` shows."""
    after = after.astimezone(dt.UTC)
    if every:
        step = parse_interval(every)
        n = max(1, (after - anchor) // step + 1) if after >= anchor else 1
        return anchor.astimezone(dt.UTC) + n * step
    tz = validate_timezone(timezone)
    it = croniter(cron, after.astimezone(tz).replace(tzinfo=None, fold=0))
    while True:
        instant = _to_utc(it.get_next(dt.datetime), tz)
        if instant > after:
            return instant


def tick_iso(tick_at: dt.datetime) -> str:
    return tick_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_key(schedule_id: int, tick_at: dt.datetime) -> str:
    return f"rs:{schedule_id}:{tick_iso(tick_at)}"


def last_complete_period(cadence: str, at: dt.datetime) -> str:
    """The newest period of a cadence that ended by `at` (UTC), keyed as Dagster names the partition."""
    day = at.astimezone(dt.UTC).date()
    if cadence == "monthly":
        return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1).isoformat()
    if cadence == "weekly":  # ISO weeks, keyed by their Monday
        return (day - dt.timedelta(days=day.weekday() + 7)).isoformat()
    if cadence == "daily":
        return (day - dt.timedelta(days=1)).isoformat()
    raise ValueError(f"unknown cadence {cadence!r}")
