"""Runtime schedule use cases: create (of a template, a report definition or an export pipeline),
list, show, pause, resume, archive, evaluate. Typed in and out; the CLI, the API and the Dagster sensor call these.

The schedule store (schedules/store.py) validates, authorizes and audits each change in the
transaction these functions own; a definition or pipeline target is checked here first
(services/definition_schedules.py, services/pipeline_schedules.py), and re-validated at every tick.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from orchestration.access import tenants
from orchestration.access.tokens import Authenticated
from orchestration.db.rows import from_row
from orchestration.delivery.recipients import Recipient, RecipientError
from orchestration.errors import Invalid, ServiceError
from orchestration.runs import worker
from orchestration.schedules import evaluation, store
from orchestration.schedules.evaluation import (
    ON_TIME,
    ActiveRunLookup,
    DefinitionTick,
    Evaluation,
    PeriodFor,
    PipelineTick,
)
from orchestration.schedules.timing import ScheduleNotFound
from orchestration.services import definition_checks as checks
from orchestration.services import definition_schedules, pipeline_schedules

PAGE_MAX = 200


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Schedule:
    schedule_id: int
    target_kind: str  # template, definition or pipeline
    template_key: str | None
    template_version: int | None
    definition_id: str | None
    tenant_id: str
    cron: str | None
    every: str | None  # an ISO-8601 interval, instead of a cron
    timezone: str
    state: str
    catch_up: str
    formats: tuple[str, ...]
    recipients: tuple[str, ...]
    allow_overlap: bool
    owner: str
    created_at: dt.datetime
    last_tick_at: dt.datetime | None = None
    next_run_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    pipeline_id: str | None = None

    @property
    def label(self) -> str:
        if self.target_kind == "pipeline":
            return self.pipeline_id
        return self.definition_id if self.target_kind == "definition" else f"{self.template_key} v{self.template_version}"

    @property
    def expression(self) -> str:
        return self.every or self.cron

    @classmethod
    def of(cls, row: dict[str, Any], now: dt.datetime | None = None) -> Schedule:
        return from_row(cls, row, formats=tuple(row["formats"] or ()), recipients=tuple(row["recipients"] or ()),
                        next_run_at=store.next_run_at(row, now or _utcnow()))


@dataclass(frozen=True)
class NewSchedule:
    template_key: str
    tenant_id: str
    cron: str | None
    timezone: str
    actor: str
    reason: str
    version: int | None = None
    formats: tuple[str, ...] = ()  # empty: all the template offers
    recipients: tuple[str, ...] = ()
    allow_overlap: bool = False
    catch_up: str = "skip"
    every: str | None = None  # an ISO-8601 interval, instead of the cron


@dataclass(frozen=True)
class NewDefinitionSchedule:
    definition_id: str
    schedule: str  # a cron expression, or an ISO-8601 interval such as PT6H
    timezone: str = "UTC"
    fmt: str = "csv"
    recipients: tuple[str, ...] = ()
    reason: str = "scheduled report"
    allow_overlap: bool = False
    catch_up: str = "skip"


@dataclass(frozen=True)
class NewPipelineSchedule:
    """A pipeline's schedule: its files go to the pipeline's destination, in its format."""

    pipeline_id: str
    schedule: str  # a cron expression, or an ISO-8601 interval such as PT6H
    timezone: str = "UTC"
    reason: str = "scheduled export pipeline"
    allow_overlap: bool = False
    catch_up: str = "skip"


def _parsed_recipients(recipients: Iterable[str]) -> tuple[str, ...]:
    """Each recipient in delivery's form (kind:address[;options]), checked before it is stored."""
    for r in recipients:
        try:
            Recipient.parse(r)
        except RecipientError as exc:
            raise Invalid(f"recipients: {r!r}: {exc}") from None
    return tuple(recipients)


def create(conn, new: NewSchedule) -> Schedule:
    recipients = _parsed_recipients(new.recipients)
    with conn:
        schedule_id = store.create(
            conn, new.template_key, tenant_id=new.tenant_id, cron=new.cron, every=new.every, timezone=new.timezone,
            version=new.version, formats=list(new.formats) or None, recipients=recipients,
            allow_overlap=new.allow_overlap, catch_up=new.catch_up, actor=new.actor, reason=new.reason)
        return Schedule.of(store.get(conn, schedule_id))


def create_for_definition(conn, caller: Authenticated, new: NewDefinitionSchedule, *,
                          correlation_id: str | None = None, now: dt.datetime | None = None) -> Schedule:
    """Schedule a definition's active version for its tenant, owned by the caller."""
    now = now or _utcnow()
    recipients = _parsed_recipients(new.recipients)
    cron, every = store.timing(new.schedule, timezone=new.timezone)
    definition = definition_schedules.check_target(conn, caller, new.definition_id, correlation_id)
    with conn:
        schedule_id = store.create_for_definition(
            conn, definition.definition_id, tenant_id=definition.tenant_id, cron=cron, every=every,
            timezone=new.timezone, actor=checks.who(caller), reason=new.reason, fmt=new.fmt, recipients=recipients,
            allow_overlap=new.allow_overlap, catch_up=new.catch_up, now=now, correlation_id=correlation_id)
        return Schedule.of(store.get(conn, schedule_id), now)


def create_for_pipeline(conn, caller: Authenticated, new: NewPipelineSchedule, *,
                        correlation_id: str | None = None, now: dt.datetime | None = None) -> Schedule:
    """Schedule batches of an active pipeline for its tenant, owned by the caller."""
    now = now or _utcnow()
    cron, every = store.timing(new.schedule, timezone=new.timezone)
    pipeline, fmt = pipeline_schedules.check_target(conn, caller, new.pipeline_id, correlation_id)
    with conn:
        schedule_id = store.create_for_pipeline(
            conn, pipeline.pipeline_id, tenant_id=pipeline.tenant_id, cron=cron, every=every, timezone=new.timezone,
            actor=checks.who(caller), reason=new.reason, fmt=fmt, allow_overlap=new.allow_overlap,
            catch_up=new.catch_up, now=now, correlation_id=correlation_id)
        return Schedule.of(store.get(conn, schedule_id), now)


def list_schedules(conn, *, tenant_id: str | None = None, states: Iterable[str] | None = None) -> list[Schedule]:
    with conn:
        return [Schedule.of(r) for r in store.list_schedules(conn, tenant_id=tenant_id, states=states)]


def list_for(conn, caller: Authenticated, *, status: str | None = None, cursor: int | None = None, limit: int = 50,
             now: dt.datetime | None = None) -> tuple[list[Schedule], int | None]:
    """The schedules of the caller's tenants, by id, one page; the cursor of the next page."""
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {PAGE_MAX}")
    principal = caller.principal
    tenant_ids = None if "*" in principal.tenants else sorted(principal.tenants)
    with conn:
        rows = store.list_schedules(conn, tenants=tenant_ids, states=[status] if status else None, after=cursor,
                                    limit=limit + 1)
    page = [Schedule.of(r, now) for r in rows[:limit]]
    return page, (page[-1].schedule_id if len(rows) > limit else None)


def get_schedule(conn, caller: Authenticated, schedule_id: int, *, now: dt.datetime | None = None) -> Schedule:
    """One schedule of the caller's tenants; another tenant's is NotFound, as is none."""
    with conn:
        row = store.get(conn, schedule_id)
    if not caller.principal.member_of(row["tenant_id"]):
        raise ScheduleNotFound(f"no schedule {schedule_id}")
    return Schedule.of(row, now)


def change(conn, schedule_id: int, change: str, *, actor: str, reason: str, reason_code: str | None = None,
           reason_text: str | None = None, caller: Authenticated | None = None, correlation_id: str | None = None,
           now: dt.datetime | None = None) -> Schedule:
    """pause, resume or archive. With `caller` (the API): another tenant's schedule is NotFound,
    and the token must be scoped for `schedule`."""
    if change not in ("pause", "resume", "archive"):
        raise ValueError(f"unknown schedule change {change!r}")
    if caller is not None:
        tenant = get_schedule(conn, caller, schedule_id).tenant_id
        checks.authorize(conn, caller, "schedule", tenant, f"schedule {schedule_id}", correlation_id)
    with conn:
        row = getattr(store, change)(conn, schedule_id, actor=actor, reason=reason, now=now, reason_code=reason_code,
                                     reason_text=reason_text, correlation_id=correlation_id)
        return Schedule.of(row, now)


def _submit(conn, schedule: dict[str, Any], tick: DefinitionTick | PipelineTick, launch: Callable[[str], object],
            into: Evaluation) -> None:
    """A definition tick's run, or a pipeline tick's batch, submitted now; a refusal turns the tick
    into a refused one (audited)."""
    is_pipeline = isinstance(tick, PipelineTick)
    try:
        submitted = (pipeline_schedules.submit(conn, tick, launch=launch) if is_pipeline
                     else definition_schedules.submit(conn, tick, launch=launch))
    except ServiceError as exc:
        with conn:
            evaluation.record_refusal(conn, schedule, tick.tick_at, f"submission refused: {exc}", replace=True)
        return
    with conn:
        note = evaluation.note_batch if is_pipeline else evaluation.note_run
        note(conn, tick.schedule_id, tick.tick_at, submitted)
    into.submitted[tick.run_key] = submitted


def _target_refusal(conn, schedule: dict[str, Any]) -> str | None:
    """The service layer's re-validation of a definition or pipeline target at a tick."""
    if schedule.get("target_kind") == "pipeline":
        return pipeline_schedules.tick_refusal(conn, schedule)
    return definition_schedules.tick_refusal(conn, schedule)


def evaluate(conn, now: dt.datetime, active_run_lookup: ActiveRunLookup, *,
             period_for: PeriodFor | None = None, on_time: dt.timedelta = ON_TIME,
             launch: Callable[[str], object] = worker.launch_scheduled) -> Evaluation:
    """Record every due tick of every active schedule, and say which template runs to request:
    one transaction per schedule, so a tick recorded is committed with its audit row before the
    next schedule is looked at (the Dagster sensor calls this every 30 s). A definition tick is
    submitted here, after its tick is committed, and `launch` starts it (as the API does); a
    pipeline tick starts its batch here the same way."""
    now = now.astimezone(dt.UTC)
    result = Evaluation()
    with conn:
        known_tenants = tenants.list_tenant_ids(conn)
        schedules = store.list_schedules(conn, states=["active"])
    options = {"on_time": on_time, "target_refusal": _target_refusal} | (
        {"period_for": period_for} if period_for else {})
    for schedule in schedules:
        seen = len(result.definition_ticks), len(result.pipeline_ticks)
        with conn:
            evaluation.evaluate_schedule(conn, schedule, now, active_run_lookup, known_tenants, result, **options)
        for tick in [*result.definition_ticks[seen[0]:], *result.pipeline_ticks[seen[1]:]]:
            _submit(conn, schedule, tick, launch, result)
    with conn:
        lost = evaluation.unsubmitted_pipeline_ticks(conn)
    for tick in lost:  # recorded by an evaluation that died before it started the batch
        with conn:
            schedule = store.get(conn, tick.schedule_id)
        _submit(conn, schedule, tick, launch, result)
    return result
