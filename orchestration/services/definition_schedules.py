"""Schedules of report definitions: checked when created, re-validated at every tick (failing
closed), and each tick submitted as a definition run of the schedule's owner, through
definition_runs.submit_run exactly as the API submits one (its worker re-validates once more in
prepare_execution).

What a tick checks, beside the tenant and the owner's right to schedule (schedules/evaluation.py):
the owner may still run reports of the tenant; the definition still exists in the schedule's
tenant, is active (not a draft, not deprecated, not archived) and its active version still
validates for the owner now (entities active, every field still allowed, the registry unchanged).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from orchestration.access import audit, policy
from orchestration.access.tokens import Authenticated
from orchestration.catalog import definition_store
from orchestration.catalog.definitions import Definition, DefinitionVersion
from orchestration.errors import Conflict, Denied
from orchestration.governance import definition_lifecycle
from orchestration.governance.lifecycle import NotRunnable
from orchestration.runs.run_record import RunOrigin
from orchestration.schedules.evaluation import DefinitionTick
from orchestration.services import definition_checks as checks
from orchestration.services import definition_runs


def as_principal(conn, principal_id: str) -> Authenticated:
    """A principal acting without a token (a schedule's owner at a tick, an operator on the host):
    no token scopes narrow it; the policy decides."""
    principal = policy.get_principal(conn, principal_id)
    if principal is None or not principal.active:
        raise Denied(f"{principal_id} is not a known, active principal")
    return Authenticated(principal, "(schedule)", frozenset())


def _scheduled_version(conn, principal: policy.Principal, definition: Definition) -> tuple[DefinitionVersion | None, str | None]:
    """The version a tick would run, and why it may not (None: it may)."""
    try:
        number = definition_lifecycle.active_version(definition)
    except NotRunnable as exc:
        return None, str(exc)
    if definition.status == "deprecated":
        return None, f"report definition {definition.definition_id} is deprecated: scheduled runs are refused"
    version = definition_store.get_version(conn, definition.definition_id, number)
    result = checks.check(conn, principal, definition, version)
    if not result.valid:
        return version, (f"report definition {definition.definition_id} v{number} is not valid now: "
                         + "; ".join(result.errors))
    return version, None


def check_target(conn, caller: Authenticated, definition_id: str, correlation_id: str | None) -> Definition:
    """A definition the caller may schedule: visible (else NotFound), the caller may schedule and
    run for its tenant, and it runs now (else Conflict, audited)."""
    definition = checks.visible(conn, caller.principal, definition_id)
    target = f"schedule of {definition_id}"
    checks.authorize(conn, caller, "schedule", definition.tenant_id, target, correlation_id)
    checks.authorize(conn, caller, "run", definition.tenant_id, target, correlation_id)
    _, refusal = _scheduled_version(conn, caller.principal, definition)
    if refusal:
        audit.record_now(conn, actor=checks.who(caller), action="schedule.refused", target=target, outcome="denied",
                         tenant_id=definition.tenant_id, correlation_id=correlation_id, details={"reason": refusal})
        raise Conflict(f"cannot schedule {definition_id}: {refusal}")
    return definition


def tick_refusal(conn, schedule: dict[str, Any]) -> str | None:
    """Why a tick of this definition schedule must not run now (None: it may)."""
    owner, tenant, definition_id = schedule["owner"], schedule["tenant_id"], schedule["definition_id"]
    principal = policy.get_principal(conn, owner)
    reason = policy.decide(principal, "run", tenant_id=tenant)
    if reason:
        return f"schedule owner {owner}: {reason}"
    definition = definition_store.get(conn, definition_id)
    if definition is None or definition.tenant_id != tenant:
        return f"report definition {definition_id} no longer exists in tenant {tenant}"
    _, refusal = _scheduled_version(conn, principal, definition)
    return refusal


def submit(conn, tick: DefinitionTick, *, launch: Callable[[str], object]) -> str:
    """Submit the tick's run as the owner (a refusal raises, audited by submit_run); its run id."""
    caller = as_principal(conn, tick.owner)
    origin = RunOrigin(schedule_id=str(tick.schedule_id), expected_tenant=tick.tenant_id, tick_at=tick.tick_at)
    record, _ = definition_runs.submit_run(
        conn, caller, tick.definition_id, definition_runs.RunOrder(format=tick.fmt), launch=launch,
        trigger="schedule", origin=origin, today=tick.tick_at.astimezone(dt.UTC).date(), correlation_id=tick.run_key)
    return record.run_id
