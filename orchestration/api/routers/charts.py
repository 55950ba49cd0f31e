"""/charts/definitions: versioned chart definitions over report definitions or templates, their
lifecycle, validation (drift) and render (JSON with the SVG, or the SVG itself)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response
from pydantic import BaseModel, Field

from orchestration.api import versioned_routes as routes
from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.api.problems import RESPONSES
from orchestration.catalog.chart_definitions import ChartCreate, ChartSpec, ChartUpdate
from orchestration.catalog.definitions import RunParameters
from orchestration.exports import charts
from orchestration.governance.versioned import Status
from orchestration.services import charts as service
from orchestration.services.definition_runs import ConsentOverride

router = APIRouter(prefix="/charts/definitions", tags=["chart definitions"], responses=RESPONSES)
SVG = "image/svg+xml"
PNG = "image/png"


class ChartPublic(BaseModel):
    chart_id: str
    chart_name: str
    status: Literal["draft", "active", "deprecated", "archived", "drift"] = Field(
        description="drift: active, but its source changed since it was validated (drift_reason says how)")
    lifecycle_status: Status
    drift_reason: str | None
    version_id: int = Field(description="the newest version; PATCH (or validate after drift) makes a new one")
    active_version_id: int | None = Field(description="the version renders use (activated by an approver)")
    source_version: int = Field(description="the source's version this chart version was validated against")
    definition: ChartSpec
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    activated_at: dt.datetime | None = None
    deprecated_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    reason_code: str | None = None
    reason_text: str | None = None


class ChartPage(BaseModel):
    items: list[ChartPublic]
    next: str | None = None


class ChartValidationPublic(BaseModel):
    validation_status: str = Field(description="valid or invalid")
    errors: list[str]
    chart: ChartPublic


class RenderRequest(BaseModel):
    parameters: RunParameters = RunParameters()
    include_withdrawn: ConsentOverride | None = Field(
        default=None, description="root only: include consent-withdrawn subjects, for a logged reason")


class SeriesPublic(BaseModel):
    name: str
    values: list[float | int | None]


class ChartDataPublic(BaseModel):
    x_axis: str
    categories: list[Any]
    series: list[SeriesPublic]


class RenderPublic(BaseModel):
    chart_id: str
    version_id: int
    chart_type: str
    chart_data: ChartDataPublic
    row_count: int = Field(description="source rows the numbers total")
    generated_at: dt.datetime
    svg: str = Field(description="the chart drawn as the PDF reports draw theirs")


def _public(view: service.ChartView, response: Response | None = None) -> ChartPublic:
    c, v = view.chart, view.version
    routes.tag(response, c.etag)
    drifted = view.drift is not None and c.status in ("active", "deprecated")
    return ChartPublic(
        chart_id=c.chart_id, chart_name=v.spec.chart_name, status="drift" if drifted else c.status,
        lifecycle_status=c.status, drift_reason=view.drift, version_id=v.version, active_version_id=c.active_version,
        source_version=v.source_version, definition=v.spec, created_by=v.created_by, created_at=c.created_at,
        updated_at=c.updated_at, activated_at=c.activated_at, deprecated_at=c.deprecated_at,
        archived_at=c.archived_at, reason_code=c.reason_code, reason_text=c.reason_text)


@router.get("", response_model=ChartPage, summary="Chart definitions of the caller's tenants")
def list_charts(
    request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 50,
) -> ChartPage:
    views, next_cursor = service.list_charts(conn, caller, status=status_, cursor=cursor, limit=limit)
    routes.next_link(request, response, next_cursor)
    return ChartPage(items=[_public(v) for v in views], next=next_cursor)


# save, show, change (If-Match), activate and stop: the endpoints every versioned resource has
RESOURCE = routes.Resource(router, "chart_id", _public, ChartPublic)
routes.add_create_route(RESOURCE, ChartCreate, service.create_chart, name="create_chart",
                        summary="Save a chart (draft v1)")
routes.add_get_route(RESOURCE, service.get_chart, name="get_chart",
                     summary="One chart definition (newest or a given version)")
routes.add_update_route(RESOURCE, ChartUpdate, service.update_chart, name="update_chart")


@router.post("/{chart_id}/validate", response_model=ChartValidationPublic,
             summary="Validate against the source now (after drift: a new version bound to the source as it is)")
def validate(chart_id: str, response: Response, conn: Conn, caller: CurrentPrincipal,
             rid: RequestId) -> ChartValidationPublic:
    result = service.validate_chart(conn, caller, chart_id, correlation_id=rid)
    return ChartValidationPublic(validation_status="valid" if result.valid else "invalid", errors=list(result.errors),
                                 chart=_public(result.view, response))


routes.add_lifecycle_routes(RESOURCE, activate=service.activate_chart, activate_summary=routes.APPROVE,
                            stop=service.retire_chart, stops=(routes.DEPRECATE, routes.ARCHIVE))


def _wanted(fmt: str | None, accept: str | None) -> str:
    if fmt:
        return fmt
    accept = (accept or "").lower()
    return "png" if PNG in accept else "svg" if SVG in accept else "json"


@router.post("/{chart_id}/render", response_model=RenderPublic,
             responses={200: {"content": {SVG: {}, PNG: {}}}},
             summary="Render the active version under the requester's rules: data and SVG (or the SVG alone)")
def render(chart_id: str, conn: Conn, caller: CurrentPrincipal, rid: RequestId,
           body: Annotated[RenderRequest, Body()] = RenderRequest(),
           format_: Annotated[Literal["json", "svg", "png"] | None, Query(alias="format")] = None,
           accept: Annotated[str | None, Header()] = None) -> Any:
    fmt = _wanted(format_, accept)
    result = service.render_chart(conn, caller, chart_id, body.parameters, fmt=fmt,
                                  include_withdrawn=body.include_withdrawn, correlation_id=rid)
    if fmt == "svg":
        return Response(result.svg, media_type=SVG)
    if fmt == "png":
        return Response(charts.svg_to_png(result.svg), media_type=PNG)
    data = result.data
    return RenderPublic(
        chart_id=result.chart_id, version_id=result.version, chart_type=result.chart_type,
        chart_data=ChartDataPublic(x_axis=data.x_axis, categories=list(data.categories),
                                   series=[SeriesPublic(name=s.name, values=list(s.values)) for s in data.series]),
        row_count=result.rows, generated_at=result.generated_at, svg=result.svg)
