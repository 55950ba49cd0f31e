"""Outbox rows in control.deliveries, typed, and their state machine: the only SQL on them.

pending -> sending (claimed, attempts + 1, committed before the channel is called) -> sent, or
failed_transient (due again after an exponential backoff) or failed_permanent. A row left
'sending' by a process that died is claimed again after SENDING_LEASE. Every end of an attempt
is an audit row, written in the same transaction as the state change.

Who commits: `insert` and `requeue_failed` run in the caller's transaction (a service's). The
claim and the outcome of a send (`claim`, `mark_sent`, `mark_failed`) commit at once, an
exception to "the service owns the transaction" (orchestration/services/__init__.py): a row is
claimed before its channel is called so no other worker sends it, and its outcome is recorded
right after the channel answered, whatever happens to the rest of the batch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from orchestration.access import audit
from orchestration.db.rows import from_row
from orchestration.db.warehouse import dict_rows
from orchestration.delivery.errors import SendFailure
from orchestration.delivery.recipients import Recipient
from orchestration.runs import records as run_records

STATUSES = ("pending", "sending", "sent", "failed_transient", "failed_permanent")
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=1)
MAX_ATTEMPTS = 8
SENDING_LEASE = dt.timedelta(minutes=10)
DELIVERY_ACTOR = "svc:delivery"


@dataclass(frozen=True)
class Delivery:
    """One row of control.deliveries (list_deliveries leaves out the columns it does not select)."""

    delivery_id: int
    run_id: str
    tenant_id: str
    channel: str
    address: str
    status: str
    attempts: int
    idempotency_key: str
    external: bool = False
    variant: str = "internal"
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    provider_message_id: str | None = None
    http_status: int | None = None
    template_key: str | None = None
    sensitivity: str | None = None
    schedule_id: int | None = None
    pipeline_id: str | None = None  # the export pipeline it delivers for: Gate C asks for its approval
    principal_id: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    distribution_hash: str | None = None
    claimed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Delivery:
        return from_row(cls, row, config=row.get("config") or {})

    @property
    def waiting(self) -> bool:
        """Still to be (re)tried: its next_attempt_at means something."""
        return self.status in ("failed_transient", "pending")

    @property
    def target(self) -> str:
        return f"{self.channel}:{self.address}"


def backoff(attempts: int) -> dt.timedelta:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def insert(cur, key: str, run, recipient: Recipient, *, sensitivity: str, schedule_id: int | None,
           distribution_hash: str | None, now: dt.datetime, pipeline_id: str | None = None) -> bool:
    """Enqueue one row in the caller's transaction; False when its idempotency key exists."""
    cur.execute(
        """insert into control.deliveries
               (idempotency_key, run_id, tenant_id, template_key, sensitivity, schedule_id, pipeline_id, channel,
                address, principal_id, external, variant, config, distribution_hash,
                next_attempt_at, created_at, updated_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (idempotency_key) do nothing returning idempotency_key""",
        (key, run.run_id, run.tenant_id, run.template_key, sensitivity, schedule_id, pipeline_id, recipient.kind,
         recipient.address, recipient.principal_id, recipient.external, recipient.variant,
         json.dumps(recipient.config), distribution_hash, now, now, now),
    )
    return cur.fetchone() is not None


def claim(conn, now: dt.datetime, run_id: str | None, exclude: list[int]) -> Delivery | None:
    """The next due row, marked 'sending' and committed (skip-locked: workers never share one)."""
    with conn:
        with conn.cursor() as cur:
            cur.execute(
                """update control.deliveries d
                      set status = 'sending', attempts = d.attempts + 1, claimed_at = %(now)s, updated_at = %(now)s
                    where d.delivery_id = (
                        select delivery_id from control.deliveries
                         where ((status in ('pending', 'failed_transient') and next_attempt_at <= %(now)s)
                                or (status = 'sending' and claimed_at <= %(stale)s))
                           and (%(run)s::text is null or run_id = %(run)s)
                           and not (delivery_id = any(%(exclude)s))
                         order by next_attempt_at, delivery_id
                         for update skip locked limit 1)
                    returning d.*""",
                {"now": now, "stale": now - SENDING_LEASE, "run": run_id, "exclude": exclude or [0]},
            )
            rows = dict_rows(cur)
    return Delivery.from_row(rows[0]) if rows else None


def _attempt_details(row: Delivery) -> dict[str, Any]:
    return {"run_id": row.run_id, "delivery_id": row.delivery_id, "idempotency_key": row.idempotency_key,
            "attempt": row.attempts}


def mark_sent(conn, row: Delivery, now: dt.datetime, provider_id: str | None, http_status: int | None) -> None:
    with conn:
        with conn.cursor() as cur:
            cur.execute(
                """update control.deliveries set status = 'sent', sent_at = %s, updated_at = %s, last_error = null,
                          provider_message_id = %s, http_status = %s
                    where delivery_id = %s""",
                (now, now, provider_id, http_status, row.delivery_id),
            )
        audit.record(conn, actor=DELIVERY_ACTOR, action="delivery.send", target=row.target,
                     outcome="succeeded", tenant_id=row.tenant_id, correlation_id=run_records.trace_id(conn, row.run_id),
                     details={**_attempt_details(row), "variant": row.variant, "provider_message_id": provider_id,
                              "http_status": http_status})


def mark_failed(conn, row: Delivery, now: dt.datetime, failure: SendFailure, *, refused: bool = False) -> str:
    """failed_transient (due again after a backoff) or failed_permanent; returns the new status."""
    gave_up = failure.transient and row.attempts >= MAX_ATTEMPTS
    status = "failed_transient" if failure.transient and not gave_up else "failed_permanent"
    error = str(failure) + (f" (gave up after {row.attempts} attempts)" if gave_up else "")
    next_at = now + backoff(row.attempts) if status == "failed_transient" else now
    with conn:
        with conn.cursor() as cur:
            cur.execute(
                """update control.deliveries set status = %s, last_error = %s, next_attempt_at = %s, updated_at = %s,
                          http_status = coalesce(%s, http_status)
                    where delivery_id = %s""",
                (status, error, next_at, now, failure.http_status, row.delivery_id),
            )
        audit.record(conn, actor=DELIVERY_ACTOR, action="delivery.refused" if refused else "delivery.send",
                     target=row.target, outcome="denied" if refused else "failed",
                     tenant_id=row.tenant_id, correlation_id=run_records.trace_id(conn, row.run_id),
                     details={**_attempt_details(row), "status": status, "error": error,
                              "http_status": failure.http_status,
                              **({"next_attempt_at": next_at.isoformat()} if status == "failed_transient" else {})})
    return status


def requeue_failed(conn, run_id: str | None, statuses: list[str], now: dt.datetime) -> list[int]:
    """Make failed rows (of one run, or all) due now, in the caller's transaction; their ids."""
    with conn.cursor() as cur:
        cur.execute("""update control.deliveries set status = 'pending', next_attempt_at = %(now)s, updated_at = %(now)s
                        where status = any(%(statuses)s) and (%(run)s::text is null or run_id = %(run)s)
                    returning delivery_id""", {"now": now, "statuses": statuses, "run": run_id})
        return [r[0] for r in cur.fetchall()]


def list_deliveries(conn, run_id: str | None = None) -> list[Delivery]:
    with conn.cursor() as cur:
        cur.execute("""select delivery_id, run_id, tenant_id, channel, address, external, variant, status, attempts,
                              last_error, next_attempt_at, sent_at, provider_message_id, http_status, idempotency_key
                         from control.deliveries where (%(run)s::text is null or run_id = %(run)s)
                        order by delivery_id""", {"run": run_id})
        return [Delivery.from_row(r) for r in dict_rows(cur)]


def channel_counts(conn, run_id: str | None = None) -> dict[str, dict[str, int]]:
    """Delivery success by channel: {channel: {status: count}}."""
    with conn.cursor() as cur:
        cur.execute("""select channel, status, count(*) from control.deliveries
                        where (%(run)s::text is null or run_id = %(run)s) group by channel, status""", {"run": run_id})
        counts: dict[str, dict[str, int]] = {}
        for channel, status, n in cur.fetchall():
            counts.setdefault(channel, {})[status] = n
    return counts
