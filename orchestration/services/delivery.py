"""Delivery use cases: approve a distribution (Gate C), allow an e-mail domain, register a
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
from orchestration.delivery.recipients import Recipient
from orchestration.delivery.records import Delivery
from orchestration.delivery.sending import utc


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


def allow_domain(conn, tenant_id: str, domain: str, *, actor: str) -> str:
    """Allow e-mail to a domain for a tenant; returns the normalized domain."""
    with conn:
        return delivery.allow_domain(conn, tenant_id, domain, actor=actor)


def register_webhook(conn, tenant_id: str, url: str, *, actor: str) -> str:
    """Register (or rotate) a tenant's webhook; returns the signing secret, shown once."""
    with conn:
        return delivery.register_webhook(conn, tenant_id, url, actor=actor)


def deliver_run(conn, run_id: str, recipients: Iterable[Recipient | str], *, make_link=None,
                now: dt.datetime | None = None, actor: str = access.SCHEDULER) -> delivery.DeliveryResult:
    """Gate C, allow-list and variant checks, one outbox row per accepted recipient (committed
    together), then send what is due for the run."""
    now = utc(now)
    with conn:
        result = delivery.enqueue_run(conn, run_id, recipients, now=now, actor=actor)
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
