"""What the KPIs count besides run records, read from the control schema as typed facts.

Run records come from orchestration/runs/records.py (the only SQL on them); the other tables
are read here, in the caller's transaction, filtered by window and (when given) tenant. Rows
without a tenant (an unknown link token, a refusal before the tenant was known) count only for
the platform.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.db.rows import from_row
from orchestration.db.warehouse import dict_rows


@dataclass(frozen=True)
class DeliveryFact:
    tenant_id: str
    channel: str
    status: str
    sensitivity: str


@dataclass(frozen=True)
class Denial:
    """A denied request for a download link, and how sensitive the run's files are (None: unknown)."""

    tenant_id: str | None
    reason: str
    sensitivity: str | None


@dataclass(frozen=True)
class Violation:
    """A sensitive-export policy violation attempt: a refused distribution or a tenant mismatch."""

    tenant_id: str | None
    kind: str  # refused_distribution | tenant_mismatch
    at: dt.datetime


@dataclass(frozen=True)
class TemplateVersionFact:
    template_key: str
    version: int
    state: str
    owner_tenant: str | None
    deprecated_at: dt.datetime | None


_TENANT = "(%(tenant)s::text is null or tenant_id = %(tenant)s)"
_IN_WINDOW = "created_at >= %(since)s and created_at < %(until)s"


def deliveries(conn, since: dt.datetime, until: dt.datetime, tenant_id: str | None) -> list[DeliveryFact]:
    with conn.cursor() as cur:
        cur.execute(f"""select tenant_id, channel, status, sensitivity from control.deliveries
                         where {_IN_WINDOW} and {_TENANT}""", {"since": since, "until": until, "tenant": tenant_id})
        return [from_row(DeliveryFact, r) for r in dict_rows(cur)]


def link_denials(conn, since: dt.datetime, until: dt.datetime, tenant_id: str | None) -> list[Denial]:
    """Denied link requests; the sensitivity is the most sensitive file the run published."""
    with conn.cursor() as cur:
        cur.execute(
            """select e.tenant_id, e.reason,
                       (select a.sensitivity from control.artifacts a where a.run_id = e.run_id
                         order by array_position(array['internal', 'confidential', 'restricted'], a.sensitivity) desc
                         limit 1) as sensitivity
                  from control.access_events e
                 where e.outcome = 'denied' and e.at >= %(since)s and e.at < %(until)s
                   and (%(tenant)s::text is null or e.tenant_id = %(tenant)s)""",
            {"since": since, "until": until, "tenant": tenant_id})
        return [from_row(Denial, r) for r in dict_rows(cur)]


def violations(conn, since: dt.datetime, until: dt.datetime, tenant_id: str | None) -> list[Violation]:
    """Refused distributions (the outbox's and Gate C's refusals, in the audit log) and tenant
    mismatches (control.security_events)."""
    with conn.cursor() as cur:
        cur.execute(
            f"""select tenant_id, 'refused_distribution' as kind, at from control.audit_log
                 where action in ('delivery.refused', 'delivery.approve.denied')
                   and at >= %(since)s and at < %(until)s and {_TENANT}
                union all
                select tenant_id, 'tenant_mismatch', at from control.security_events
                 where kind = 'tenant_mismatch' and at >= %(since)s and at < %(until)s and {_TENANT}""",
            {"since": since, "until": until, "tenant": tenant_id})
        return [from_row(Violation, r) for r in dict_rows(cur)]


def template_versions(conn, tenant_id: str | None) -> list[TemplateVersionFact]:
    """Template versions a tenant can run (system ones and its own), or all for the platform."""
    with conn.cursor() as cur:
        cur.execute("""select template_key, version, state, owner_tenant, deprecated_at from control.template_versions
                        where %(tenant)s::text is null or owner_tenant is null or owner_tenant = %(tenant)s
                        order by template_key, version""", {"tenant": tenant_id})
        return [from_row(TemplateVersionFact, r) for r in dict_rows(cur)]
