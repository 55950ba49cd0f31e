"""Gate C: distribution approvals of sensitive schedules and pipelines, and the tenant's e-mail allow-list.

A schedule or an export pipeline of a confidential or restricted report delivers only under a
recorded approval: an approver (the approver role, not the schedule's or pipeline's owner)
approves an exact set of recipients and channels. The approval stores the hash of that sorted
set; at every send the set being delivered is hashed again and must match the newest approval
of the schedule (or pipeline), so adding a recipient or a channel voids it (so does any other
change of the set, such as a pipeline version with another destination: approve again).

E-mail recipients must be in a domain on the tenant's allow-list (control.tenant_email_domains).
Every function runs in the caller's transaction (services/delivery.py commits).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestration.access import audit, policy
from orchestration.db.warehouse import dict_rows
from orchestration.delivery.recipients import CHANNELS, Recipient, RecipientError, distribution_hash
from orchestration.schedules import store as schedule_store
from orchestration.schedules.timing import ScheduleError


class ApprovalError(ValueError):
    """An approval that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Distribution:
    """What an approval is of: a schedule's recipients, or an export pipeline's destination
    (services/delivery.py looks the pipeline up: this package does not read pipelines)."""

    tenant_id: str
    owner: str
    schedule_id: int | None = None
    pipeline_id: str | None = None

    def __post_init__(self) -> None:
        if (self.schedule_id is None) == (self.pipeline_id is None):
            raise ValueError("a distribution is of exactly one schedule or one pipeline")

    @property
    def label(self) -> str:
        return f"schedule {self.schedule_id}" if self.schedule_id is not None else f"pipeline {self.pipeline_id}"


def _schedule(conn, schedule_id: int) -> Distribution:
    try:
        row = schedule_store.get(conn, schedule_id)
    except ScheduleError as exc:
        raise ApprovalError(str(exc)) from exc
    return Distribution(tenant_id=row["tenant_id"], owner=row["owner"], schedule_id=schedule_id)


def normalize_domain(domain: str) -> str:
    domain = domain.strip().lower().lstrip("@")
    if not domain or "." not in domain or any(c in domain for c in " /@:;"):
        raise ApprovalError(f"not an e-mail domain: {domain!r}")
    return domain


def allow_domain(conn, tenant_id: str, domain: str, *, actor: str) -> str:
    domain = normalize_domain(domain)
    policy.authorize(conn, actor, "manage_principals", target=f"e-mail domain {domain}", tenant_id=tenant_id)
    with conn.cursor() as cur:
        cur.execute("insert into control.tenant_email_domains (tenant_id, domain, added_by) values (%s, %s, %s) "
                    "on conflict do nothing", (tenant_id, domain, actor))
    audit.record(conn, actor=actor, action="delivery.allow_domain", target=domain, outcome="succeeded",
                 tenant_id=tenant_id)
    return domain


def allowed_domains(conn, tenant_id: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("select domain from control.tenant_email_domains where tenant_id = %s", (tenant_id,))
        return {r[0] for r in cur.fetchall()}


def domain_refusal(conn, tenant_id: str, recipient: Recipient) -> str | None:
    """None when the recipient may receive this tenant's reports by e-mail, else why not."""
    if recipient.kind != "email":
        return None
    if recipient.domain in allowed_domains(conn, tenant_id):
        return None
    return f"{recipient.address}: domain {recipient.domain} is not on tenant {tenant_id}'s e-mail allow-list"


def approve(conn, schedule_id: int, *, approver: str, recipients: Iterable[str | Recipient], channels: Iterable[str],
            now: dt.datetime | None = None) -> int:
    """Record the approval of exactly these recipients over these channels; returns its id."""
    return approve_distribution(conn, _schedule(conn, schedule_id), approver=approver, recipients=recipients,
                                channels=channels, now=now)


# long: the checks of an approval, in the order a refusal is explained; one place records it
def approve_distribution(conn, of: Distribution, *, approver: str, recipients: Iterable[str | Recipient],
                         channels: Iterable[str], now: dt.datetime | None = None,
                         correlation_id: str | None = None) -> int:
    """Record the approval of exactly these recipients over these channels for a schedule or a
    pipeline; returns its id."""
    tenant_id = of.tenant_id
    target = f"distribution of {of.label}"
    try:
        recipients = [r if isinstance(r, Recipient) else Recipient.parse(r) for r in recipients]
    except RecipientError as exc:
        raise ApprovalError(str(exc)) from exc
    channels = sorted({c.strip().lower() for c in channels if c.strip()})
    if not recipients:
        raise ApprovalError("an approval names at least one recipient")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ApprovalError(f"unknown channel {', '.join(unknown)} (known: {', '.join(CHANNELS)})")
    kinds = {r.kind for r in recipients}
    if kinds != set(channels):
        raise ApprovalError(f"the channels ({', '.join(channels) or 'none'}) must be exactly those of the recipients "
                            f"({', '.join(sorted(kinds))})")
    if approver == of.owner:
        reason = f"{approver} owns {of.label}: the approver must be someone else"
        audit.record_now(conn, actor=approver, action="delivery.approve.denied", target=target, outcome="denied",
                         tenant_id=tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise policy.AccessDenied(reason)
    policy.authorize(conn, approver, "approve", target=target, tenant_id=tenant_id, correlation_id=correlation_id)
    off_list = [r for r in recipients if domain_refusal(conn, tenant_id, r)]
    if off_list:
        reason = "; ".join(domain_refusal(conn, tenant_id, r) for r in off_list)
        audit.record_now(conn, actor=approver, action="delivery.approve.denied", target=target, outcome="denied",
                         tenant_id=tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise ApprovalError(reason)
    digest = distribution_hash(recipients, channels)
    idents = sorted({r.identity for r in recipients})
    now = now or dt.datetime.now(dt.UTC)
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.distribution_approvals
                   (schedule_id, pipeline_id, approver, approved_at, recipients, channels, distribution_hash)
               values (%s, %s, %s, %s, %s, %s, %s) returning approval_id""",
            (of.schedule_id, of.pipeline_id, approver, now, json.dumps(idents), channels, digest),
        )
        (approval_id,) = cur.fetchone()
    audit.record(conn, actor=approver, action="delivery.approve", target=target, outcome="succeeded",
                 tenant_id=tenant_id, correlation_id=correlation_id, details={"approval_id": approval_id, "recipients": idents,
                                               "channels": channels, "distribution_hash": digest})
    return approval_id


def current_approval(conn, schedule_id: int | None, *, pipeline_id: str | None = None) -> dict[str, Any] | None:
    """The approval in force (the newest) of a schedule, or of a pipeline when `pipeline_id` is given."""
    column, value = ("pipeline_id", pipeline_id) if pipeline_id is not None else ("schedule_id", schedule_id)
    with conn.cursor() as cur:
        cur.execute(f"select * from control.distribution_approvals where {column} = %s "  # column: one of two names above
                    "order by approval_id desc limit 1", (value,))
        rows = dict_rows(cur)
    return rows[0] if rows else None


def approval_by_id(conn, approval_id: int) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute("select * from control.distribution_approvals where approval_id = %s", (approval_id,))
        rows = dict_rows(cur)
    return rows[0] if rows else None


def approval_refusal(conn, schedule_id: int | None, digest: str, *, pipeline_id: str | None = None) -> str | None:
    """None when the newest approval of the pipeline (when one is given) or else of the schedule
    covers exactly the set with this hash."""
    if schedule_id is None and pipeline_id is None:
        return ("a sensitive report is distributed only from a schedule or an export pipeline with a recorded "
                "distribution approval")
    label = f"pipeline {pipeline_id}" if pipeline_id is not None else f"schedule {schedule_id}"
    approval = current_approval(conn, schedule_id, pipeline_id=pipeline_id)
    if approval is None:
        return f"{label} has no recorded distribution approval"
    if approval["distribution_hash"] != digest:
        return (f"the distribution approval of {label} (#{approval['approval_id']} by "
                f"{approval['approver']}) does not cover this recipient/channel set: it was changed since; approve it again")
    return None
