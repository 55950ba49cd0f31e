"""How a send ends when it does not succeed: transient (retried with backoff) or permanent."""

from __future__ import annotations


class SendFailure(Exception):
    """A channel refused or could not take a delivery."""

    def __init__(self, message: str, *, transient: bool, http_status: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.http_status = http_status


class DeliveryRefused(PermissionError):
    """Delivery is not allowed (Gate C, allow-list, missing variant); the refusal is audited."""
