"""The audit log: append-only, each row chained to the previous one by its hash.

Every lifecycle change, approval, run request, denial and export is one row. A row's hash
covers its content and the previous row's hash, so an edited, deleted or reordered row breaks
the chain at that row; `verify` names the first one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
OUTCOMES = ("allowed", "denied", "succeeded", "failed")


def _row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _fields(seq, at: dt.datetime, actor, tenant_id, action, target, outcome, correlation_id, details) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(),
        "actor": actor,
        "tenant_id": tenant_id,
        "action": action,
        "target": target,
        "outcome": outcome,
        "correlation_id": correlation_id,
        "details": details,
    }


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def record(
    conn,
    *,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    tenant_id: str | None = None,
    correlation_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one row (committed with the caller's transaction); returns its sequence number."""
    if conn.autocommit:
        # Each statement would be its own transaction, releasing the append lock before the row is
        # written: two writers would chain to the same previous row. Append in a transaction of its own.
        conn.autocommit = False
        try:
            seq = record(conn, actor=actor, action=action, target=target, outcome=outcome, tenant_id=tenant_id,
                         correlation_id=correlation_id, details=details)
            conn.commit()
            return seq
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {OUTCOMES}")
    details = json.loads(json.dumps(details or {}, default=str))
    with conn.cursor() as cur:
        # One writer at a time (until the caller's transaction ends), so every row chains to the
        # true previous row. The lock is taken before the last row is read: under READ COMMITTED
        # that read is a new snapshot, which sees every append committed before the lock was ours.
        cur.execute("select pg_advisory_xact_lock(hashtext('nexus-reports:audit')), current_setting('transaction_isolation')")
        isolation = cur.fetchone()[1]
        if isolation != "read committed":  # its snapshot may predate the lock: the chain would fork
            raise RuntimeError(f"audit.record needs a READ COMMITTED transaction, not {isolation}")
        cur.execute("select seq, row_hash from control.audit_log order by seq desc limit 1")
        last = cur.fetchone()
        # seq is the previous row's + 1, not nextval(): a sequence value is used up by a rolled-back
        # append and would leave a gap; this way the seq of committed rows stays 1, 2, 3, ...
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        at = dt.datetime.now(dt.UTC)
        row_hash = _row_hash(prev_hash, _fields(seq, at, actor, tenant_id, action, target, outcome, correlation_id, details))
        cur.execute(
            """
            insert into control.audit_log
                (seq, at, actor, tenant_id, action, target, outcome, correlation_id, details, prev_hash, row_hash)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (seq, at, actor, tenant_id, action, target, outcome, correlation_id, json.dumps(details), prev_hash, row_hash),
        )
    return seq


def record_now(conn, **kwargs: Any) -> int:
    """Append and commit at once: for denials, which must persist even when the caller aborts.

    Also inside a service's `with conn:` block (which cannot be entered twice): a refusal comes
    before the refused work writes anything, so what it commits along is only what was read."""
    try:
        seq = record(conn, **kwargs)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return seq


@dataclass(frozen=True)
class Verification:
    rows: int
    first_broken_seq: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


def verify(conn) -> Verification:
    prev_hash = GENESIS
    count = 0
    with conn, conn.cursor(name=f"audit_verify_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = 5000
        cur.execute(
            "select seq, at, actor, tenant_id, action, target, outcome, correlation_id, details, prev_hash, row_hash "
            "from control.audit_log order by seq"
        )
        for seq, at, actor, tenant_id, action, target, outcome, correlation_id, details, stored_prev, stored_hash in cur:
            count += 1
            if stored_prev != prev_hash:
                return Verification(count, seq, f"row {seq} does not follow the previous row "
                                                "(a row before it was deleted, inserted or reordered)")
            expected = _row_hash(prev_hash, _fields(seq, at, actor, tenant_id, action, target, outcome, correlation_id, details))
            if expected != stored_hash:
                return Verification(count, seq, f"row {seq} was changed after it was written")
            prev_hash = stored_hash
    return Verification(count, None, None)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    tenant_id: str | None
    action: str
    target: str
    outcome: str


def tail(conn, limit: int) -> list[AuditEntry]:
    """The newest `limit` rows, oldest first (as a log reads)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    with conn.cursor() as cur:
        cur.execute("select seq, at, actor, tenant_id, action, target, outcome from control.audit_log "
                    "order by seq desc limit %s", (limit,))
        return [AuditEntry(*row) for row in reversed(cur.fetchall())]


@dataclass(frozen=True)
class AuditEvent:
    """One row found by action and correlation id, with whether its own hash still matches it."""

    seq: int
    at: dt.datetime
    actor: str
    target: str
    outcome: str
    details: dict[str, Any]
    intact: bool  # the row's content still hashes to its stored row_hash (chained to its prev_hash)


def events(conn, action: str, run_id: str) -> list[AuditEvent]:
    """The rows of one action about one run, oldest first: a run's rows carry the correlation id of
    the request that asked for it (its own run id when none did) and name the run in their details."""
    with conn.cursor() as cur:
        cur.execute("select seq, at, actor, tenant_id, action, target, outcome, correlation_id, details, prev_hash, "
                    "row_hash from control.audit_log where action = %s "
                    "and (correlation_id = %s or details->>'run_id' = %s) order by seq",
                    (action, run_id, run_id))
        rows = cur.fetchall()
    found = []
    for seq, at, actor, tenant_id, act, target, outcome, corr, details, prev_hash, row_hash in rows:
        expected = _row_hash(prev_hash, _fields(seq, at, actor, tenant_id, act, target, outcome, corr, details))
        found.append(AuditEvent(seq, at, actor, target, outcome, details or {}, expected == row_hash))
    return found


@dataclass(frozen=True)
class TraceRow:
    seq: int
    at: dt.datetime
    actor: str
    tenant_id: str | None
    action: str
    target: str
    outcome: str
    correlation_id: str
    details: dict[str, Any]


def trace_rows(conn, correlation_id: str, run_ids: list[str]) -> list[TraceRow]:
    """Every row carrying the correlation id, and every row of the runs it caused that carries the
    run's own id instead (rows written before runs carried their request's id), in log order."""
    with conn.cursor() as cur:
        cur.execute("select seq, at, actor, tenant_id, action, target, outcome, correlation_id, details "
                    "from control.audit_log where correlation_id = %s or correlation_id = any(%s) order by seq",
                    (correlation_id, run_ids))
        return [TraceRow(*row[:8], row[8] or {}) for row in cur.fetchall()]
