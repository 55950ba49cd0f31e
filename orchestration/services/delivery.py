"""Delivery use cases: approve a distribution of a schedule or an export pipeline (Gate C), allow an e-mail domain, register a
webhook, deliver a run (to given recipients or its schedule's), send what is due, read the
outbox, retry failed deliveries. Typed in and out.

The delivery package checks and audits each change in the transaction these functions own. The
sends are the exception: each row is claimed, and its outcome recorded, in a commit of its own
(delivery/records.py says why), so `send_due` runs outside any transaction of ours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestration import delivery
from orchestration.access import policy as access
from orchestration.delivery import approvals
from orchestration.delivery.recipients import Recipient
from orchestration.delivery.records import Delivery
from orchestration.delivery.sending import utc
from orchestration.pipelines import store as pipeline_store


@dataclass(frozen=True)
class Outbox:
    counts: dict[str, dict[str, int]]  # channel -> status -> deliveries
    deliveries: list[Delivery]


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    channel: str
    address: str
    status: str
    error: str | None


def approve(conn, schedule_id: int, *, approver: str, recipients: Iterable[str], channels: Iterable[str]) -> int:
    """Record a distribution approval for exactly these recipients over these channels."""
    with conn:
        return delivery.approve(conn, schedule_id, approver=approver, recipients=list(recipients),
                                channels=list(channels))


def approve_pipeline(conn, pipeline_id: str, *, approver: str, recipients: Iterable[str], channels: Iterable[str],
                     correlation_id: str | None = None) -> int:
    """Record a distribution approval of an export pipeline: exactly its destination (the active
    version's, or the newest version's about to be activated) over its channel."""
    recipients = list(recipients)
    with conn:
        pipeline = pipeline_store.TABLE.get(conn, pipeline_id)
        if pipeline is None:
            raise delivery.ApprovalError(f"no pipeline {pipeline_id}")
        destinations = {pipeline_store.get_version(conn, pipeline_id, v).spec.destination.recipient(None).identity
                        for v in {pipeline.active_version, pipeline.current_version} if v is not None}
        try:
            approved = {Recipient.parse(r).identity for r in recipients}
        except delivery.RecipientError as exc:
            raise delivery.ApprovalError(str(exc)) from exc
        if len(approved) != 1 or not approved <= destinations:
            raise delivery.ApprovalError(
                f"pipeline {pipeline_id} delivers to {' or '.join(sorted(destinations))}: approve exactly that "
                f"destination, not {', '.join(sorted(approved)) or 'nothing'}")
        of = approvals.Distribution(tenant_id=pipeline.tenant_id, owner=pipeline.created_by, pipeline_id=pipeline_id)
        return approvals.approve_distribution(conn, of, approver=approver, recipients=recipients,
                                              channels=list(channels), correlation_id=correlation_id)


def allow_domain(conn, tenant_id: str, domain: str, *, actor: str) -> str:
    """Allow e-mail to a domain for a tenant; returns the normalized domain."""
    with conn:
        return delivery.allow_domain(conn, tenant_id, domain, actor=actor)


def register_webhook(conn, tenant_id: str, url: str, *, actor: str) -> str:
    """Register (or rotate) a tenant's webhook; returns the signing secret, shown once."""
    with conn:
        return delivery.register_webhook(conn, tenant_id, url, actor=actor)


def deliver_run(conn, run_id: str, recipients: Iterable[Recipient | str], *, make_link=None,
                now: dt.datetime | None = None, actor: str = access.SCHEDULER,
                pipeline_id: str | None = None) -> delivery.DeliveryResult:
    """Gate C (of the pipeline, when the run is a member of its batch), allow-list and variant
    checks, one outbox row per accepted recipient (committed together), then send what is due for the run."""
    now = utc(now)
    with conn:
        result = delivery.enqueue_run(conn, run_id, recipients, now=now, actor=actor, pipeline_id=pipeline_id)
    if not result.stopped:
        result.attempts = send_due(conn, now, make_link=make_link, run_id=run_id)
    return result


def deliver_scheduled_run(conn, run_id: str, *, make_link=None, now: dt.datetime | None = None,
                          actor: str = access.SCHEDULER) -> delivery.DeliveryResult:
    """deliver_run to the recipients of the schedule that produced the run (none: nothing to do)."""
    with conn:
        recipients = delivery.scheduled_recipients(conn, run_id)
    if not recipients:
        return delivery.DeliveryResult(run_id)
    return deliver_run(conn, run_id, recipients, make_link=make_link, now=now, actor=actor)


def send_due(conn, now: dt.datetime | None = None, *, make_link=None, run_id: str | None = None) -> list[dict[str, Any]]:
    """Send every row that is due; one {delivery_id, channel, address, status, error} per attempt."""
    return delivery.send_due(conn, now, make_link=make_link, run_id=run_id)


def outbox(conn, run_id: str | None = None) -> Outbox:
    with conn:
        return Outbox(delivery.channel_counts(conn, run_id), delivery.list_deliveries(conn, run_id))


def retry(conn, run_id: str | None = None, *, actor: str, make_link=None, now: dt.datetime | None = None,
          include_permanent: bool = True) -> list[Attempt]:
    """Make failed rows due now (permanent ones too: an operator fixed the endpoint), then send.
    Sent rows are never touched."""
    now = utc(now)
    with conn:
        delivery.requeue(conn, run_id, actor=actor, now=now, include_permanent=include_permanent)
    return [Attempt(a["delivery_id"], a["channel"], a["address"], a["status"], a["error"])
            for a in send_due(conn, now, make_link=make_link, run_id=run_id)]
