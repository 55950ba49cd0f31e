"""Reading the audit log in tests: one query, several shapes the tests compare against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COLUMNS = ("seq", "actor", "action", "target", "outcome", "tenant_id", "correlation_id", "details")


def audit_log(conn, *columns: str, **where: str) -> list[tuple]:
    """Rows of control.audit_log, oldest first: the given columns of rows whose columns equal `where`.

    Column names are checked against the table's, so a test cannot build arbitrary SQL.
    """
    unknown = [c for c in (*columns, *where) if c not in COLUMNS]
    if unknown or not columns:
        raise ValueError(f"audit_log columns must be among {COLUMNS}, got {unknown or 'none'}")
    condition = " and ".join(f"{c} = %s" for c in where) or "true"
    with conn, conn.cursor() as cur:
        cur.execute(f"select {', '.join(columns)} from control.audit_log where {condition} order by seq", tuple(where.values()))
        return cur.fetchall()


def audit_rows(conn, target: str) -> list[tuple]:
    """(actor, action, outcome, tenant_id, details) of every row about `target`."""
    return audit_log(conn, "actor", "action", "outcome", "tenant_id", "details", target=target)


def audit_outcomes(conn, action: str, target: str) -> list[tuple]:
    """(outcome, details) of the rows of one action on one target."""
    return audit_log(conn, "outcome", "details", action=action, target=target)


def audit_rows_of_run(conn, action: str, correlation_id: str) -> list[tuple]:
    """(actor, target, outcome, details) of the rows of one action that carry a run's correlation id."""
    return audit_log(conn, "actor", "target", "outcome", "details", action=action, correlation_id=correlation_id)


@dataclass(frozen=True)
class AuditRow:
    seq: int
    actor: str
    action: str
    target: str
    outcome: str
    tenant_id: str | None
    details: dict[str, Any]


def audit_entries(conn, *, action: str | None = None, target: str | None = None, actor: str | None = None,
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
