"""/reports/schedules: scheduled runs of report definitions and scheduled batches of export
pipelines (a cron in a time zone, or an ISO-8601 interval), their pause, resume and archive;
template schedules of the caller's tenants are listed too (one schedule model).

A pipeline is scheduled here, with `pipeline_id` instead of `report_definition_id`: one schedule
model, one lifecycle (pause, resume, archive) whatever it runs. A pipeline's files go to its own
destination in its own format, so its schedule takes neither `format` nor `recipients`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.api.problems import RESPONSES
from orchestration.governance.versioned import ReasonCode, Retirement
from orchestration.services import schedules as service

router = APIRouter(prefix="/reports/schedules", tags=["scheduled reports"], responses=RESPONSES)
ScheduleStatus = Literal["active", "paused", "archived"]
RESUMED = "resumed through the Reporting API"


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    report_definition_id: str | None = Field(default=None, min_length=1, max_length=64,
                                             description="an active definition (rdef_...)")
    pipeline_id: str | None = Field(default=None, min_length=1, max_length=64,
                                    description="an active export pipeline (pipe_...), instead of a definition")
    schedule: str = Field(min_length=1, max_length=120,
                          description="a 5-field cron expression ('0 6 * * 1') or an ISO-8601 interval ('PT6H')")
    timezone: str = Field(default="UTC", min_length=1, max_length=64,
                          description="IANA time zone the cron expression is read in")
    format: Literal["csv", "xlsx"] | None = Field(default=None, description="a definition's format (default csv)")
    recipients: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=50,
        description="kind:address, e.g. email:ciso@acme.example, webhook:https://..., bucket:s3://bucket/prefix/")

    @model_validator(mode="after")
    def _one_target(self) -> ScheduleCreate:
        if (self.report_definition_id is None) == (self.pipeline_id is None):
            raise ValueError("give exactly one of report_definition_id and pipeline_id")
        if self.pipeline_id is not None and (self.format is not None or self.recipients):
            raise ValueError("a pipeline schedule delivers to the pipeline's destination in its format: "
                             "leave out format and recipients")
        return self


class SchedulePause(Retirement):
    """Why the schedule is paused (reason_text required for OTHER)."""


class SchedulePublic(BaseModel):
    schedule_id: int
    report_definition_id: str | None = Field(description="the definition it runs (null for a template or pipeline schedule)")
    pipeline_id: str | None = Field(default=None, description="the export pipeline it runs (null unless a pipeline schedule)")
    template_key: str | None = None
    template_version: int | None = None
    tenant_id: str
    schedule: str
    timezone: str
    format: str
    recipients: list[str]
    status: ScheduleStatus
    next_run_at: dt.datetime | None = Field(description="the next tick (null unless active)")
    last_tick_at: dt.datetime | None = None
    created_by: str
    created_at: dt.datetime
    paused_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    reason_code: ReasonCode | None = None
    reason_text: str | None = None


class SchedulePage(BaseModel):
    items: list[SchedulePublic]
    next: str | None = None


def _public(s: service.Schedule) -> SchedulePublic:
    return SchedulePublic(
        schedule_id=s.schedule_id, report_definition_id=s.definition_id, pipeline_id=s.pipeline_id,
        template_key=s.template_key,
        template_version=s.template_version, tenant_id=s.tenant_id, schedule=s.expression, timezone=s.timezone,
        format=",".join(s.formats), recipients=list(s.recipients), status=s.state, next_run_at=s.next_run_at,
        last_tick_at=s.last_tick_at, created_by=s.owner, created_at=s.created_at, paused_at=s.paused_at,
        archived_at=s.archived_at, reason_code=s.reason_code if s.state != "active" else None,
        reason_text=s.reason_text if s.state != "active" else None)


def _now(request: Request) -> dt.datetime:
    return request.app.state.clock()


@router.get("", response_model=SchedulePage, summary="Schedules of the caller's tenants")
def list_schedules(
    request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
    status_: Annotated[ScheduleStatus | None, Query(alias="status")] = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 50,
) -> SchedulePage:
    items, next_cursor = service.list_for(conn, caller, status=status_, cursor=cursor, limit=limit, now=_now(request))
    if next_cursor is not None:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return SchedulePage(items=[_public(s) for s in items], next=str(next_cursor) if next_cursor is not None else None)


@router.post("", response_model=SchedulePublic, status_code=status.HTTP_201_CREATED,
             summary="Schedule a definition's active version, or an export pipeline's batches (owned by the caller)")
def create_schedule(body: ScheduleCreate, request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
                    rid: RequestId) -> SchedulePublic:
    reason = f"scheduled through the Reporting API (request {rid})"
    if body.pipeline_id is not None:
        created = service.create_for_pipeline(
            conn, caller, service.NewPipelineSchedule(pipeline_id=body.pipeline_id, schedule=body.schedule,
                                                      timezone=body.timezone, reason=reason),
            correlation_id=rid, now=_now(request))
    else:
        new = service.NewDefinitionSchedule(definition_id=body.report_definition_id, schedule=body.schedule,
                                            timezone=body.timezone, fmt=body.format or "csv",
                                            recipients=tuple(body.recipients), reason=reason)
        created = service.create_for_definition(conn, caller, new, correlation_id=rid, now=_now(request))
    response.headers["Location"] = f"{router.prefix}/{created.schedule_id}"
    return _public(created)


@router.get("/{schedule_id}", response_model=SchedulePublic, summary="One schedule")
def get_schedule(schedule_id: int, request: Request, conn: Conn, caller: CurrentPrincipal) -> SchedulePublic:
    return _public(service.get_schedule(conn, caller, schedule_id, now=_now(request)))


@router.post("/{schedule_id}/pause", response_model=SchedulePublic, summary="Pause, with a reason")
def pause(schedule_id: int, body: SchedulePause, request: Request, conn: Conn, caller: CurrentPrincipal,
          rid: RequestId) -> SchedulePublic:
    return _public(service.change(conn, schedule_id, "pause", actor=caller.principal.principal_id,
                                  reason=body.logged(), reason_code=body.reason_code,
                                  reason_text=body.reason_text,
                                  caller=caller, correlation_id=rid, now=_now(request)))


@router.post("/{schedule_id}/resume", response_model=SchedulePublic,
             summary="Resume from now on (ticks of the paused stretch are not caught up)")
def resume(schedule_id: int, request: Request, conn: Conn, caller: CurrentPrincipal, rid: RequestId) -> SchedulePublic:
    return _public(service.change(conn, schedule_id, "resume", actor=caller.principal.principal_id, reason=RESUMED,
                                  caller=caller, correlation_id=rid, now=_now(request)))


@router.post("/{schedule_id}/archive", response_model=SchedulePublic, summary="Archive, with a reason (final)")
def archive(schedule_id: int, body: Retirement, request: Request, conn: Conn, caller: CurrentPrincipal,
            rid: RequestId) -> SchedulePublic:
    return _public(service.change(conn, schedule_id, "archive", actor=caller.principal.principal_id,
                                  reason=body.logged(), reason_code=body.reason_code,
                                  reason_text=body.reason_text,
                                  caller=caller, correlation_id=rid, now=_now(request)))
