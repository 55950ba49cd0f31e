"""Running an export pipeline as one batch: a report run per member, then each published
member's files delivered once to the pipeline's destination.

Batch semantics (the specification: "every member run publishes or the batch reports which
failed"): the members run independently, each under its own rules (a definition's run is
services.definition_runs.submit_run, a template's services.runs.submit). A member that fails, or
publishes and is refused delivery (Gate C, allow-list), is named in the batch with its reason and
nothing of it is delivered; the members that published are still delivered, since each is a
complete, validated report of its own and holding them back would not make the failed one
succeed. The batch ends `completed` (every member delivered), `partially_failed` or `failed`
(none delivered).

Each file reaches the destination once: a delivery is an outbox row keyed by run and recipient
(delivery/recipients.idempotency_key), so settling a batch again, or the same Idempotency-Key
asking for the batch again, delivers nothing twice.

Settling: member runs execute in workers. `settle` looks at them and delivers the published ones;
it is idempotent and is called by whoever looks first: the batch's readers (GET of its runs, the
CLI's `pipelines run --wait`) and the Dagster sensor `pipeline_runs_sensor` for unattended batches.

Interrupted: a batch whose members are still not all recorded SUBMIT_GRACE after it started was
cut short while submitting them (the process starting it ended). `settle` then records each
missing member as failed (never submitted) and finishes the batch with the members it has; the
member runs that did start end on their own (a run whose worker never started it is reaped).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from orchestration.access import audit
from orchestration.access.tokens import Authenticated
from orchestration.catalog.definitions import RunParameters
from orchestration.delivery import outbox
from orchestration.delivery.recipients import Recipient, idempotency_key
from orchestration.errors import Conflict, Invalid, NotFound, ServiceError
from orchestration.governance.lifecycle import GovernanceError
from orchestration.pipelines import store
from orchestration.pipelines.models import MemberRun, Pipeline, PipelineRun, is_definition
from orchestration.runs import idempotency, records, supervisor, worker
from orchestration.runs.failures import AlreadyActive
from orchestration.runs.periods import RequestError, utc_today
from orchestration.runs.run_record import END_STATES, RunOrigin
from orchestration.services import definition_checks as checks
from orchestration.services import definition_runs, pipelines
from orchestration.services import delivery as delivery_service
from orchestration.services import runs as run_service

PAGE_MAX = 100
# Submitting a batch's members takes seconds; a batch still short of members after this was interrupted.
SUBMIT_GRACE = dt.timedelta(minutes=10)
NEVER_SUBMITTED = ("never submitted: the batch was interrupted while submitting its members "
                   "(the process that started it ended)")


class PipelineRunOrder(BaseModel):
    """What a caller asks of a batch: the window every member reports on (default: the last 30 whole days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    parameters: RunParameters = RunParameters()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _window(order: PipelineRunOrder, today: dt.date | None = None) -> RunParameters:
    """One explicit window for every member of the batch, fixed when the batch starts (a
    scheduled batch's `today` is its tick's day, as a definition schedule's run)."""
    if order.parameters.half_open():
        return order.parameters
    today = today or utc_today()
    return RunParameters(date_from=today - dt.timedelta(days=definition_runs.DEFAULT_WINDOW_DAYS),
                         date_to=today - dt.timedelta(days=1))


def _submit_member(conn, caller: Authenticated, pipeline: Pipeline, member: str, fmt: str, window: RunParameters,
                   correlation_id: str | None, launch: Callable[[str], object]) -> tuple[str | None, str | None]:
    """(run id, None) once the member's run is admitted and launched, or (None, why it was refused)."""
    refusal = pipelines.member_refusal(conn, caller.principal, pipeline.tenant_id, member)
    if refusal:
        return None, refusal
    try:
        if is_definition(member):
            order = definition_runs.RunOrder(format=fmt, parameters=window)
            record, _ = definition_runs.submit_run(conn, caller, member, order, correlation_id=correlation_id,
                                                   launch=launch)
            return record.run_id, None
        submission = run_service.RunSubmission(
            template_key=member, tenant_id=pipeline.tenant_id, requester=checks.who(caller),
            date_from=window.date_from.isoformat(), date_to=window.date_to.isoformat(), formats=(fmt,))
        run_service.check_before_launch(conn, submission)
        run_id = run_service.submit(conn, submission, RunOrigin(correlation_id=correlation_id))
    except AlreadyActive as active:  # the same report is running already: that run is this member's
        return active.run_id, None
    except (ServiceError, GovernanceError, RequestError) as exc:
        return None, str(exc)
    launch(run_id)
    return run_id, None


def _known(conn, pipeline_id: str, who: str, key: str, fingerprint: str) -> PipelineRun | None:
    with conn:
        found = store.find_run(conn, pipeline_id, who, key)
        if found is None:
            return None
        if found[1] != fingerprint:
            raise Invalid("Idempotency-Key was used for a different request; use a new key for a new request")
        return store.get_run(conn, found[0])


def run_pipeline(conn, caller: Authenticated, pipeline_id: str, order: PipelineRunOrder = PipelineRunOrder(), *,
                 idempotency_key: str | None = None, correlation_id: str | None = None, trigger: str = "manual",
                 launch: Callable[[str], object] = worker.launch,
                 now: dt.datetime | None = None, today: dt.date | None = None) -> tuple[PipelineRun, bool]:
    """Start a batch of the pipeline's active version: (the batch, whether it is new). The same
    principal's Idempotency-Key on the same pipeline returns the same batch and starts nothing."""
    now = now or _utcnow()
    pipeline = pipelines.visible(conn, caller.principal, pipeline_id)
    who = checks.who(caller)
    checks.authorize(conn, caller, "run", pipeline.tenant_id, f"pipeline {pipeline_id}", correlation_id)
    fingerprint = idempotency.fingerprint(pipeline_id, order.model_dump(mode="json"))
    if idempotency_key:
        if len(idempotency_key) > idempotency.MAX_KEY_LENGTH or not idempotency_key.isprintable():
            raise Invalid(f"Idempotency-Key: 1 to {idempotency.MAX_KEY_LENGTH} printable characters")
        known = _known(conn, pipeline_id, who, idempotency_key, fingerprint)
        if known is not None:
            return known, False
    if pipeline.status != "active" or pipeline.active_version is None:
        reason = f"pipeline {pipeline_id} is {pipeline.status}: only an active pipeline runs"
        audit.record_now(conn, actor=who, action="pipeline.run", target=pipeline_id, outcome="denied",
                         tenant_id=pipeline.tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise Conflict(reason)
    spec = store.get_version(conn, pipeline_id, pipeline.active_version).spec
    window = _window(order, today)
    with conn:  # the batch is on record before its first member starts
        batch_id = store.insert_run(conn, pipeline, requester=who, trigger=trigger, correlation_id=correlation_id,
                                    idempotency_key=idempotency_key, fingerprint=fingerprint, now=now)
        if batch_id is not None:
            audit.record(conn, actor=who, action="pipeline.run", target=pipeline_id, outcome="succeeded",
                         tenant_id=pipeline.tenant_id, correlation_id=correlation_id,
                         details={"pipeline_run_id": batch_id, "version": pipeline.active_version,
                                  "members": list(spec.members), "window": window.model_dump(mode="json")})
    if batch_id is None:  # a concurrent request with the same key won
        return _known(conn, pipeline_id, who, idempotency_key or "", fingerprint), False
    for position, member in enumerate(spec.members):
        run_id, refusal = _submit_member(conn, caller, pipeline, member, spec.format, window, correlation_id, launch)
        with conn:
            store.insert_member(conn, batch_id, MemberRun(position=position, member=member, run_id=run_id,
                                                          state="failed" if refusal else "submitted", error=refusal))
            if refusal:  # settled already: nothing of it will be delivered
                audit.record(conn, actor=who, action="pipeline.export", target=member, outcome="failed",
                             tenant_id=pipeline.tenant_id, correlation_id=correlation_id,
                             details={"pipeline_run_id": batch_id, "state": "failed", "error": refusal})
    return settle(conn, batch_id), True


# ---------------------------------------------------------------- settling a batch


def _delivery(conn, run_id: str, recipient: Recipient, actor: str, make_link, pipeline_id: str) -> tuple[str, dict]:
    """Deliver one published member (the outbox dedupes; Gate C asks for the pipeline's approval);
    its delivery state, or 'none' while it is still going."""
    result = delivery_service.deliver_run(conn, run_id, [recipient], make_link=make_link, actor=actor,
                                          pipeline_id=pipeline_id)
    if result.refused:
        return "refused", {"reason": result.refused[0][1]}
    key = idempotency_key(run_id, recipient)
    with conn:
        row = next((d for d in outbox.list_deliveries(conn, run_id) if d.idempotency_key == key), None)
    if row is None:
        return "none", {}
    detail = {"delivery_id": row.delivery_id, "channel": row.channel, "status": row.status,
              **({"error": row.last_error} if row.last_error else {})}
    return {"sent": "delivered", "failed_permanent": "failed"}.get(row.status, "none"), detail


def _settle_member(conn, batch: PipelineRun, member: MemberRun, recipient: Recipient, make_link) -> MemberRun:
    if member.settled or member.run_id is None:
        return member
    record = records.get_run(conn, member.run_id)
    if record is not None and record.state == "queued" and supervisor.reap_queued(conn, record):
        record = records.get_run(conn, member.run_id)  # its worker exited before starting it: failed now
    if record is None or record.state not in END_STATES:
        return member
    if record.state != "completed":
        why = f"run {record.run_id} {record.state}" + (f" ({record.failure_class}): {record.diagnosis}"
                                                       if record.failure_class else "")
        return member.model_copy(update={"state": "failed", "error": why})
    delivery, detail = _delivery(conn, record.run_id, recipient, batch.requester, make_link, batch.pipeline_id)
    return member.model_copy(update={"state": "published", "delivery": delivery, "delivery_detail": detail})


def _outcome(members: tuple[MemberRun, ...]) -> str:
    delivered = sum(1 for m in members if m.delivery == "delivered")
    return "completed" if delivered == len(members) else "failed" if delivered == 0 else "partially_failed"


def _record_changes(conn, batch: PipelineRun, before: tuple[MemberRun, ...], after: list[MemberRun],
                    now: dt.datetime) -> None:
    for old, new in zip(before, after, strict=True):
        if new == old:
            continue
        store.update_member(conn, batch.pipeline_run_id, new)
        if new.settled:
            failed = new.state == "failed" or new.delivery != "delivered"
            audit.record(conn, actor=batch.requester, action="pipeline.export", target=new.member,
                         outcome="failed" if failed else "succeeded", tenant_id=batch.tenant_id,
                         correlation_id=batch.correlation_id,
                         details={"pipeline_run_id": batch.pipeline_run_id, "run_id": new.run_id, "state": new.state,
                                  "delivery": new.delivery, "error": new.error, **new.delivery_detail})


def settle(conn, pipeline_run_id: str, *, make_link=None, now: dt.datetime | None = None) -> PipelineRun:
    """Record the members whose runs ended, deliver the published ones, and end the batch when
    every member is settled. Idempotent; returns the batch as it is now."""
    now = now or _utcnow()
    with conn:
        batch = store.get_run(conn, pipeline_run_id)
    if batch is None:
        raise NotFound(f"no pipeline run {pipeline_run_id}")
    if batch.status != "running":
        return batch
    spec = _spec(conn, batch)
    if len(batch.members) < len(spec.members):
        if now - batch.created_at < SUBMIT_GRACE:  # still being submitted
            return batch
        batch = _close_submission(conn, batch, spec.members)
    recipient = spec.destination.recipient(batch.requester)
    after = [_settle_member(conn, batch, m, recipient, make_link) for m in batch.members]
    with conn:
        _record_changes(conn, batch, batch.members, after, now)
        if all(m.settled for m in after):
            status = _outcome(tuple(after))
            store.update_run(conn, pipeline_run_id, {"status": status, "settled_at": now})
            failed = [{"member": m.member, "error": m.error or m.delivery_detail.get("reason")
                       or m.delivery_detail.get("error")} for m in after if m.delivery != "delivered"]
            audit.record(conn, actor=batch.requester, action="pipeline.run.settled", target=batch.pipeline_id,
                         outcome="succeeded" if status == "completed" else "failed", tenant_id=batch.tenant_id,
                         correlation_id=batch.correlation_id,
                         details={"pipeline_run_id": pipeline_run_id, "status": status, "failed": failed})
        return store.get_run(conn, pipeline_run_id)


def _close_submission(conn, batch: PipelineRun, members: tuple[str, ...]) -> PipelineRun:
    """Record every member an interrupted batch never submitted as failed (audited); the batch now."""
    recorded = {m.position for m in batch.members}
    with conn:
        for position, member in enumerate(members):
            if position in recorded or not store.insert_member(
                    conn, batch.pipeline_run_id, MemberRun(position=position, member=member, run_id=None,
                                                           state="failed", error=NEVER_SUBMITTED)):
                continue
            audit.record(conn, actor=batch.requester, action="pipeline.export", target=member, outcome="failed",
                         tenant_id=batch.tenant_id, correlation_id=batch.correlation_id,
                         details={"pipeline_run_id": batch.pipeline_run_id, "state": "failed",
                                  "error": NEVER_SUBMITTED})
        return store.get_run(conn, batch.pipeline_run_id)


def _spec(conn, batch: PipelineRun):
    with conn:
        return store.get_version(conn, batch.pipeline_id, batch.version).spec


def settle_pending(conn, *, limit: int = 100) -> list[PipelineRun]:
    """For the Dagster sensor: settle every batch still running; the ones that ended now."""
    with conn:
        pending = store.unsettled_runs(conn, limit)
    settled = [settle(conn, batch_id) for batch_id in pending]
    return [b for b in settled if b.status != "running"]


def get_pipeline_run(conn, caller: Authenticated, pipeline_id: str, pipeline_run_id: str) -> PipelineRun:
    with conn:
        pipelines.visible(conn, caller.principal, pipeline_id)
        batch = store.get_run(conn, pipeline_run_id)
    if batch is None or batch.pipeline_id != pipeline_id:
        raise NotFound(f"no run {pipeline_run_id} of pipeline {pipeline_id}")
    return settle(conn, pipeline_run_id)


def list_pipeline_runs(conn, caller: Authenticated, pipeline_id: str, *, cursor: str | None = None,
                       limit: int = 20) -> tuple[list[PipelineRun], str | None]:
    """Newest first; batches still running are settled first, so a reader sees them end."""
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {PAGE_MAX}")
    with conn:
        pipelines.visible(conn, caller.principal, pipeline_id)
        page = store.list_runs(conn, pipeline_id, before=cursor, limit=limit + 1)
    batches = [settle(conn, b.pipeline_run_id) if b.status == "running" else b for b in page[:limit]]
    return batches, (batches[-1].pipeline_run_id if len(page) > limit else None)
