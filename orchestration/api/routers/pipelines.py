"""/pipelines: batch export pipelines, their lifecycle, on-demand runs and the runs of each.

The specification keeps `/exports/pipelines` as a remapped alias of `/pipelines` for backward
compatibility: app.py includes this same router a second time under `/exports`, marked
deprecated in the OpenAPI document, so both paths are the same handlers and the same answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from pydantic import BaseModel, Field

from orchestration.api import versioned_routes as routes
from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.api.problems import RESPONSES
from orchestration.pipelines.models import (
    BatchStatus,
    DeliveryState,
    MemberState,
    PipelineCreate,
    PipelineRun,
    PipelineSpec,
    PipelineStatus,
    PipelineUpdate,
)
from orchestration.services import pipeline_runs
from orchestration.services import pipelines as service

PREFIX = "/pipelines"
ALIAS_PREFIX = "/exports"  # + PREFIX: the deprecated alias (app.py)
router = APIRouter(prefix=PREFIX, tags=["export pipelines"], responses=RESPONSES)


class PipelinePublic(BaseModel):
    pipeline_id: str
    pipeline_name: str
    status: PipelineStatus
    version_id: int = Field(description="the newest version; PATCH makes a new one")
    active_version_id: int | None = Field(description="the version runs use (activated by an approver)")
    pipeline: PipelineSpec
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    activated_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    reason_code: str | None = None
    reason_text: str | None = None


class PipelinePage(BaseModel):
    items: list[PipelinePublic]
    next: str | None = None


class MemberPublic(BaseModel):
    member: str = Field(description="the report definition id or template key")
    run_id: str | None = Field(description="its report run (none when it was refused before it ran)")
    state: MemberState
    error: str | None = None
    delivery: DeliveryState = Field(description="delivered once to the destination, refused, failed, or none yet")
    delivery_detail: dict = {}


class PipelineRunPublic(BaseModel):
    pipeline_run_id: str
    pipeline_id: str
    version_id: int
    status: BatchStatus
    trigger: str
    requested_by: str
    correlation_id: str | None
    created_at: dt.datetime
    settled_at: dt.datetime | None = None
    members: list[MemberPublic]
    failed_members: list[str] = Field(description="members not delivered: their run failed or was refused, or "
                                                  "their delivery was")


class PipelineRunPage(BaseModel):
    items: list[PipelineRunPublic]
    next: str | None = None


def _public(view: service.PipelineView, response: Response | None = None) -> PipelinePublic:
    p, v = view.pipeline, view.version
    routes.tag(response, p.etag)
    return PipelinePublic(
        pipeline_id=p.pipeline_id, pipeline_name=v.spec.pipeline_name, status=p.status, version_id=v.version,
        active_version_id=p.active_version, pipeline=v.spec, created_by=v.created_by, created_at=p.created_at,
        updated_at=p.updated_at, activated_at=p.activated_at, paused_at=p.paused_at, archived_at=p.archived_at,
        reason_code=p.reason_code, reason_text=p.reason_text)


def _run_public(batch: PipelineRun) -> PipelineRunPublic:
    return PipelineRunPublic(
        pipeline_run_id=batch.pipeline_run_id, pipeline_id=batch.pipeline_id, version_id=batch.version,
        status=batch.status, trigger=batch.trigger, requested_by=batch.requester, correlation_id=batch.correlation_id,
        created_at=batch.created_at, settled_at=batch.settled_at,
        members=[MemberPublic(member=m.member, run_id=m.run_id, state=m.state, error=m.error, delivery=m.delivery,
                              delivery_detail=m.delivery_detail) for m in batch.members],
        failed_members=[m.member for m in batch.failed])


@router.get("", response_model=PipelinePage, summary="Pipelines of the caller's tenants")
def list_pipelines(
    request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
    status_: Annotated[PipelineStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 50,
) -> PipelinePage:
    views, next_cursor = service.list_pipelines(conn, caller, status=status_, cursor=cursor, limit=limit)
    routes.next_link(request, response, next_cursor)
    return PipelinePage(items=[_public(v) for v in views], next=next_cursor)


# save, show, change (If-Match), activate and stop: the endpoints every versioned resource has
RESOURCE = routes.Resource(router, "pipeline_id", _public, PipelinePublic)
routes.add_create_route(RESOURCE, PipelineCreate, service.create_pipeline, name="create_pipeline",
                        summary="Create a pipeline (draft v1): members, one destination, a format")
routes.add_get_route(RESOURCE, service.get_pipeline, name="get_pipeline",
                     summary="One pipeline (newest or a given version)")
routes.add_update_route(RESOURCE, PipelineUpdate, service.update_pipeline, name="update_pipeline")
routes.add_lifecycle_routes(
    RESOURCE, activate=service.activate_pipeline, stop=service.stop_pipeline,
    activate_summary="Activate the newest version, or resume a paused pipeline (an approver, a second person)",
    stops=(routes.StopRoute("pause", "paused", "Pause, with a reason"), routes.ARCHIVE))


@router.post("/{pipeline_id}/run", response_model=PipelineRunPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Run every member as one batch, delivered once (Idempotency-Key: the same key, the same batch)")
def run(pipeline_id: str, request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
        rid: RequestId,
        body: Annotated[pipeline_runs.PipelineRunOrder, Body()] = pipeline_runs.PipelineRunOrder(),
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> PipelineRunPublic:
    batch, _ = pipeline_runs.run_pipeline(conn, caller, pipeline_id, body, idempotency_key=idempotency_key,
                                          correlation_id=rid, launch=request.app.state.launch)
    response.headers["Location"] = f"{PREFIX}/{pipeline_id}/runs/{batch.pipeline_run_id}"
    return _run_public(batch)


@router.get("/{pipeline_id}/runs", response_model=PipelineRunPage, summary="The pipeline's batches, newest first")
def list_runs(pipeline_id: str, request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
              cursor: Annotated[str | None, Query(max_length=64)] = None,
              limit: Annotated[int, Query(ge=1, le=pipeline_runs.PAGE_MAX)] = 20) -> PipelineRunPage:
    batches, next_cursor = pipeline_runs.list_pipeline_runs(conn, caller, pipeline_id, cursor=cursor, limit=limit)
    routes.next_link(request, response, next_cursor)
    return PipelineRunPage(items=[_run_public(b) for b in batches], next=next_cursor)


@router.get("/{pipeline_id}/runs/{pipeline_run_id}", response_model=PipelineRunPublic,
            summary="One batch: each member's run, its delivery, and the members that failed")
def get_run(pipeline_id: str, pipeline_run_id: str, conn: Conn, caller: CurrentPrincipal) -> PipelineRunPublic:
    return _run_public(pipeline_runs.get_pipeline_run(conn, caller, pipeline_id, pipeline_run_id))
