"""Audit log use cases: read the newest rows, verify the hash chain (both read only)."""

from __future__ import annotations

from orchestration.access import audit
from orchestration.access.audit import AuditEntry, Verification


def tail(conn, limit: int = 20) -> list[AuditEntry]:
    with conn:
        return audit.tail(conn, limit)


def verify(conn) -> Verification:
    return audit.verify(conn)
