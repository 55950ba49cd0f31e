"""Schedules of export pipelines: checked when created, re-validated at every tick (failing
closed), and each tick started as one batch of the pipeline's active version, as the schedule's
owner, through pipeline_runs.run_pipeline exactly as the API starts one.

The tick's run key is the batch's Idempotency-Key: a tick recorded once starts one batch, and a
submission repeated after a crash finds that batch instead of starting another.

What a tick checks, beside the tenant and the owner's right to schedule (schedules/evaluation.py):
the owner may still run reports of the tenant; the pipeline still exists in the schedule's tenant
and is active (not paused, not archived). Each member is then checked by the batch itself (a
member that cannot run is named in the batch, the others still run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from orchestration.access import audit, policy
from orchestration.access.tokens import Authenticated
from orchestration.errors import Conflict
from orchestration.pipelines import store as pipeline_store
from orchestration.pipelines.models import Pipeline
from orchestration.schedules.evaluation import PipelineTick
from orchestration.services import definition_checks as checks
from orchestration.services import pipeline_runs, pipelines
from orchestration.services.definition_schedules import as_principal


def _not_runnable(pipeline: Pipeline) -> str | None:
    if pipeline.status != "active" or pipeline.active_version is None:
        return f"pipeline {pipeline.pipeline_id} is {pipeline.status}: only an active pipeline runs on a schedule"
    return None


def check_target(conn, caller: Authenticated, pipeline_id: str, correlation_id: str | None) -> tuple[Pipeline, str]:
    """A pipeline the caller may schedule: visible (else NotFound), the caller may schedule and run
    for its tenant, and it is active (else Conflict, audited). Returns it and its format."""
    with conn:
        pipeline = pipelines.visible(conn, caller.principal, pipeline_id)
    target = f"schedule of {pipeline_id}"
    checks.authorize(conn, caller, "schedule", pipeline.tenant_id, target, correlation_id)
    checks.authorize(conn, caller, "run", pipeline.tenant_id, target, correlation_id)
    refusal = _not_runnable(pipeline)
    if refusal:
        audit.record_now(conn, actor=checks.who(caller), action="schedule.refused", target=target, outcome="denied",
                         tenant_id=pipeline.tenant_id, correlation_id=correlation_id, details={"reason": refusal})
        raise Conflict(f"cannot schedule {pipeline_id}: {refusal}")
    with conn:
        fmt = pipeline_store.get_version(conn, pipeline_id, pipeline.active_version).spec.format
    return pipeline, fmt


def tick_refusal(conn, schedule: dict[str, Any]) -> str | None:
    """Why a tick of this pipeline schedule must not run now (None: it may)."""
    owner, tenant, pipeline_id = schedule["owner"], schedule["tenant_id"], schedule["pipeline_id"]
    reason = policy.decide(policy.get_principal(conn, owner), "run", tenant_id=tenant)
    if reason:
        return f"schedule owner {owner}: {reason}"
    pipeline = pipeline_store.TABLE.get(conn, pipeline_id)
    if pipeline is None or pipeline.tenant_id != tenant:
        return f"pipeline {pipeline_id} no longer exists in tenant {tenant}"
    return _not_runnable(pipeline)


def submit(conn, tick: PipelineTick, *, launch: Callable[[str], object]) -> str:
    """Start the tick's batch as the owner, keyed by the tick (a refusal raises, audited by
    run_pipeline); the batch's id."""
    caller = as_principal(conn, tick.owner)
    batch, _ = pipeline_runs.run_pipeline(conn, caller, tick.pipeline_id, idempotency_key=tick.run_key,
                                          correlation_id=tick.run_key, trigger="schedule", launch=launch,
                                          today=tick.tick_at.astimezone(dt.UTC).date())
    return batch.pipeline_run_id
