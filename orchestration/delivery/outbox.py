"""The delivery outbox: enqueue one row per run x recipient x channel, send, retry, report.

At-least-once with dedupe:
- A row's idempotency key is unique, so delivering a run to the same recipient again enqueues
  nothing and sends nothing that was already sent.
- A row is claimed ('sending', attempts + 1, committed) before the channel is called and marked
  'sent' right after the channel acknowledged (SMTP accepted, HTTP 2xx, S3 ETag). A process that
  dies in between leaves it 'sending'; after SENDING_LEASE it is claimed again and resent with
  the same Message-ID / webhook-id, which the receiver can deduplicate.
- Transient failures (SMTP 4xx, connection errors and timeouts, HTTP 429/5xx) become
  'failed_transient' with next_attempt_at = now + exponential backoff; permanent ones (SMTP 5xx,
  other HTTP 4xx such as 410) 'failed_permanent'. After MAX_ATTEMPTS a transient row gives up.
- A retry (`send_due`) touches only rows that are due and not sent: recipients already reached
  are never contacted again.
Every send and every refusal is in the audit log.

Enqueueing and requeueing run in the caller's transaction (services/delivery.py owns it); the
claim and the outcome of each send commit on their own (delivery/records.py says why).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestration.access import audit
from orchestration.access import policy as access
from orchestration.artifacts import which_store
from orchestration.delivery import approvals, outbound, webhook
from orchestration.delivery import records as rows
from orchestration.delivery.errors import DeliveryRefused
from orchestration.delivery.recipients import SENSITIVE, Recipient, distribution_hash, idempotency_key
from orchestration.delivery.records import (  # re-exported: the outbox's public face
    BACKOFF_BASE,
    BACKOFF_MAX,
    DELIVERY_ACTOR,
    MAX_ATTEMPTS,
    SENDING_LEASE,
    STATUSES,
    Delivery,
    backoff,
    channel_counts,
    list_deliveries,
)
from orchestration.delivery.sending import files_of, send_due
from orchestration.runs import records
from orchestration.runs.run_record import RunRecord

__all__ = [
    "BACKOFF_BASE", "BACKOFF_MAX", "DELIVERY_ACTOR", "MAX_ATTEMPTS", "SENDING_LEASE", "STATUSES", "Delivery",
    "DeliveryResult", "approvals", "backoff", "channel_counts", "enqueue_run", "list_deliveries", "requeue",
    "schedule_recipients", "scheduled_recipients", "send_due",
]


@dataclass
class DeliveryResult:
    run_id: str
    enqueued: list[str] = field(default_factory=list)      # idempotency keys of new rows
    refused: list[tuple[str, str]] = field(default_factory=list)  # (recipient identity, reason)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # what send_due did
    stopped: bool = False  # refused as a whole (run not published, Gate C): nothing is sent


def _schedule_id(run: RunRecord | None) -> int | None:
    sid = run.schedule_id if run is not None else None
    return int(sid) if sid is not None and str(sid).isdigit() else None


def _refuse(conn, result: DeliveryResult | None, run: RunRecord, recipient_ident: str, reason: str,
            *, actor: str, details: dict[str, Any] | None = None) -> None:
    audit.record_now(conn, actor=actor, action="delivery.refused", target=recipient_ident, outcome="denied",
                     tenant_id=run.tenant_id, correlation_id=run.trace_id,
                     details={"run_id": run.run_id, "reason": reason, **(details or {})})
    if result is not None:
        result.refused.append((recipient_ident, reason))


def _outbound_refusal(recipient: Recipient) -> str | None:
    """The outbound check at enqueue time, for a webhook URL or a bucket's custom endpoint."""
    url = recipient.address if recipient.kind == "webhook" else recipient.config.get("endpoint_url")
    if not url or recipient.kind == "email":
        return None
    try:
        outbound.check_now(url)
    except outbound.OutboundRefused as exc:
        return str(exc)
    return None


def _recipient_refusal(conn, run: RunRecord, manifest: dict[str, Any], r: Recipient) -> str | None:
    """Why one recipient may not get this run (allow-list, variant, webhook, outbound URL), or None."""
    reason = approvals.domain_refusal(conn, run.tenant_id, r)
    if reason is None and not files_of(manifest, r.variant):
        reason = (f"the run has no '{r.variant}' variant"
                  + (": external recipients receive only the redacted external variant" if r.external else ""))
    if reason is None and r.kind == "webhook" and not webhook.endpoint_secret(conn, run.tenant_id, r.address):
        reason = f"webhook {r.address} is not registered for tenant {run.tenant_id} (no signing secret)"
    return reason or _outbound_refusal(r)


def _enqueue(conn, result: DeliveryResult, run: RunRecord, accepted: list[Recipient], *, sensitivity: str,
             digest: str, now: dt.datetime, actor: str, pipeline_id: str | None) -> None:
    """One row per accepted recipient (an existing idempotency key enqueues nothing), audited."""
    with conn.cursor() as cur:
        for r in accepted:
            key = idempotency_key(run.run_id, r)
            if rows.insert(cur, key, run, r, sensitivity=sensitivity, schedule_id=_schedule_id(run),
                           pipeline_id=pipeline_id, distribution_hash=digest if sensitivity in SENSITIVE else None,
                           now=now):
                result.enqueued.append(key)
    if result.enqueued:
        audit.record(conn, actor=actor, action="delivery.enqueue", target=f"run {run.run_id}", outcome="succeeded",
                     tenant_id=run.tenant_id, correlation_id=run.trace_id,
                     details={"run_id": run.run_id, "recipients": [r.identity for r in accepted], "new": len(result.enqueued)})


def enqueue_run(conn, run_id: str, recipients: Iterable[Recipient | str], *, now: dt.datetime,
                actor: str = access.SCHEDULER, pipeline_id: str | None = None) -> DeliveryResult:
    """Gate C, allow-list and variant checks, and one row per accepted recipient, in the caller's
    transaction (services/delivery.deliver_run sends them next, unless `stopped`). With
    `pipeline_id` (a member run of an export pipeline's batch), Gate C asks for the pipeline's
    distribution approval instead of the run's schedule's.

    Refused recipients are audited and listed in the result; nothing is raised for them, so a
    refusal of one recipient does not stop the others (a Gate C refusal stops them all).
    """
    result = DeliveryResult(run_id)
    run = records.get_run(conn, run_id)
    if run is None:
        raise DeliveryRefused(f"no run {run_id}")
    recipients = [r if isinstance(r, Recipient) else Recipient.parse(r) for r in recipients]
    if run.state != "completed" or not run.artifact_location:
        reason = f"run {run_id} is {run.state}: only a completed, published run is delivered"
        for r in recipients:
            _refuse(conn, result, run, r.identity, reason, actor=actor)
        result.stopped = True
        return result
    store, run_key = which_store.for_location(run.artifact_location)
    manifest = store.read_manifest(run_key)
    sensitivity = manifest.get("template", {}).get("sensitivity", "restricted")
    digest = distribution_hash(recipients, {r.kind for r in recipients})
    if sensitivity in SENSITIVE:  # Gate C: the whole set is approved, or nothing goes out
        reason = approvals.approval_refusal(conn, _schedule_id(run), digest, pipeline_id=pipeline_id)
        if reason:
            of = {"pipeline_id": pipeline_id} if pipeline_id else {"schedule_id": _schedule_id(run)}
            for r in recipients:
                _refuse(conn, result, run, r.identity, f"Gate C: {reason}", actor=actor,
                        details={"sensitivity": sensitivity, **of, "distribution_hash": digest})
            result.stopped = True
            return result
    accepted = []
    for r in recipients:
        reason = _recipient_refusal(conn, run, manifest, r)
        if reason:
            _refuse(conn, result, run, r.identity, reason, actor=actor)
        else:
            accepted.append(r)
    _enqueue(conn, result, run, accepted, sensitivity=sensitivity, digest=digest, now=now, actor=actor,
             pipeline_id=pipeline_id)
    return result


def schedule_recipients(conn, schedule_id: int) -> list[Recipient]:
    """The recipients stored on a runtime schedule (control.schedules.recipients)."""
    with conn.cursor() as cur:
        cur.execute("select recipients from control.schedules where schedule_id = %s", (schedule_id,))
        row = cur.fetchone()
    if row is None:
        raise DeliveryRefused(f"no schedule {schedule_id}")
    return [Recipient.parse(r) for r in row[0]]


def scheduled_recipients(conn, run_id: str) -> list[Recipient]:
    """The recipients of the schedule that produced the run (none: not a scheduled run)."""
    run = records.get_run(conn, run_id)
    schedule_id = _schedule_id(run)
    if run is None or schedule_id is None:
        return []
    return schedule_recipients(conn, schedule_id)


def requeue(conn, run_id: str | None, *, actor: str, now: dt.datetime, include_permanent: bool = True) -> list[int]:
    """Make failed rows due now (permanent ones too: an operator fixed the endpoint), audited, in
    the caller's transaction; their ids. Sent rows are never touched."""
    statuses = ["failed_transient"] + (["failed_permanent"] if include_permanent else [])
    ids = rows.requeue_failed(conn, run_id, statuses, now)
    audit.record(conn, actor=actor, action="delivery.retry", target=f"run {run_id}" if run_id else "all runs",
                 outcome="succeeded", correlation_id=run_id, details={"requeued": ids})
    return ids
