"""Admitting a run: the run contract checked before any query runs.

Validated (tenant, window, formats, filters, trigger), recorded as queued, then approval and
authorization checked. A refusal is audited and, once the run is recorded, ends it as failed
(policy_violation) before any query. A tenant that differs from the one a trusted source (a
runtime schedule) vouches for is refused and recorded as a security event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestration.access import audit, policy
from orchestration.catalog import definition_template
from orchestration.catalog.templates import Template
from orchestration.db.warehouse import json_param
from orchestration.governance import definition_lifecycle, lifecycle
from orchestration.runs import records, supervisor
from orchestration.runs.failures import AlreadyActive
from orchestration.runs.periods import RequestError
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin


def audit_refusal(conn, *, requester: str | None, target: str, reason: str, tenant_id: Any = None,
                  asked: dict[str, Any] | None = None, correlation_id: str | None = None) -> None:
    """One audit row for a refused run request, whatever refused it (committed at once: the refusal
    must be on record even though nothing else happens)."""
    audit.record_now(conn, actor=requester or "(none)", action="run.refused", target=target, outcome="denied",
                     tenant_id=tenant_id if isinstance(tenant_id, str) and tenant_id else None,
                     correlation_id=correlation_id, details={"reason": reason, **({"asked": asked} if asked else {})})


def admit(conn, template: Template, request: ReportRequest, origin: RunOrigin = RunOrigin(), *,
          today: dt.date | None = None) -> str:
    """Validate, record as queued, check approval and authorization: returns the new run id."""
    try:
        request.validate(template, today=today)
        if origin.expected_tenant is not None and request.tenant_id != origin.expected_tenant:
            security_event(conn, "tenant_mismatch", actor=request.requester, tenant_id=origin.expected_tenant,
                           details={"requested_tenant": request.tenant_id, "expected_tenant": origin.expected_tenant,
                                    "template": template.label,
                                    **({"schedule_id": origin.schedule_id} if origin.schedule_id else {})})
            raise RequestError(f"tenant {request.tenant_id!r} differs from the schedule's tenant "
                               f"{origin.expected_tenant!r}: refused and recorded as a security event")
    except RequestError as exc:
        audit_refusal(conn, requester=request.requester, target=template.label, reason=str(exc),
                      tenant_id=request.tenant_id, asked={"template": template.key, **request.as_json()},
                      correlation_id=origin.correlation_id)
        raise
    # A definition's template exists nowhere else: the run keeps what it executes.
    kept = template.model_dump(mode="json") if definition_template.is_definition_key(template.key) else None
    run_id, created = records.create_run(conn, request, origin, timeout_seconds=template.timeout_seconds,
                                         template=kept)
    if not created:
        audit.record_now(conn, actor=request.requester, action="run.deduplicated", target=run_id,
                         outcome="allowed", tenant_id=request.tenant_id,
                         correlation_id=origin.correlation_id or records.trace_id(conn, run_id),
                         details={"input_hash": request.input_hash})
        raise AlreadyActive(run_id)
    _authorize(conn, template, request, run_id, audit_allowed=True)
    return run_id


def security_event(conn, kind: str, *, actor: str, tenant_id: str | None, details: dict[str, Any]) -> None:
    """A possible attack or misconfiguration: kept apart from routine denials, and audited."""
    with conn, conn.cursor() as cur:
        cur.execute("insert into control.security_events (kind, actor, tenant_id, details) values (%s, %s, %s, %s)",
                    (kind, actor, tenant_id, json_param(details)))
    audit.record_now(conn, actor=actor, action=f"security.{kind}", target=tenant_id or "-", outcome="denied",
                     tenant_id=tenant_id, details=details)


def _authorize(conn, template: Template, request: ReportRequest, run_id: str, *, audit_allowed: bool) -> None:
    target = f"{template.label} for {request.tenant_id} {request.window_start}..{request.window_end}"
    trace = records.trace_id(conn, run_id)
    try:
        check = (definition_lifecycle.check_runnable if definition_template.is_definition_key(template.key)
                 else lifecycle.check_runnable)
        runnable = check(conn, template, trigger=request.trigger)
    except lifecycle.NotRunnable as exc:
        audit.record_now(conn, actor=request.requester, action="run.denied", target=target, outcome="denied",
                         tenant_id=request.tenant_id, correlation_id=trace, details={"reason": str(exc)})
        raise supervisor.fail(conn, run_id, "policy_violation", str(exc)) from exc
    try:
        policy.authorize(conn, request.requester, "run", target=target, tenant_id=request.tenant_id,
                         allowed_roles=template.roles.run, correlation_id=trace)
    except policy.AccessDenied as exc:
        raise supervisor.fail(conn, run_id, "policy_violation", str(exc)) from exc
    if audit_allowed:
        audit.record_now(conn, actor=request.requester, action="run.requested", target=target, outcome="allowed",
                         tenant_id=request.tenant_id, correlation_id=trace,
                         details={"run_id": run_id, "trigger": request.trigger, "input_hash": request.input_hash,
                                  **({"warning": runnable.warning} if runnable.warning else {})})


def start(conn, template: Template, request: ReportRequest, origin: RunOrigin = RunOrigin()) -> str:
    """Admit the request (or, for a run admitted earlier by the CLI, check it again: approval or
    membership may have changed while it waited), then mark it running in this process."""
    run_id = origin.run_id
    if run_id is None:
        run_id = admit(conn, template, request, origin)
    else:
        record = records.get_run(conn, run_id)
        if record is None or record.input_hash != request.input_hash:
            raise RequestError(f"run {run_id} was not admitted for this request")
        if record.state != "queued":
            raise RequestError(f"run {run_id} is {record.state}, not queued")
        _authorize(conn, template, request, run_id, audit_allowed=False)
    records.mark_running(conn, run_id, dagster_run_id=origin.dagster_run_id)
    supervisor.note_stage(run_id, "starting")
    return run_id
