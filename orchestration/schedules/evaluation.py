"""Evaluating runtime schedules: the clock turned into recorded ticks and run requests.

`evaluate_schedule` turns the clock into ticks (services/schedules.evaluate runs it for every
active schedule, one transaction each): every tick is recorded once in
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
  run on a schedule; for a definition schedule, what services/schedules.py checks of the
  definition (active version, fields still allowed for the owner); for a pipeline schedule, that
  the pipeline is still active in the tenant and its owner may still run reports there.
  Otherwise the tick is refused, recorded and audited, and nothing runs.
- A template tick becomes a run request for the template's partitioned job (the sensor hands it
  to Dagster); a definition tick becomes a `DefinitionTick` that services/schedules.py submits
  as a definition run, as the schedule's owner, exactly as the API does; a pipeline tick becomes
  a `PipelineTick`, one batch of the pipeline started under the tick's run key as its
  idempotency key (so even a repeated submission of the tick starts one batch).
- Ticks while a schedule is paused are never run, not even after resume; archived is final.
- The period a tick runs is the last complete period of the template's cadence as of the tick,
  in the partitions' time zone (UTC); the tick instant is in the run's tags (nexus/tick_at),
  so its schedule lag is the run's start minus that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestration.access import audit
from orchestration.access import policy as access
from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import Template, TemplateError
from orchestration.db.warehouse import dict_rows
from orchestration.governance import lifecycle as governance
from orchestration.runs import records, run_tags
from orchestration.schedules.timing import (
    MAX_TICKS_PER_EVALUATION,
    due_ticks,
    interval_ticks,
    last_complete_period,
    run_key,
    tick_iso,
)

ON_TIME = dt.timedelta(minutes=2)
# Targets the service layer submits itself at a tick (a template tick is a Dagster run request).
SUBMITTED_KINDS = ("definition", "pipeline")
ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


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


@dataclass(frozen=True)
class DefinitionTick:
    """One definition run to submit for a recorded tick (services/schedules.py submits it)."""

    schedule_id: int
    tick_at: dt.datetime
    definition_id: str
    tenant_id: str
    owner: str
    fmt: str
    run_key: str


@dataclass(frozen=True)
class PipelineTick:
    """One batch of an export pipeline to start for a recorded tick (services/schedules.py starts it)."""

    schedule_id: int
    tick_at: dt.datetime
    pipeline_id: str
    tenant_id: str
    owner: str
    run_key: str


@dataclass
class Evaluation:
    requests: list[TickRequest] = field(default_factory=list)
    recorded: list[TickRecord] = field(default_factory=list)
    definition_ticks: list[DefinitionTick] = field(default_factory=list)
    pipeline_ticks: list[PipelineTick] = field(default_factory=list)
    submitted: dict[str, str] = field(default_factory=dict)  # run key -> definition run id or pipeline run id


ActiveRunLookup = Callable[[int], bool]
PeriodFor = Callable[[Template, dt.datetime], str]
# Why a definition or pipeline schedule's target no longer runs (None: it does); services/schedules.py
# supplies it, since only the service layer may re-validate a definition or a pipeline for its owner.
TargetRefusal = Callable[[object, dict[str, Any]], "str | None"]


def _target_label(schedule: dict[str, Any]) -> str:
    if schedule.get("target_kind") == "pipeline":
        return f"pipeline {schedule['pipeline_id']}"
    if schedule.get("target_kind") == "definition":
        return f"report definition {schedule['definition_id']}"
    return f"template {schedule['template_key']} v{schedule['template_version']}"


def _default_period(template: Template, tick_at: dt.datetime) -> str:
    return last_complete_period(template.cadence, tick_at)


def tick_refusal(conn, schedule: dict[str, Any], known_tenants: Iterable[str],
                 target_refusal: TargetRefusal | None = None) -> str | None:
    """Why the schedule's tenant context no longer holds (None: it does)."""
    tenant = schedule["tenant_id"]
    if tenant not in set(known_tenants):
        return f"tenant {tenant} no longer exists"
    reason = access.decide(access.get_principal(conn, schedule["owner"]), "schedule", tenant_id=tenant)
    if reason:
        return f"schedule owner {schedule['owner']}: {reason}"
    if schedule.get("target_kind") in SUBMITTED_KINDS:
        if target_refusal is None:
            return f"no check of {_target_label(schedule)} was given: refused (fail closed)"
        return target_refusal(conn, schedule)
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


def _due(conn, schedule: dict[str, Any], now: dt.datetime, limit: int) -> list[dt.datetime]:
    after = _start_after(conn, schedule)
    if schedule.get("every"):
        return interval_ticks(schedule["every"], schedule["created_at"], after, now, limit=limit)
    return due_ticks(schedule["cron"], schedule["timezone"], after, now, limit=limit)


def record_refusal(conn, schedule: dict[str, Any], tick_at: dt.datetime, reason: str, *, replace: bool = False) -> bool:
    """A refused tick, recorded and audited; `replace`: a tick recorded as requested whose
    submission was refused afterwards (the run never started)."""
    sid = schedule["schedule_id"]
    if replace:
        with conn.cursor() as cur:
            cur.execute("""update control.schedule_ticks set outcome = 'refused', reason = %s, run_key = null
                           where schedule_id = %s and tick_at = %s and outcome = 'requested' and run_id is null
                           returning 1""", (reason, sid, tick_at))
            recorded = cur.fetchone() is not None
    else:
        recorded = _record(conn, sid, tick_at, "refused", reason)
    if recorded:
        audit.record(conn, actor=access.SCHEDULER, action="schedule.tick_refused", target=f"schedule {sid}",
                     outcome="denied", tenant_id=schedule["tenant_id"],
                     details={"tick_at": tick_iso(tick_at), "reason": reason,
                              **{k: schedule[k] for k in ("definition_id", "pipeline_id") if schedule.get(k)}})
    return recorded


def note_run(conn, schedule_id: int, tick_at: dt.datetime, run_id: str) -> None:
    """The definition run a requested tick submitted."""
    with conn.cursor() as cur:
        cur.execute("update control.schedule_ticks set run_id = %s where schedule_id = %s and tick_at = %s",
                    (run_id, schedule_id, tick_at))


def note_batch(conn, schedule_id: int, tick_at: dt.datetime, pipeline_run_id: str) -> None:
    """The pipeline batch a requested tick started."""
    with conn.cursor() as cur:
        cur.execute("update control.schedule_ticks set pipeline_run_id = %s where schedule_id = %s and tick_at = %s",
                    (pipeline_run_id, schedule_id, tick_at))


def batch_running(conn, schedule_id: int) -> bool:
    """A batch a tick of this pipeline schedule started is still running (its overlap rule)."""
    with conn.cursor() as cur:
        cur.execute("""select 1 from control.schedule_ticks t join control.pipeline_runs r using (pipeline_run_id)
                        where t.schedule_id = %s and r.status = 'running' limit 1""", (schedule_id,))
        return cur.fetchone() is not None


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
                 and s.target_kind = 'template'
               order by t.schedule_id, t.tick_at""",
            (within,),
        )
        rows = dict_rows(cur)
    return [_tick_request(r, r["tick_at"].astimezone(dt.UTC), r["partition_key"]) for r in rows]


def _definition_tick(schedule: dict[str, Any], tick_at: dt.datetime) -> DefinitionTick:
    sid = schedule["schedule_id"]
    return DefinitionTick(schedule_id=sid, tick_at=tick_at, definition_id=schedule["definition_id"],
                          tenant_id=schedule["tenant_id"], owner=schedule["owner"], fmt=schedule["formats"][0],
                          run_key=run_key(sid, tick_at))


def unsubmitted_pipeline_ticks(conn, within: dt.timedelta = dt.timedelta(minutes=10),
                               settle: dt.timedelta = dt.timedelta(minutes=1)) -> list[PipelineTick]:
    """Pipeline ticks recorded as requested whose batch was never started (the evaluating process
    died in between), recorded more than `settle` and less than `within` ago: to submit again.
    Safe even while another evaluation is still submitting one: the tick's run key is the
    batch's Idempotency-Key, so both find the same batch."""
    with conn.cursor() as cur:
        cur.execute(
            """select t.tick_at, s.* from control.schedule_ticks t join control.schedules s using (schedule_id)
               where t.outcome = 'requested' and t.pipeline_run_id is null and s.target_kind = 'pipeline'
                 and s.state = 'active' and t.created_at between now() - %s and now() - %s
               order by t.schedule_id, t.tick_at""",
            (within, settle),
        )
        rows = dict_rows(cur)
    return [_pipeline_tick(r, r["tick_at"].astimezone(dt.UTC)) for r in rows]


def _pipeline_tick(schedule: dict[str, Any], tick_at: dt.datetime) -> PipelineTick:
    sid = schedule["schedule_id"]
    return PipelineTick(schedule_id=sid, tick_at=tick_at, pipeline_id=schedule["pipeline_id"],
                        tenant_id=schedule["tenant_id"], owner=schedule["owner"], run_key=run_key(sid, tick_at))


def _active(conn, schedule: dict[str, Any], active_run_lookup: ActiveRunLookup) -> bool | None:
    """A run (or batch) of this schedule still going, as Dagster sees it or as its record says (a
    definition run is recorded when it is submitted, before Dagster knows it); None: overlap allowed."""
    sid = schedule["schedule_id"]
    if schedule["allow_overlap"]:
        return None
    if schedule.get("target_kind") == "pipeline":
        return batch_running(conn, sid)
    return active_run_lookup(sid) or records.active_run_of_schedule(conn, str(sid)) is not None


def evaluate_schedule(conn, schedule: dict[str, Any], now: dt.datetime, active_run_lookup: ActiveRunLookup,
                      known_tenants: Iterable[str], into: Evaluation, *, period_for: PeriodFor = _default_period,
                      on_time: dt.timedelta = ON_TIME, target_refusal: TargetRefusal | None = None) -> None:
    """Record every due tick of one active schedule (in the caller's transaction) and add the runs
    to request (template) or submit (definition, pipeline) to `into`.

    Safe to call repeatedly and concurrently: a tick already recorded is neither recorded nor
    requested again.
    """
    sid = schedule["schedule_id"]
    due = _due(conn, schedule, now, MAX_TICKS_PER_EVALUATION + 1)
    truncated = len(due) > MAX_TICKS_PER_EVALUATION
    due = due[:MAX_TICKS_PER_EVALUATION]
    if not due:
        return
    refusal = tick_refusal(conn, schedule, known_tenants, target_refusal)
    active = _active(conn, schedule, active_run_lookup)
    kind = schedule.get("target_kind", "template")
    template = None
    if refusal is None and kind == "template":
        template = catalog.load(schedule["template_key"], schedule["template_version"])
    for tick_at, skip_reason in _classify(schedule, due, now, truncated, on_time):
        if skip_reason:
            outcome, reason = "skipped_catch_up", skip_reason
        elif refusal:
            outcome, reason = "refused", refusal
        elif active:
            outcome, reason = "skipped_overlap", "a run of this schedule is still active"
        else:
            outcome, reason = "requested", None
        if outcome == "refused":
            if record_refusal(conn, schedule, tick_at, reason):
                into.recorded.append(TickRecord(sid, tick_at, outcome, reason))
            continue
        if outcome != "requested":
            if _record(conn, sid, tick_at, outcome, reason):
                into.recorded.append(TickRecord(sid, tick_at, outcome, reason))
            continue
        period = None if kind != "template" else period_for(template, tick_at)
        key = run_key(sid, tick_at)
        if not _record(conn, sid, tick_at, "requested", None, key, period):
            continue  # another evaluation got there first
        into.recorded.append(TickRecord(sid, tick_at, "requested"))
        if kind == "definition":
            into.definition_ticks.append(_definition_tick(schedule, tick_at))
        elif kind == "pipeline":
            into.pipeline_ticks.append(_pipeline_tick(schedule, tick_at))
        else:
            into.requests.append(_tick_request(schedule, tick_at, period))
        # The run just requested is active from now on: a later tick in this batch overlaps it.
        if not schedule["allow_overlap"]:
            active = True
