"""Reading the audit log in tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AuditRow:
    seq: int
    actor: str
    action: str
    target: str
    outcome: str
    tenant_id: str | None
    details: dict[str, Any]


def audit_rows(conn, *, action: str | None = None, target: str | None = None, actor: str | None = None,
               after_seq: int = 0) -> list[AuditRow]:
    """Rows matching every filter given, oldest first."""
    with conn, conn.cursor() as cur:
        cur.execute("""select seq, actor, action, target, outcome, tenant_id, details from control.audit_log
                        where seq > %s and (%s::text is null or action = %s) and (%s::text is null or target = %s)
                          and (%s::text is null or actor = %s)
                        order by seq""", (after_seq, action, action, target, target, actor, actor))
        return [AuditRow(*row) for row in cur.fetchall()]


def last_seq(conn) -> int:
    with conn, conn.cursor() as cur:
        cur.execute("select coalesce(max(seq), 0) from control.audit_log")
        return cur.fetchone()[0]
