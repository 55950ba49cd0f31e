"""The schedule store: report schedules defined at runtime, in control.schedules, and their lifecycle.

Each schedule runs one approved template version for one tenant on a cron expression in an
IANA time zone. Creating one checks everything a tick will need (tenant, the owner's right to
schedule, the template's approval, the formats); pause, resume and archive are audited state
changes with a reason. Ticks while a schedule is paused are never run, not even after resume;
archived is final. Evaluation of the ticks is in schedules/evaluation.py.

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
from orchestration.schedules.timing import ScheduleError, validate_cron, validate_timezone

STATES = ("active", "paused", "archived")
CATCH_UP = ("skip", "latest")


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


def _transition(conn, schedule_id: int, change: str, *, actor: str, reason: str,
                now: dt.datetime | None = None) -> dict[str, Any]:
    if not reason or not reason.strip():
        raise ScheduleError(f"to {change} a schedule needs a reason")
    schedule = get(conn, schedule_id)
    access.authorize(conn, actor, "schedule", target=f"schedule {schedule_id}", tenant_id=schedule["tenant_id"])
    sources, target = _TRANSITIONS[change]
    if schedule["state"] not in sources:
        raise ScheduleError(f"schedule {schedule_id} is {schedule['state']}: only a schedule that is "
                            f"{' or '.join(sources)} can be {'resumed' if change == 'resume' else change + 'd'}")
    now = now or dt.datetime.now(dt.UTC)
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



def tenant_of(conn, schedule_id: str) -> str | None:
    """The tenant a schedule vouches for (None: no such schedule)."""
    with conn.cursor() as cur:
        cur.execute("select tenant_id from control.schedules where schedule_id::text = %s", (schedule_id,))
        row = cur.fetchone()
    return row[0] if row else None
