"""The KPI use case: the ten KPIs of a tenant, or of the platform, over a window.

A tenant's KPIs are for its tenant admins (and platform admins); the platform's, across every
tenant, only for platform admins. The provenance KPI counts a published run complete only when
its manifest names everything a reader needs and the run passes `provenance verify` (signature,
every file, the approved template content, Gate C, the audit log's publish event): the same
verification, so it costs a read of every published file in the window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from orchestration.access import policy
from orchestration.artifacts import which_store
from orchestration.artifacts.store import StorageError
from orchestration.errors import ServiceError
from orchestration.kpis import facts, provenance
from orchestration.kpis.compute import Facts, KpiSet, compute
from orchestration.runs import records
from orchestration.runs.run_record import RunRecord
from orchestration.services import provenance as provenance_service

DEFAULT_WINDOW = dt.timedelta(days=30)


def window_start(since: dt.date | dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """`since` as a UTC instant (a date: its midnight UTC); default: 30 days before now."""
    if since is None:
        return now - DEFAULT_WINDOW
    if isinstance(since, dt.datetime):
        return since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)


def provenance_gaps(conn, record: RunRecord) -> list[str]:
    """What a published run's provenance lacks: the manifest's missing items, then the first
    `provenance verify` check that fails (services/provenance.verify_run, online)."""
    location = record.artifact_location or ""
    try:
        store, key = which_store.for_location(location)
        manifest = store.read_manifest(key)
        failed = [f"{c.name}: {c.detail}" for c in provenance_service.verify_run(location, conn=conn) if not c.ok]
    except (StorageError, OSError, ValueError, KeyError, ServiceError) as exc:
        return [f"manifest unreadable: {exc}"]
    return provenance.gaps(manifest, failed)


def kpis(conn, *, actor: str, tenant_id: str | None = None, since: dt.date | dt.datetime | None = None,
         now: dt.datetime | None = None) -> KpiSet:
    """The KPIs of `tenant_id` (None: the platform) for runs and events since `since`."""
    now = now or dt.datetime.now(dt.UTC)
    start = window_start(since, now)
    target = f"KPIs of {tenant_id or 'the platform'}"
    # the platform view spans every tenant: only a principal of every tenant ('*') may see it
    policy.authorize(conn, actor, "kpis", target=target, tenant_id=tenant_id or policy.ALL_TENANTS)
    return _computed(conn, tenant_id, start, now)


def platform_day(conn, day: dt.date) -> KpiSet:
    """The platform's KPIs of one UTC day, for the platform's own daily job (the Dagster KPI
    asset): no principal asks, as for the retention sweep; what it yields is seen by operators
    of the orchestrator, who see every run already."""
    start = window_start(day, dt.datetime.now(dt.UTC))
    return _computed(conn, None, start, start + dt.timedelta(days=1))


def _computed(conn, tenant_id: str | None, start: dt.datetime, until: dt.datetime) -> KpiSet:
    with conn:
        runs = records.runs_created(conn, start, until, tenant_id=tenant_id)
        gathered = Facts(
            runs=runs,
            deliveries=facts.deliveries(conn, start, until, tenant_id),
            denials=facts.link_denials(conn, start, until, tenant_id),
            violations=facts.violations(conn, start, until, tenant_id),
            template_versions=facts.template_versions(conn, tenant_id),
            provenance_gaps={},
        )
    published = {r.run_id: provenance_gaps(conn, r) for r in runs
                 if r.state == "completed" and r.published_at is not None and r.artifact_location}
    return compute(dataclasses.replace(gathered, provenance_gaps=published), tenant_id=tenant_id, since=start,
                   until=until)
