"""Audit log use cases: read the newest rows, verify the hash chain, and trace one correlation id
(all read only).

A trace is what one request caused, in the order it happened: the API request, its validation,
the run it admitted (carrying the request's correlation id, with the run's own rows), Gate B,
publish, deliveries and downloads, each with its time and the time elapsed since the first row.
Auditors see the rows of their tenants; platform admins all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.access import audit, policy
from orchestration.access.audit import AuditEntry, TraceRow, Verification
from orchestration.access.tokens import Authenticated
from orchestration.errors import Denied, NotFound
from orchestration.runs import records as run_records

TRACE_ACTION = "audit_trace"
# The chain's steps, named by what a row records (first match wins; anything else is "other").
_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request", ("api.request",)),
    ("gate_b", ("run.gate_b",)),
    ("publish", ("report.exported", "run.superseded")),
    ("delivery", ("delivery.",)),
    ("download", ("link.",)),
    ("validation", ("definition.validate", "run.validated", "run.refused", "run.denied", "consent.override",
                    "security.")),
    ("run", ("run.",)),
    ("builder", ("definition.",)),
)


def step_of(action: str) -> str:
    if action.endswith(".denied"):
        return "validation"
    return next((step for step, prefixes in _STEPS if action.startswith(prefixes)), "other")


@dataclass(frozen=True)
class TraceEvent:
    row: TraceRow
    step: str
    elapsed_ms: float  # since the trace's first row


@dataclass(frozen=True)
class Trace:
    correlation_id: str
    run_ids: tuple[str, ...]
    events: tuple[TraceEvent, ...]

    @property
    def elapsed_ms(self) -> float:
        return self.events[-1].elapsed_ms if self.events else 0.0


def tail(conn, limit: int = 20) -> list[AuditEntry]:
    with conn:
        return audit.tail(conn, limit)


def verify(conn) -> Verification:
    return audit.verify(conn)


def _ms(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() * 1000, 1)


def trace(conn, caller: Authenticated | str, correlation_id: str, *, request_id: str | None = None) -> Trace:
    """The rows one correlation id ties together, for an auditor (its tenants) or a platform admin.
    `caller` is the API's authenticated token or the CLI's operator; a refusal is audited."""
    actor = caller.principal.principal_id if isinstance(caller, Authenticated) else caller
    target = f"audit trace {correlation_id}"
    if isinstance(caller, Authenticated) and not caller.allows(TRACE_ACTION):
        reason = f"token {caller.token_id} is not scoped for {TRACE_ACTION}"
        audit.record_now(conn, actor=actor, action=f"{TRACE_ACTION}.denied", target=target, outcome="denied",
                         correlation_id=request_id, details={"reason": reason})
        raise Denied(reason)
    with conn:
        principal = policy.authorize(conn, actor, TRACE_ACTION, target=target, correlation_id=request_id)
        run_ids = run_records.run_ids_of_correlation(conn, correlation_id)
        rows = audit.trace_rows(conn, correlation_id, run_ids)
    # An auditor sees its tenants' rows (and the tenant-less ones of the same chain: the request
    # before a tenant was known); a platform admin everything.
    if "platform_admin" not in principal.roles:
        rows = [r for r in rows if r.tenant_id is None or principal.member_of(r.tenant_id)]
        if not any(r.tenant_id for r in rows):
            rows = []
    if not rows:
        raise NotFound(f"no audit rows for correlation id {correlation_id}")
    # A request's row is written when its answer starts (with its status and duration); it stands in
    # the chain at the time the request arrived, before what it caused.
    placed = sorted(rows, key=lambda r: (_arrived(r), r.seq))
    first = _arrived(placed[0])
    return Trace(correlation_id, tuple(run_ids),
                 tuple(TraceEvent(r, step_of(r.action), _ms(_arrived(r) - first)) for r in placed))


def _arrived(row: TraceRow) -> dt.datetime:
    if row.action == "api.request" and row.details.get("received_at"):
        return dt.datetime.fromisoformat(row.details["received_at"])
    return row.at
