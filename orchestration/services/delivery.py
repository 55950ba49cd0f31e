"""Delivery use cases: approve a distribution (Gate C), allow an e-mail domain, register a
webhook, read the outbox, retry failed deliveries. Typed in and out.

The delivery package checks, audits and commits each change; this is the adapters' entry point.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestration import delivery
from orchestration.delivery.records import Delivery


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
    return delivery.approve(conn, schedule_id, approver=approver, recipients=list(recipients), channels=list(channels))


def allow_domain(conn, tenant_id: str, domain: str, *, actor: str) -> str:
    """Allow e-mail to a domain for a tenant; returns the normalized domain."""
    return delivery.allow_domain(conn, tenant_id, domain, actor=actor)


def register_webhook(conn, tenant_id: str, url: str, *, actor: str) -> str:
    """Register (or rotate) a tenant's webhook; returns the signing secret, shown once."""
    return delivery.register_webhook(conn, tenant_id, url, actor=actor)


def outbox(conn, run_id: str | None = None) -> Outbox:
    with conn:
        return Outbox(delivery.channel_counts(conn, run_id), delivery.list_deliveries(conn, run_id))


def retry(conn, run_id: str | None = None, *, actor: str) -> list[Attempt]:
    return [Attempt(a["delivery_id"], a["channel"], a["address"], a["status"], a["error"])
            for a in delivery.retry(conn, run_id, actor=actor)]
