"""How a send ends when it does not succeed: transient (retried with backoff) or permanent."""

from __future__ import annotations


class SendFailure(Exception):
    """A channel refused or could not take a delivery; `refused`: we refused to call it (policy,
    such as an outbound address check), audited as a refusal rather than a failed send."""

    def __init__(self, message: str, *, transient: bool, http_status: int | None = None, refused: bool = False):
        super().__init__(message)
        self.transient = transient
        self.http_status = http_status
        self.refused = refused


class DeliveryRefused(PermissionError):
    """Delivery is not allowed (Gate C, allow-list, missing variant); the refusal is audited."""
