"""/reports/definitions: the report builder's saved definitions, their lifecycle, validation and preview."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from pydantic import BaseModel, Field

from orchestration.api import versioned_routes as routes
from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.api.problems import RESPONSES
from orchestration.api.routers.runs import RunPublic, public
from orchestration.catalog.definitions import (
    DefinitionCreate,
    DefinitionSpec,
    DefinitionStatus,
    DefinitionUpdate,
    RunParameters,
    SecurityContext,
)
from orchestration.services import definition_runs
from orchestration.services import definitions as service

router = APIRouter(prefix="/reports/definitions", tags=["report definitions"], responses=RESPONSES)


class DefinitionPublic(BaseModel):
    report_definition_id: str
    report_name: str
    description: str | None
    status: DefinitionStatus
    version_id: int = Field(description="the newest version; PATCH makes a new one")
    active_version_id: int | None = Field(description="the version runs use (activated by an approver)")
    validation_hash: str
    security_context: SecurityContext
    definition: DefinitionSpec
    created_by: str
    created_at: Any
    updated_at: Any
    activated_at: Any = None
    deprecated_at: Any = None
    archived_at: Any = None
    reason_code: str | None = None
    reason_text: str | None = None
    validation_status: Literal["valid", "invalid"] = Field(
        default="valid", description="invalid: a registry or policy change left it unable to run; runs are refused")
    invalid_fields: list[str] = Field(default=[], description="the fields removed or restricted")
    invalid_reason: str | None = None
    invalid_since: Any = None


class DefinitionPage(BaseModel):
    items: list[DefinitionPublic]
    next: str | None = None


class ValidationPublic(BaseModel):
    validation_status: str = Field(description="valid or invalid")
    validation_hash: str | None
    errors: list[str]


class PreviewRequest(BaseModel):
    parameters: RunParameters = RunParameters()
    row_limit: int = Field(default=definition_runs.PREVIEW_DEFAULT, ge=1, le=definition_runs.PREVIEW_MAX)
    include_withdrawn: definition_runs.ConsentOverride | None = Field(
        default=None, description="root only: include consent-withdrawn subjects, for a logged reason")


class ColumnPublic(BaseModel):
    name: str
    type: str
    classification: str
    masked: bool


class PreviewPublic(BaseModel):
    columns: list[ColumnPublic]
    preview_rows: list[list[Any]]
    truncated: bool


def _json_value(value: Any) -> Any:
    """Numbers as JSON numbers: Postgres sums bigint as numeric, which pydantic would send as text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _public(view: service.DefinitionView, response: Response | None = None) -> DefinitionPublic:
    d, v = view.definition, view.version
    routes.tag(response, d.etag)
    return DefinitionPublic(
        report_definition_id=d.definition_id, report_name=v.spec.report_name, description=v.spec.description,
        status=d.status, version_id=v.version, active_version_id=d.active_version, validation_hash=v.validation_hash,
        security_context=v.security_context, definition=v.spec, created_by=v.created_by, created_at=d.created_at,
        updated_at=d.updated_at, activated_at=d.activated_at, deprecated_at=d.deprecated_at, archived_at=d.archived_at,
        reason_code=d.reason_code, reason_text=d.reason_text,
        validation_status="invalid" if d.invalid else "valid", invalid_fields=list(d.invalid_fields),
        invalid_reason=d.invalid_reason, invalid_since=d.invalid_since,
    )


@router.get("", response_model=DefinitionPage, summary="Definitions of the caller's tenants")
def list_definitions(
    request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
    status_: Annotated[DefinitionStatus | Literal["invalid"] | None,
                       Query(alias="status", description="a lifecycle status, or invalid: those marked invalid")] = None,
    vertical_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 50,
) -> DefinitionPage:
    views, next_cursor = service.list_definitions(conn, caller, status=status_, vertical=vertical_id, cursor=cursor,
                                                  limit=limit)
    routes.next_link(request, response, next_cursor)
    return DefinitionPage(items=[_public(v) for v in views], next=next_cursor)


# save, show, change (If-Match), activate and stop: the endpoints every versioned resource has
RESOURCE = routes.Resource(router, "report_definition_id", _public, DefinitionPublic)
routes.add_create_route(RESOURCE, DefinitionCreate, service.create_definition, name="create_definition",
                        summary="Save a definition (draft v1)")
routes.add_get_route(RESOURCE, service.get_definition, name="get_definition",
                     summary="One definition (newest or a given version)")
routes.add_update_route(RESOURCE, DefinitionUpdate, service.update_definition, name="update_definition")
routes.add_lifecycle_routes(RESOURCE, activate=service.activate_definition, activate_summary=routes.APPROVE,
                            stop=service.retire_definition, stops=(routes.DEPRECATE, routes.ARCHIVE))


@router.post("/{report_definition_id}/validate", response_model=ValidationPublic, summary="Validate against the registry now")
def validate(report_definition_id: str, conn: Conn, caller: CurrentPrincipal, rid: RequestId) -> ValidationPublic:
    result = service.validate_definition(conn, caller, report_definition_id, correlation_id=rid)
    return ValidationPublic(validation_status="valid" if result.valid else "invalid",
                            validation_hash=result.validation_hash, errors=list(result.errors))


@router.post("/{report_definition_id}/preview", response_model=PreviewPublic,
             summary="The first rows (default 100, at most 1,000), under the same rules as a run")
def preview(report_definition_id: str, conn: Conn, caller: CurrentPrincipal, rid: RequestId,
            body: Annotated[PreviewRequest, Body()] = PreviewRequest()) -> PreviewPublic:
    result = definition_runs.preview_definition(conn, caller, report_definition_id, body.parameters,
                                                row_limit=body.row_limit, include_withdrawn=body.include_withdrawn,
                                                correlation_id=rid)
    return PreviewPublic(
        columns=[ColumnPublic(name=c.name, type=c.type, classification=c.classification, masked=c.masked)
                 for c in result.columns],
        preview_rows=[[_json_value(v) for v in row] for row in result.rows], truncated=result.truncated,
    )


@router.post("/{report_definition_id}/run", response_model=RunPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Run the active version asynchronously (Idempotency-Key: the same key, the same run)")
def run(report_definition_id: str, request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
        rid: RequestId,
        body: Annotated[definition_runs.RunOrder, Body()] = definition_runs.RunOrder(),
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> RunPublic:
    record, _ = definition_runs.submit_run(conn, caller, report_definition_id, body, idempotency_key=idempotency_key,
                                           correlation_id=rid, launch=request.app.state.launch)
    response.headers["Location"] = f"/reports/runs/{record.run_id}"
    return public(record)
