"""Delivery of published report runs: e-mail, webhook and bucket drop, through an outbox,
with Gate C (distribution approvals of sensitive schedules) and tenant e-mail allow-lists.

Plain functions, in the caller's transaction; services/delivery.py is what the adapters call.
"""

from orchestration.delivery.approvals import ApprovalError, allow_domain, allowed_domains, approve, current_approval
from orchestration.delivery.errors import DeliveryRefused, SendFailure
from orchestration.delivery.outbox import (
    DeliveryResult,
    channel_counts,
    enqueue_run,
    list_deliveries,
    requeue,
    schedule_recipients,
    scheduled_recipients,
    send_due,
)
from orchestration.delivery.recipients import Recipient, RecipientError, distribution_hash
from orchestration.delivery.webhook import register_endpoint as register_webhook

__all__ = [
    "ApprovalError", "DeliveryRefused", "DeliveryResult", "Recipient", "RecipientError", "SendFailure",
    "allow_domain", "allowed_domains", "approve", "channel_counts", "current_approval", "enqueue_run",
    "schedule_recipients", "scheduled_recipients",
    "distribution_hash", "list_deliveries", "register_webhook", "requeue", "send_due",
]
