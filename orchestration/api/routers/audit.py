"""/audit/trace: everything one request caused, in order (auditors of its tenants, platform admins)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.api.problems import RESPONSES
from orchestration.services import audit as service

router = APIRouter(prefix="/audit", tags=["audit"], responses=RESPONSES)


class TraceEventPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int = Field(description="the row's place in the hash-chained audit log")
    at: dt.datetime
    elapsed_ms: float = Field(description="milliseconds since the trace's first row")
    step: str = Field(description="request, validation, run, gate_b, publish, delivery, download, builder or other")
    action: str
    actor: str
    tenant_id: str | None
    target: str
    outcome: str
    details: dict[str, Any]


class TracePublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    correlation_id: str
    run_ids: list[str] = Field(description="the runs the request caused")
    elapsed_ms: float = Field(description="from the first row to the last")
    events: list[TraceEventPublic]


@router.get("/trace/{correlation_id}", response_model=TracePublic,
            summary="The audit rows of one correlation id in order: request, validation, run, Gate B, publish, "
                    "deliveries, downloads")
def trace(correlation_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,128}$")], conn: Conn,
          caller: CurrentPrincipal, rid: RequestId) -> TracePublic:
    found = service.trace(conn, caller, correlation_id, request_id=rid)
    return TracePublic(
        correlation_id=found.correlation_id, run_ids=list(found.run_ids), elapsed_ms=found.elapsed_ms,
        events=[TraceEventPublic(seq=e.row.seq, at=e.row.at, elapsed_ms=e.elapsed_ms, step=e.step, action=e.row.action,
                                 actor=e.row.actor, tenant_id=e.row.tenant_id, target=e.row.target,
                                 outcome=e.row.outcome, details=e.row.details)
                for e in found.events])
