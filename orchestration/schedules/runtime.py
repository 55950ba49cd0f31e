"""Report schedules defined at runtime: stored in the control schema, evaluated by a sensor.

Each schedule runs one approved template version for one tenant on a cron expression in an
IANA time zone. `evaluate` turns the clock into ticks: every tick is recorded once in
control.schedule_ticks (unique per schedule and instant) and becomes at most one run request,
whose run key names the schedule and the tick, so no restart or repeated evaluation can run a
tick twice. Nothing here knows Dagster; orchestration/defs/schedules/sensors.py is the thin
wrapper.

Rules a user can rely on:
- Ticks are wall-clock times in the schedule's time zone. A time that does not exist on a
  spring-forward day runs once, at the same instant the clock jumps to (02:30 -> 03:30 CEST);
  a time that happens twice on a fall-back day runs once, at its first occurrence.
- A tick is on time when the sensor sees it within ON_TIME of its instant; older ones were
  missed (the sensor was off). catch-up 'skip' records missed ticks as skipped_catch_up;
  'latest' runs the newest missed tick (unless an on-time tick runs in the same evaluation)
  and records the rest as skipped_catch_up.
- A tick while a run of the same schedule is still active is skipped_overlap, unless the
  schedule allows overlap.
- At every tick the tenant context is checked again: the tenant exists, the owner is active,
  a member of the tenant and holds a role that may schedule, the template version may still
  run on a schedule. Otherwise the tick is refused, recorded and audited, and nothing runs.
- Ticks while a schedule is paused are never run, not even after resume; archived is final.
- The period a tick runs is the last complete period of the template's cadence as of the tick,
  in the partitions' time zone (UTC); the tick instant is in the run's tags (nexus/tick_at),
  so its schedule lag is the run's start minus that.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter

from orchestration.access import audit, tenants
from orchestration.access import policy as access
from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import Template, TemplateError
from orchestration.db.warehouse import dict_rows
from orchestration.errors import ServiceError
from orchestration.governance import lifecycle as governance
from orchestration.governance import versions
from orchestration.runs import run_tags

STATES = ("active", "paused", "archived")
CATCH_UP = ("skip", "latest")
ON_TIME = dt.timedelta(minutes=2)
MAX_TICKS_PER_EVALUATION = 1000  # a long outage of a minutely schedule is worked off in chunks
ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")



class ScheduleError(ValueError):
    """A schedule that cannot be created or changed; the message says why."""


# ---------------------------------------------------------------- validation and time


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


# ---------------------------------------------------------------- lifecycle


def _approved_template(conn, key: str, version: int | None) -> Template:
    """The catalog template (it has a job), approved in the control schema and runnable on a schedule."""
    governance.register_system_templates(conn)
    try:
        chosen = versions.resolve(conn, key, version, purpose="schedule").row.version
    except ServiceError as exc:
        raise ScheduleError(str(exc)) from exc
    template = catalog.load(key, chosen)
    try:
        governance.check_runnable(conn, template, trigger="schedule")
    except governance.NotRunnable as exc:
        raise ScheduleError(f"cannot schedule {template.label}: {exc}") from exc
    return template


def _check_tenant(conn, tenant_id: str) -> None:
    if tenant_id not in tenants.list_tenant_ids(conn):
        raise ScheduleError(f"tenant {tenant_id!r} does not exist")


def create(
    conn, template_key: str, *, tenant_id: str, cron: str, timezone: str, actor: str, reason: str,
    version: int | None = None, formats: Iterable[str] | None = None, recipients: Iterable[str] = (),
    allow_overlap: bool = False, catch_up: str = "skip", now: dt.datetime | None = None,
) -> int:
    """Validate everything, store the schedule (active), audit it; returns the schedule id."""
    if not reason or not reason.strip():
        raise ScheduleError("creating a schedule needs a reason")
    cron = validate_cron(cron)
    validate_timezone(timezone)
    if catch_up not in CATCH_UP:
        raise ScheduleError(f"catch-up policy must be one of {', '.join(CATCH_UP)}, not {catch_up!r}")
    _check_tenant(conn, tenant_id)
    access.authorize(conn, actor, "schedule", target=f"schedule of {template_key} for {tenant_id}", tenant_id=tenant_id)
    template = _approved_template(conn, template_key, version)
    formats = list(dict.fromkeys(formats)) if formats else list(template.formats)
    unknown = [f for f in formats if f not in template.formats]
    if unknown:
        raise ScheduleError(f"format {', '.join(unknown)} not offered by {template.label} (offers {', '.join(template.formats)})")
    recipients = [r.strip() for r in recipients if r.strip()]
    now = now or dt.datetime.now(dt.UTC)
    with conn:
        with conn.cursor() as cur:
            cur.execute(
                """insert into control.schedules
                       (template_key, template_version, tenant_id, cron, timezone, formats, recipients,
                        allow_overlap, catch_up, owner, ticks_from, created_at, updated_at)
                   values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning schedule_id""",
                (template.key, template.version, tenant_id, cron, timezone, formats, recipients,
                 allow_overlap, catch_up, actor, now, now, now),
            )
            (schedule_id,) = cur.fetchone()
        audit.record(conn, actor=actor, action="schedule.create", target=f"schedule {schedule_id}", outcome="succeeded",
                     tenant_id=tenant_id, details={
                         "reason": reason, "template": template.label, "cron": cron, "timezone": timezone,
                         "formats": formats, "recipients": recipients, "allow_overlap": allow_overlap, "catch_up": catch_up})
    return schedule_id


def get(conn, schedule_id: int) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute("select * from control.schedules where schedule_id = %s", (schedule_id,))
        rows = dict_rows(cur)
    if not rows:
        raise ScheduleError(f"no schedule {schedule_id}")
    return rows[0]


def list_schedules(conn, *, tenant_id: str | None = None, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            """select s.*, (select max(t.tick_at) from control.schedule_ticks t
                             where t.schedule_id = s.schedule_id) as last_tick_at
               from control.schedules s
               where (%(tenant)s::text is null or s.tenant_id = %(tenant)s)
                 and (%(states)s::text[] is null or s.state = any(%(states)s))
               order by s.schedule_id""",
            {"tenant": tenant_id, "states": list(states) if states is not None else None},
        )
        return dict_rows(cur)


# state change -> (states it may start from, resulting state)
_TRANSITIONS = {
    "pause": (("active",), "paused"),
    "resume": (("paused",), "active"),
    "archive": (("active", "paused"), "archived"),
}


def _transition(conn, schedule_id: int, change: str, *, actor: str, reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
    if not reason or not reason.strip():
        raise ScheduleError(f"to {change} a schedule needs a reason")
    schedule = get(conn, schedule_id)
    access.authorize(conn, actor, "schedule", target=f"schedule {schedule_id}", tenant_id=schedule["tenant_id"])
    sources, target = _TRANSITIONS[change]
    if schedule["state"] not in sources:
        raise ScheduleError(f"schedule {schedule_id} is {schedule['state']}: only a schedule that is "
                            f"{' or '.join(sources)} can be {'resumed' if change == 'resume' else change + 'd'}")
    now = now or dt.datetime.now(dt.UTC)
    with conn:
        with conn.cursor() as cur:
            # Resuming evaluates from now on: ticks of the paused stretch are not caught up.
            cur.execute(
                """update control.schedules set state = %s, updated_at = %s,
                       ticks_from = case when %s then greatest(ticks_from, %s) else ticks_from end
                   where schedule_id = %s and state = any(%s) returning schedule_id""",
                (target, now, change == "resume", now, schedule_id, list(sources)),
            )
            if cur.fetchone() is None:
                raise ScheduleError(f"schedule {schedule_id} changed meanwhile; try again")
        audit.record(conn, actor=actor, action=f"schedule.{change}", target=f"schedule {schedule_id}", outcome="succeeded",
                     tenant_id=schedule["tenant_id"], details={"reason": reason, "from": schedule["state"], "to": target})
    return get(conn, schedule_id)


def pause(conn, schedule_id: int, *, actor: str, reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
    return _transition(conn, schedule_id, "pause", actor=actor, reason=reason, now=now)


def resume(conn, schedule_id: int, *, actor: str, reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
    return _transition(conn, schedule_id, "resume", actor=actor, reason=reason, now=now)


def archive(conn, schedule_id: int, *, actor: str, reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
    return _transition(conn, schedule_id, "archive", actor=actor, reason=reason, now=now)


def ticks(conn, schedule_id: int) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("select * from control.schedule_ticks where schedule_id = %s order by tick_at", (schedule_id,))
        return dict_rows(cur)


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class TickRequest:
    """One run to request: the template's partitioned job for (tenant, period)."""

    schedule_id: int
    tick_at: dt.datetime
    template_key: str
    tenant_id: str
    period_key: str
    run_key: str
    tags: dict[str, str]


@dataclass(frozen=True)
class TickRecord:
    schedule_id: int
    tick_at: dt.datetime
    outcome: str
    reason: str | None = None


@dataclass
class Evaluation:
    requests: list[TickRequest] = field(default_factory=list)
    recorded: list[TickRecord] = field(default_factory=list)


ActiveRunLookup = Callable[[int], bool]
PeriodFor = Callable[[Template, dt.datetime], str]


def _default_period(template: Template, tick_at: dt.datetime) -> str:
    return last_complete_period(template.cadence, tick_at)


def tick_refusal(conn, schedule: dict[str, Any], known_tenants: Iterable[str]) -> str | None:
    """Why the schedule's tenant context no longer holds (None: it does)."""
    tenant = schedule["tenant_id"]
    if tenant not in set(known_tenants):
        return f"tenant {tenant} no longer exists"
    reason = access.decide(access.get_principal(conn, schedule["owner"]), "schedule", tenant_id=tenant)
    if reason:
        return f"schedule owner {schedule['owner']}: {reason}"
    try:
        template = catalog.load(schedule["template_key"], schedule["template_version"])
        governance.check_runnable(conn, template, trigger="schedule")
    except (TemplateError, governance.NotRunnable) as exc:
        return str(exc)
    return None


def _classify(schedule: dict[str, Any], due: list[dt.datetime], now: dt.datetime, truncated: bool,
              on_time_window: dt.timedelta = ON_TIME) -> list[tuple[dt.datetime, str | None]]:
    """(tick, None) for a tick that should run, (tick, reason) for one skipped by the catch-up policy."""
    on_time = [t for t in due if t >= now - on_time_window]
    missed = [t for t in due if t < now - on_time_window]
    run_missed: dt.datetime | None = None
    if schedule["catch_up"] == "latest" and missed and not on_time and not truncated:
        run_missed = missed[-1]
    out: list[tuple[dt.datetime, str | None]] = []
    for t in missed:
        if t == run_missed:
            out.append((t, None))
        else:
            why = "newer tick runs instead" if schedule["catch_up"] == "latest" else "missed while the sensor was not running"
            out.append((t, f"missed tick ({schedule['catch_up']} policy): {why}"))
    out += [(t, None) for t in on_time]
    return out


def _record(conn, schedule_id: int, tick_at: dt.datetime, outcome: str, reason: str | None,
            key: str | None = None, period: str | None = None) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.schedule_ticks (schedule_id, tick_at, outcome, reason, run_key, partition_key)
               values (%s, %s, %s, %s, %s, %s) on conflict (schedule_id, tick_at) do nothing returning 1""",
            (schedule_id, tick_at, outcome, reason, key, period),
        )
        return cur.fetchone() is not None


def _start_after(conn, schedule: dict[str, Any]) -> dt.datetime:
    with conn.cursor() as cur:
        cur.execute("select max(tick_at) from control.schedule_ticks where schedule_id = %s", (schedule["schedule_id"],))
        (last,) = cur.fetchone()
    return max(schedule["ticks_from"], last) if last else schedule["ticks_from"]


def _tick_request(schedule: dict[str, Any], tick_at: dt.datetime, period: str) -> TickRequest:
    sid = schedule["schedule_id"]
    return TickRequest(
        schedule_id=sid, tick_at=tick_at, template_key=schedule["template_key"], tenant_id=schedule["tenant_id"],
        period_key=period, run_key=run_key(sid, tick_at),
        tags={
            run_tags.TRIGGER: "schedule",
            run_tags.REQUESTER: access.SCHEDULER,
            run_tags.SCHEDULE: str(sid),
            run_tags.TICK_AT: tick_iso(tick_at),  # the run's schedule lag is its start time minus this
            run_tags.FORMATS: ",".join(schedule["formats"]),
        },
    )


def recent_requests(conn, within: dt.timedelta = dt.timedelta(minutes=5)) -> list[TickRequest]:
    """Requests of ticks recorded as requested in the last `within`, to hand to Dagster again.

    A tick is recorded before Dagster stores the run request; if the sensor process dies in
    between, repeating the request on the next evaluation launches it. Dagster launches one run
    per run key, so a repeated request for a run that exists is a no-op.
    """
    with conn.cursor() as cur:
        cur.execute(
            """select t.tick_at, t.partition_key, s.schedule_id, s.template_key, s.tenant_id, s.formats
               from control.schedule_ticks t join control.schedules s using (schedule_id)
               where t.outcome = 'requested' and t.created_at >= now() - %s and s.state = 'active'
               order by t.schedule_id, t.tick_at""",
            (within,),
        )
        rows = dict_rows(cur)
    return [_tick_request(r, r["tick_at"].astimezone(dt.UTC), r["partition_key"]) for r in rows]


def evaluate(conn, now: dt.datetime, active_run_lookup: ActiveRunLookup, *,
             period_for: PeriodFor = _default_period, on_time: dt.timedelta = ON_TIME) -> Evaluation:
    """Record every due tick of every active schedule, and say which runs to request.

    Safe to call repeatedly and concurrently: a tick already recorded is neither recorded nor
    requested again.
    """
    now = now.astimezone(dt.UTC)
    result = Evaluation()
    known_tenants = tenants.list_tenant_ids(conn)
    for schedule in list_schedules(conn, states=["active"]):
        sid = schedule["schedule_id"]
        due = due_ticks(schedule["cron"], schedule["timezone"], _start_after(conn, schedule), now,
                        limit=MAX_TICKS_PER_EVALUATION + 1)
        truncated = len(due) > MAX_TICKS_PER_EVALUATION
        due = due[:MAX_TICKS_PER_EVALUATION]
        if not due:
            continue
        refusal = tick_refusal(conn, schedule, known_tenants)
        active = None if schedule["allow_overlap"] else active_run_lookup(sid)
        template = catalog.load(schedule["template_key"], schedule["template_version"]) if refusal is None else None
        with conn:
            for tick_at, skip_reason in _classify(schedule, due, now, truncated, on_time):
                if skip_reason:
                    outcome, reason = "skipped_catch_up", skip_reason
                elif refusal:
                    outcome, reason = "refused", refusal
                elif active:
                    outcome, reason = "skipped_overlap", "a run of this schedule is still active"
                else:
                    outcome, reason = "requested", None
                if outcome != "requested":
                    if _record(conn, sid, tick_at, outcome, reason):
                        result.recorded.append(TickRecord(sid, tick_at, outcome, reason))
                        if outcome == "refused":
                            audit.record(conn, actor=access.SCHEDULER, action="schedule.tick_refused",
                                         target=f"schedule {sid}", outcome="denied", tenant_id=schedule["tenant_id"],
                                         details={"tick_at": tick_iso(tick_at), "reason": reason})
                    continue
                period = period_for(template, tick_at)
                key = run_key(sid, tick_at)
                if not _record(conn, sid, tick_at, "requested", None, key, period):
                    continue  # another evaluation got there first
                result.recorded.append(TickRecord(sid, tick_at, "requested"))
                result.requests.append(_tick_request(schedule, tick_at, period))
                # The run just requested is active from now on: a later tick in this batch overlaps it.
                if not schedule["allow_overlap"]:
                    active = True
    return result


def tenant_of(conn, schedule_id: str) -> str | None:
    """The tenant a schedule vouches for (None: no such schedule)."""
    with conn.cursor() as cur:
        cur.execute("select tenant_id from control.schedules where schedule_id::text = %s", (schedule_id,))
        row = cur.fetchone()
    return row[0] if row else None
