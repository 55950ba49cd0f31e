"""The schedule store: report schedules defined at runtime, in control.schedules, and their lifecycle.

One model for three targets: an approved template version, a report definition (whose active
version each tick runs, re-validated then by services/schedules.py), or an export pipeline (each
tick one batch of its active version, to its own destination). A schedule ticks on a cron
expression in an IANA time zone, or every ISO-8601 interval (`PT6H`) from its creation. Creating
one checks what the store can (tenant, the owner's right to schedule, the template's approval,
the formats, the timing); services/schedules.py checks a definition before it calls here. Pause,
resume and archive are audited state changes with a reason. Ticks while a schedule is paused are
never run, not even after resume; archived is final. Evaluation is in schedules/evaluation.py.

Every function runs in the caller's transaction: services/schedules.py commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from orchestration.access import audit, tenants
from orchestration.access import policy as access
from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import Template
from orchestration.db.warehouse import dict_rows
from orchestration.errors import ServiceError
from orchestration.governance import lifecycle as governance
from orchestration.governance import versions
from orchestration.schedules.timing import (
    ScheduleError,
    ScheduleNotFound,
    ScheduleStateConflict,
    canonical_interval,
    is_interval,
    next_tick,
    validate_cron,
    validate_timezone,
)

STATES = ("active", "paused", "archived")
CATCH_UP = ("skip", "latest")
TARGETS = ("template", "definition", "pipeline")
DEFINITION_FORMATS = ("csv", "xlsx")


def timing(schedule: str | None = None, *, cron: str | None = None, every: str | None = None,
           timezone: str) -> tuple[str | None, str | None]:
    """(cron, interval), exactly one set and valid: from one `schedule` expression (an interval
    starts with P), or from cron / every given apart."""
    if schedule is not None:
        cron, every = (None, schedule) if is_interval(schedule) else (schedule, None)
    if (cron is None) == (every is None):
        raise ScheduleError("give either a cron expression (with a time zone) or an ISO-8601 interval such as PT6H")
    validate_timezone(timezone)
    return (validate_cron(cron), None) if cron is not None else (None, canonical_interval(every))


def next_run_at(schedule: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
    """When the schedule ticks next (None unless active): after now and after its last tick."""
    if schedule["state"] != "active":
        return None
    after = max(t for t in (now, schedule["ticks_from"], schedule.get("last_tick_at")) if t is not None)
    return next_tick(cron=schedule["cron"], every=schedule["every"], timezone=schedule["timezone"],
                     anchor=schedule["created_at"], after=after)


def _recipients(recipients: Iterable[str]) -> list[str]:
    """Stored as given, trimmed (services/schedules.py parses them: delivery owns the form)."""
    return [r.strip() for r in recipients if r.strip()]


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
    conn, template_key: str, *, tenant_id: str, cron: str | None = None, timezone: str, actor: str, reason: str,
    version: int | None = None, formats: Iterable[str] | None = None, recipients: Iterable[str] = (),
    allow_overlap: bool = False, catch_up: str = "skip", now: dt.datetime | None = None, every: str | None = None,
) -> int:
    """Validate everything, store the schedule (active), audit it; returns the schedule id."""
    cron, every = _common_checks(conn, tenant_id, reason=reason, cron=cron, every=every, timezone=timezone,
                                 catch_up=catch_up)
    access.authorize(conn, actor, "schedule", target=f"schedule of {template_key} for {tenant_id}", tenant_id=tenant_id)
    template = _approved_template(conn, template_key, version)
    formats = list(dict.fromkeys(formats)) if formats else list(template.formats)
    unknown = [f for f in formats if f not in template.formats]
    if unknown:
        raise ScheduleError(f"format {', '.join(unknown)} not offered by {template.label} (offers {', '.join(template.formats)})")
    return _insert(conn, {"target_kind": "template", "template_key": template.key, "template_version": template.version,
                          "tenant_id": tenant_id, "cron": cron, "every": every, "timezone": timezone,
                          "formats": formats, "recipients": _recipients(recipients), "allow_overlap": allow_overlap,
                          "catch_up": catch_up, "owner": actor},
                   reason=reason, label=template.label, now=now)


def create_for_definition(
    conn, definition_id: str, *, tenant_id: str, cron: str | None, every: str | None, timezone: str, actor: str,
    reason: str, fmt: str = "csv", recipients: Iterable[str] = (), allow_overlap: bool = False,
    catch_up: str = "skip", now: dt.datetime | None = None, correlation_id: str | None = None,
) -> int:
    """Store a schedule of a report definition (active), audited; the caller has checked the
    definition (services/schedules.py). Returns the schedule id."""
    cron, every = _common_checks(conn, tenant_id, reason=reason, cron=cron, every=every, timezone=timezone,
                                 catch_up=catch_up)
    if fmt not in DEFINITION_FORMATS:
        raise ScheduleError(f"format must be one of {', '.join(DEFINITION_FORMATS)}, not {fmt!r}")
    access.authorize(conn, actor, "schedule", target=f"schedule of {definition_id}", tenant_id=tenant_id,
                     correlation_id=correlation_id)
    return _insert(conn, {"target_kind": "definition", "definition_id": definition_id, "tenant_id": tenant_id,
                          "cron": cron, "every": every, "timezone": timezone, "formats": [fmt],
                          "recipients": _recipients(recipients), "allow_overlap": allow_overlap,
                          "catch_up": catch_up, "owner": actor},
                   reason=reason, label=definition_id, now=now, correlation_id=correlation_id)


def create_for_pipeline(
    conn, pipeline_id: str, *, tenant_id: str, cron: str | None, every: str | None, timezone: str, actor: str,
    reason: str, fmt: str, allow_overlap: bool = False, catch_up: str = "skip", now: dt.datetime | None = None,
    correlation_id: str | None = None,
) -> int:
    """Store a schedule of an export pipeline (active), audited; the caller has checked the
    pipeline (services/pipeline_schedules.py). Its files go to the pipeline's destination, so it
    has no recipients of its own; `fmt` is the pipeline's format, shown with the schedule."""
    cron, every = _common_checks(conn, tenant_id, reason=reason, cron=cron, every=every, timezone=timezone,
                                 catch_up=catch_up)
    access.authorize(conn, actor, "schedule", target=f"schedule of {pipeline_id}", tenant_id=tenant_id,
                     correlation_id=correlation_id)
    return _insert(conn, {"target_kind": "pipeline", "pipeline_id": pipeline_id, "tenant_id": tenant_id,
                          "cron": cron, "every": every, "timezone": timezone, "formats": [fmt], "recipients": [],
                          "allow_overlap": allow_overlap, "catch_up": catch_up, "owner": actor},
                   reason=reason, label=pipeline_id, now=now, correlation_id=correlation_id)


def _common_checks(conn, tenant_id: str, *, reason: str, cron: str | None, every: str | None, timezone: str,
                   catch_up: str) -> tuple[str | None, str | None]:
    if not reason or not reason.strip():
        raise ScheduleError("creating a schedule needs a reason")
    cron, every = timing(cron=cron, every=every, timezone=timezone)
    if catch_up not in CATCH_UP:
        raise ScheduleError(f"catch-up policy must be one of {', '.join(CATCH_UP)}, not {catch_up!r}")
    _check_tenant(conn, tenant_id)
    return cron, every


def _insert(conn, values: dict[str, Any], *, reason: str, label: str, now: dt.datetime | None,
            correlation_id: str | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    values = {**values, "ticks_from": now, "created_at": now, "updated_at": now}
    columns = ", ".join(values)  # names from this module only, never from input
    with conn.cursor() as cur:
        cur.execute(f"insert into control.schedules ({columns}) values ({', '.join(['%s'] * len(values))}) "
                    "returning schedule_id", list(values.values()))
        (schedule_id,) = cur.fetchone()
    shown = {k: values[k] for k in ("cron", "every", "timezone", "formats", "recipients", "allow_overlap", "catch_up")}
    audit.record(conn, actor=values["owner"], action="schedule.create", target=f"schedule {schedule_id}",
                 outcome="succeeded", tenant_id=values["tenant_id"], correlation_id=correlation_id,
                 details={"reason": reason, values["target_kind"]: label, **shown})
    return schedule_id


def get(conn, schedule_id: int) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute("""select s.*, (select max(t.tick_at) from control.schedule_ticks t
                                     where t.schedule_id = s.schedule_id) as last_tick_at
                       from control.schedules s where schedule_id = %s""", (schedule_id,))
        rows = dict_rows(cur)
    if not rows:
        raise ScheduleNotFound(f"no schedule {schedule_id}")
    return rows[0]


def list_schedules(conn, *, tenant_id: str | None = None, states: Iterable[str] | None = None,
                   tenants: Iterable[str] | None = None, after: int | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
    """Schedules by id; `tenants` (None: all) and `after`/`limit` page them for the API."""
    with conn.cursor() as cur:
        cur.execute(
            """select s.*, (select max(t.tick_at) from control.schedule_ticks t
                             where t.schedule_id = s.schedule_id) as last_tick_at
               from control.schedules s
               where (%(tenant)s::text is null or s.tenant_id = %(tenant)s)
                 and (%(tenants)s::text[] is null or s.tenant_id = any(%(tenants)s))
                 and (%(states)s::text[] is null or s.state = any(%(states)s))
                 and (%(after)s::bigint is null or s.schedule_id > %(after)s)
               order by s.schedule_id limit %(limit)s""",
            {"tenant": tenant_id, "states": list(states) if states is not None else None,
             "tenants": list(tenants) if tenants is not None else None, "after": after, "limit": limit},
        )
        return dict_rows(cur)


# state change -> (states it may start from, resulting state)
_TRANSITIONS = {
    "pause": (("active",), "paused"),
    "resume": (("paused",), "active"),
    "archive": (("active", "paused"), "archived"),
}


def _transition(conn, schedule_id: int, change: str, *, actor: str, reason: str,
                now: dt.datetime | None = None, reason_code: str | None = None, reason_text: str | None = None,
                correlation_id: str | None = None) -> dict[str, Any]:
    """`reason` is what the audit log says; with a `reason_code` (the API's fixed list), the
    schedule keeps the code and its `reason_text`, else the reason as its text."""
    if not reason or not reason.strip():
        raise ScheduleError(f"to {change} a schedule needs a reason")
    schedule = get(conn, schedule_id)
    access.authorize(conn, actor, "schedule", target=f"schedule {schedule_id}", tenant_id=schedule["tenant_id"],
                     correlation_id=correlation_id)
    sources, target = _TRANSITIONS[change]
    if schedule["state"] not in sources:
        raise ScheduleStateConflict(f"schedule {schedule_id} is {schedule['state']}: only a schedule that is "
                            f"{' or '.join(sources)} can be {'resumed' if change == 'resume' else change + 'd'}")
    now = now or dt.datetime.now(dt.UTC)
    with conn.cursor() as cur:
        # Resuming evaluates from now on: ticks of the paused stretch are not caught up.
        cur.execute(
            """update control.schedules set state = %(to)s, updated_at = %(now)s,
                   ticks_from = case when %(resume)s then greatest(ticks_from, %(now)s) else ticks_from end,
                   paused_at = case %(change)s when 'pause' then %(now)s when 'resume' then null else paused_at end,
                   archived_at = case when %(change)s = 'archive' then %(now)s else archived_at end,
                   reason_code = case when %(resume)s then reason_code else %(code)s end,
                   reason_text = case when %(resume)s then reason_text else %(reason)s end
               where schedule_id = %(id)s and state = any(%(from)s) returning schedule_id""",
            {"to": target, "now": now, "resume": change == "resume", "change": change, "code": reason_code,
             "reason": reason_text if reason_code else reason, "id": schedule_id, "from": list(sources)},
        )
        if cur.fetchone() is None:
            raise ScheduleStateConflict(f"schedule {schedule_id} changed meanwhile; try again")
    audit.record(conn, actor=actor, action=f"schedule.{change}", target=f"schedule {schedule_id}", outcome="succeeded",
                 tenant_id=schedule["tenant_id"], correlation_id=correlation_id,
                 details={"reason": reason, **({"reason_code": reason_code} if reason_code else {}),
                          "from": schedule["state"], "to": target})
    return get(conn, schedule_id)


def pause(conn, schedule_id: int, *, actor: str, reason: str, now: dt.datetime | None = None,
          **given: Any) -> dict[str, Any]:
    return _transition(conn, schedule_id, "pause", actor=actor, reason=reason, now=now, **given)


def resume(conn, schedule_id: int, *, actor: str, reason: str, now: dt.datetime | None = None,
           **given: Any) -> dict[str, Any]:
    return _transition(conn, schedule_id, "resume", actor=actor, reason=reason, now=now, **given)


def archive(conn, schedule_id: int, *, actor: str, reason: str, now: dt.datetime | None = None,
            **given: Any) -> dict[str, Any]:
    return _transition(conn, schedule_id, "archive", actor=actor, reason=reason, now=now, **given)


def ticks(conn, schedule_id: int) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("select * from control.schedule_ticks where schedule_id = %s order by tick_at", (schedule_id,))
        return dict_rows(cur)



def tenant_of(conn, schedule_id: str) -> str | None:
    """The tenant a schedule vouches for (None: no such schedule)."""
    with conn.cursor() as cur:
        cur.execute("select tenant_id from control.schedules where schedule_id::text = %s", (schedule_id,))
        row = cur.fetchone()
    return row[0] if row else None
