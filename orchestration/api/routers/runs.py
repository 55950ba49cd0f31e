"""/reports/runs: a report definition's run as it goes, and short-lived download links to its files."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.api.problems import RESPONSES
from orchestration.runs.failures import GUIDANCE
from orchestration.runs.run_record import RunRecord
from orchestration.services import definition_runs as service

router = APIRouter(prefix="/reports/runs", tags=["report runs"], responses=RESPONSES)
RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "expired"]


class RunError(BaseModel):
    error_class: str = Field(alias="class", description="the failure class, e.g. policy_violation")
    diagnosis: str
    guidance: str

    model_config = {"populate_by_name": True}


class RunPublic(BaseModel):
    run_id: str
    report_definition_id: str
    version_id: int
    status: RunStatus
    stage: str = Field(description="the step the run is at: queued, freshness, snapshot, gate_b, render, publish, done")
    formats: list[str]
    submitted_at: dt.datetime
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    row_count: int | None = Field(default=None, description="rows in the report, once its snapshot is taken")
    sheets: list[str] | None = Field(default=None, description="the data sheets of its XLSX file (a large section "
                                                               "continues on numbered sheets), once published")
    correlation_id: str | None = Field(default=None, description="X-Request-ID of the request that submitted it")
    errors: list[RunError] = []


class DownloadPublic(BaseModel):
    download_url: str = Field(description="a link for the calling principal only; it expires")
    expires_at: dt.datetime
    format: str


def public(record: RunRecord, sheets: list[str] | None = None) -> RunPublic:
    errors = [RunError(error_class="format_error", diagnosis=f"{part['part']}: {part['error']}",
                       guidance=GUIDANCE.get("format_error", "")) for part in record.failed_parts]
    if record.failure_class and not errors:
        errors.append(RunError(error_class=record.failure_class, diagnosis=record.diagnosis or "",
                               guidance=record.retry_guidance or GUIDANCE.get(record.failure_class, "")))
    return RunPublic(
        run_id=record.run_id, report_definition_id=record.template_key, version_id=record.template_version,
        status=record.state, stage=record.stage, formats=list(record.formats), submitted_at=record.created_at,
        started_at=record.started_at, completed_at=record.published_at or record.ended_at,
        row_count=sum(record.row_counts.values()) if record.row_counts else None, sheets=sheets,
        correlation_id=record.correlation_id, errors=errors,
    )


@router.get("/{run_id}", response_model=RunPublic, response_model_by_alias=True, summary="A run's status")
def get_run(run_id: str, conn: Conn, caller: CurrentPrincipal, rid: RequestId) -> RunPublic:
    found = service.run_status(conn, caller, run_id, correlation_id=rid)
    return public(found.record, found.sheets)


@router.get("/{run_id}/download", response_model=DownloadPublic,
            summary="A short-lived download link to one file of a completed run, for the caller")
def download(run_id: str, request: Request, conn: Conn, caller: CurrentPrincipal, rid: RequestId,
             format: Annotated[Literal["csv", "xlsx", "json"], Query()] = "csv") -> DownloadPublic:
    found = service.download(conn, caller, run_id, format, base_url=str(request.base_url), correlation_id=rid)
    return DownloadPublic(download_url=found.url, expires_at=found.expires_at, format=found.fmt)
